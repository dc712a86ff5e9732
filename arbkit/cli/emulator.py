"""``arbkit emulator serve``: a local Binance exchange on 127.0.0.1 replaying the catalog."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Local exchange emulator (Binance REST + websocket "
                  "on 127.0.0.1) replaying catalog data, with fault injection.")


def _pairs(specs: list[str], what: str) -> dict[str, tuple[str, str]]:
    """``BTCUSDT=binance_spot:BTCUSDT`` -> {symbol: (venue, catalog symbol)}."""
    from arbkit.errors import ConfigError

    out = {}
    for spec in specs:
        sym, _, src = spec.partition("=")
        venue, _, csym = src.partition(":")
        if not (sym and venue and csym):
            raise ConfigError(f"--{what} {spec!r}: use SYMBOL=venue:symbol, e.g. "
                              "BTCUSDT=binance_spot:BTCUSDT")
        out[sym.upper()] = (venue, csym)
    return out


@app.command("serve")
def serve(
    quotes: Annotated[list[str] | None, typer.Option(help="SYMBOL=venue:symbol of catalog quotes (repeatable).")] = None,
    bars: Annotated[list[str] | None, typer.Option(help="SYMBOL=venue:symbol of catalog bars.")] = None,
    trades: Annotated[list[str] | None, typer.Option(help="SYMBOL=venue:symbol of catalog trades.")] = None,
    funding: Annotated[list[str] | None, typer.Option(help="SYMBOL=venue:symbol of catalog funding (lists SYMBOL as a USD-M perpetual too).")] = None,
    root: Annotated[Path | None, typer.Option(help="Catalog root (default: $ARBKIT_DATA_ROOT or ./data).")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8765,
    speed: Annotated[float, typer.Option(help="Replay speed: data seconds per wall second.")] = 1.0,
    start: Annotated[str, typer.Option(help="Data time to start at: first (the first row), end (after the last: REST shows everything, e.g. for a download) or YYYY-MM-DD[THH:MM:SS] UTC.")] = "first",
    duration_s: Annotated[float, typer.Option(help="Stop after this many wall seconds (0 = until Ctrl-C).")] = 0.0,
    http_429_every: Annotated[int | None, typer.Option(help="Fault: answer every Nth REST request with 429.")] = None,
    drop_ws_after: Annotated[int | None, typer.Option(help="Fault: drop each websocket after N data messages.")] = None,
    latency_ms: Annotated[float, typer.Option(help="Fault: added REST latency.")] = 0.0,
) -> None:
    """Serve catalog data as Binance spot (REST /api/v3, websocket /ws) on 127.0.0.1."""
    from arbkit.data.catalog import Catalog, fmt_ts
    from arbkit.data.download import parse_day
    from arbkit.errors import ConfigError
    from arbkit.venues.emulator import EmulatorConfig, FaultConfig, MarketFeed, run_emulator

    src = {k: _pairs(v or [], k) for k, v in (("quotes", quotes), ("bars", bars),
                                              ("trades", trades), ("funding", funding))}
    for flag, v in (("--duration-s", duration_s), ("--latency-ms", latency_ms)):
        if not v >= 0 or v == float("inf"):
            raise ConfigError(f"{flag} {v:g}: must be 0 or more"
                              + (" (0 = until Ctrl-C)" if flag == "--duration-s" else ""))
    if not speed > 0 or speed == float("inf"):
        raise ConfigError(f"--speed {speed:g}: replay speed must be above 0 (1 = real time)")
    for flag, n in (("--http-429-every", http_429_every), ("--drop-ws-after", drop_ws_after)):
        if n is not None and n < 1:
            raise ConfigError(f"{flag} {n}: must be 1 or more (leave it out for no fault)")
    symbols = list(dict.fromkeys(s for d in src.values() for s in d))
    if not symbols:
        raise ConfigError("emulator serve: give at least one of --quotes, --bars, --trades")
    feeds = []
    for sym in symbols:
        base, quote = _split_symbol(sym)
        feeds.append(MarketFeed(symbol=sym, base=base, quote=quote,
                                **{k: d.get(sym) for k, d in src.items()}))
    faults = FaultConfig(http_429_every=http_429_every, drop_ws_after_messages=drop_ws_after,
                         drop_ws_repeat=drop_ws_after is not None, latency_ms=latency_ms)
    cat_root = Catalog(root).require().root
    probe = EmulatorConfig(markets=feeds, speed=speed, port=port, faults=faults,
                           catalog_root=cat_root)
    from arbkit.venues.emulator import EmulatorServer

    first, last = EmulatorServer(probe).span_ns
    start_ns = {"first": first, "end": last + 1}.get(start)
    if start_ns is None:
        start_ns = parse_day(start, "start") * 1_000_000
    cfg = EmulatorConfig(markets=feeds, speed=speed, port=port, faults=faults,
                         catalog_root=cat_root, start_ns=start_ns)
    with run_emulator(cfg) as emu:
        typer.echo(f"emulator: {emu.http_url} (REST), {emu.ws_url}/ws (websocket); markets "
                   f"{', '.join(symbols)}; speed {speed:g}x; Ctrl-C to stop")
        typer.echo(f"  data {fmt_ts(first)} .. {fmt_ts(last)} UTC; replay starts at "
                   f"{fmt_ts(start_ns)}")
        if not first <= start_ns <= last:
            typer.echo("  warning: the start is outside the data: "
                       + ("websockets have nothing left to stream; REST shows the final state"
                          if start_ns > last else "nothing is visible until the data begins"))
        channels = ",".join((["bbo", "book"] if src["quotes"] else [])
                            + (["trades"] if src["trades"] else []))
        record = (f"arbkit data record --venue binance --symbols {_unified(symbols[0])} "
                  f"--channels {channels} --url {emu.http_url}" if channels else
                  f"arbkit data download --venue binance --url {emu.http_url} ...")
        typer.echo(f"  ccxt: {record}")
        t_end = time.monotonic() + duration_s if duration_s > 0 else float("inf")
        try:
            while time.monotonic() < t_end:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        st = emu.stats()
        typer.echo(f"served {st.rest_total} REST requests ({st.http_429_sent} answered 429), "
                   f"{st.ws_connections} websocket connections, {st.ws_messages_sent} messages, "
                   f"{st.ws_drops} drops")


UNCLEAR_FAULTS = ("hang_after_accept", "drop_after_accept", "unknown_booked",
                  "unknown_not_booked", "server_error_booked", "server_error_not_booked")


@app.command("venues")
def venues(
    config: Annotated[Path, typer.Option(help="The session's TOML config (or a preset's file): one emulator per venue, each with an account holding the config's starting balances and taker fee.")],
    data: Annotated[Path, typer.Option(help="Quotes: a Parquet file/folder or a catalog root.")],
    out: Annotated[Path, typer.Option(help="Where to write the venues file `arbkit live --venues` reads (addresses, replay timeline, made-up keys; removed on exit).")] = Path("data/sessions/venues.json"),
    speed: Annotated[float, typer.Option(help="Replay speed: data seconds per wall second.")] = 20.0,
    duration_s: Annotated[float, typer.Option(help="Stop after this many wall seconds (0 = until Ctrl-C or the end of the data).")] = 0.0,
    order_fault_rate: Annotated[float, typer.Option(help="Fault: this share of order requests (seeded) meets one of --order-fault-kinds.")] = 0.0,
    order_fault_kinds: Annotated[str, typer.Option(help="Comma-separated order faults drawn from (see docs/emulator.md).")] = ",".join(UNCLEAR_FAULTS),
    seed: Annotated[int, typer.Option(help="Seed of the order faults.")] = 7,
    http_429_every: Annotated[int | None, typer.Option(help="Fault: answer every Nth REST request with 429 (Retry-After 1).")] = None,
    drop_ws_after: Annotated[int | None, typer.Option(help="Fault: drop every market-data websocket after N messages.")] = None,
    drop_user_stream_after: Annotated[int | None, typer.Option(help="Fault: drop every user-data websocket after N events.")] = None,
    stall_ws_s: Annotated[float, typer.Option(help="Fault: each market-data websocket goes silent this many seconds once, after 10 messages.")] = 0.0,
) -> None:
    """Serve every venue of a config on 127.0.0.1 (quotes and a trading account each) for
    `arbkit live --venues FILE`: venues that outlive the session (kill it, --resume it)."""
    import signal

    import numpy as np

    from arbkit.cli.live import KEY_ENV, rehearsal_keys
    from arbkit.config import load_config
    from arbkit.errors import ConfigError
    from arbkit.runtime.emulated import rehearsal_accounts, write_venues_file
    from arbkit.venues.emulator import FaultConfig
    from arbkit.venues.emulator.faults import ORDER_FAULTS
    from arbkit.venues.emulator.multi import run_venues

    if not speed > 0 or speed == float("inf"):
        raise ConfigError(f"--speed {speed:g}: replay speed must be above 0 (1 = real time)")
    if not 0 <= order_fault_rate <= 1:
        raise ConfigError(f"--order-fault-rate {order_fault_rate:g}: a share in [0, 1]")
    kinds = [k.strip() for k in order_fault_kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ORDER_FAULTS]
    if bad or not kinds:
        raise ConfigError(f"--order-fault-kinds {order_fault_kinds!r}: use some of "
                          f"{', '.join(ORDER_FAULTS)}")
    if out.exists():
        raise ConfigError(f"--out {out}: exists (emulators still running, or left by a crash: "
                          "stop them, or remove the file if they are gone)")
    cfg = load_config(config)
    for flag, k in (("--http-429-every", http_429_every), ("--drop-ws-after", drop_ws_after),
                    ("--drop-user-stream-after", drop_user_stream_after)):
        if k is not None and k < 1:
            raise ConfigError(f"{flag} {k}: must be 1 or more (leave it out for no fault)")
    if not 0 <= stall_ws_s < float("inf"):
        raise ConfigError(f"--stall-ws-s {stall_ws_s:g}: seconds, 0 or more")
    order_faults: dict[int, str] = {}
    if order_fault_rate > 0:
        rng = np.random.Generator(np.random.PCG64(seed))
        n = np.flatnonzero(rng.random(200_000) < order_fault_rate) + 1
        pick = rng.integers(0, len(kinds), n.size)
        order_faults = {int(i): kinds[j] for i, j in zip(n, pick, strict=True)}
    faults = FaultConfig(order_faults=order_faults, order_hang_s=0.5,
                         http_429_every=http_429_every, retry_after_s=1,
                         drop_ws_after_messages=drop_ws_after,
                         drop_ws_repeat=drop_ws_after is not None,
                         drop_user_stream_after_events=drop_user_stream_after,
                         drop_user_stream_repeat=drop_user_stream_after is not None,
                         stall_ws_s=stall_ws_s,
                         stall_ws_after_messages=10 if stall_ws_s else 0)
    keys = rehearsal_keys(cfg)
    made_up = {} if os.environ.get(KEY_ENV) else keys
    stop = {"now": False}

    def _stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    with run_venues(data, cfg, speed=speed, faults=faults,
                    accounts=rehearsal_accounts(cfg, keys)) as emu:
        write_venues_file(out, emu, made_up)
        try:
            typer.echo(f"emulators: {', '.join(f'{v} {u}' for v, u in emu.items())}; speed "
                       f"{speed:g}x; venues file {out}")
            typer.echo(f"  arbkit live --config {config} --venues {out} --redis URL "
                       "(Ctrl-C here stops the venues)")
            end = max(t.server.span_ns[1] for t in emu.emulators.values())
            t_end = time.monotonic() + duration_s if duration_s > 0 else float("inf")
            try:
                while not stop["now"] and time.monotonic() < t_end and emu.clock.now_ns() < end:
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass
        finally:
            out.unlink(missing_ok=True)
        for v, t in emu.emulators.items():
            acct, st = t.account, t.stats()
            faults_seen = ", ".join(f"{k} {n}" for k, n in sorted(st.order_faults.items()))
            typer.echo(f"{v}: {len(acct.orders())} orders, {len(acct.trades())} trades; "
                       f"order faults: {faults_seen or 'none'}; {st.http_429_sent} REST "
                       f"answers 429; {st.ws_drops} market / {st.user_stream_drops} user-data "
                       f"websocket drops, {st.ws_stalls} stalls")


def _unified(sym: str) -> str:
    base, quote = _split_symbol(sym)
    return f"{base}/{quote}"


def _split_symbol(sym: str) -> tuple[str, str]:
    from arbkit.errors import ConfigError

    for quote in ("USDT", "USDC", "BUSD", "FDUSD", "USD", "BTC", "ETH", "EUR"):
        if sym.endswith(quote) and len(sym) > len(quote):
            return sym[: -len(quote)], quote
    raise ConfigError(f"--quotes {sym}=...: cannot tell base and quote apart; use a symbol "
                      "ending in USDT, USDC, BUSD, FDUSD, USD, BTC, ETH or EUR")
