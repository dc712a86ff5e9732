"""``arbkit live``: the paper session with real orders (runtime/live.py, venues/execution.py).

Refuses, with one line, unless ``--i-understand-real-money`` is given and every venue's keys
are in the environment (``ARBKIT_BINANCE_KEY`` / ``ARBKIT_BINANCE_SECRET``); keys are read
from there only and handed to the ccxt object, never printed, logged or stored.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from arbkit.cli.paper import DEFAULT_REDIS, REDIS_ENV, Redis, SessionName
from arbkit.errors import ArbkitError, ConfigError

KEY_ENV, SECRET_ENV = "ARBKIT_BINANCE_KEY", "ARBKIT_BINANCE_SECRET"
OPT_IN = "--i-understand-real-money"


def live(
    preset: Annotated[str | None, typer.Option(help="presets/<name>.toml: re-checked by a short backtest before the session starts.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML config instead of a preset (no re-check).")] = None,
    real_money: Annotated[bool, typer.Option(OPT_IN, help="Required: this command sends real orders with the keys of $ARBKIT_BINANCE_KEY / $ARBKIT_BINANCE_SECRET.")] = False,
    max_notional: Annotated[float | None, typer.Option(help="Hard cap per order, in the quote currency, on top of the preset's risk limits: an order above it is never sent (reject 'over_live_cap').")] = None,
    emulator: Annotated[Path | None, typer.Option(help="Rehearsal, no real money: quotes (Parquet file/folder or catalog) served by one local Binance emulator per venue, whose private API takes the orders (made-up keys, the config's starting balances and fees); the real ccxt client throughout.")] = None,
    venues_file: Annotated[Path | None, typer.Option("--venues", help="Rehearsal on emulators that outlive this process: the file `arbkit emulator venues --config ... --out FILE` wrote (kill this session, then --resume it against the same venues).")] = None,
    speed: Annotated[float, typer.Option(help="Replay speed of --emulator: data seconds per wall second.")] = 20.0,
    duration_s: Annotated[float | None, typer.Option(help="Stop after this many wall seconds (default: until Ctrl-C).")] = None,
    session: SessionName = None,
    resume: Annotated[bool, typer.Option(help="Continue the session after a crash or Ctrl-C: snapshot + journal, then the venue's open orders resolved by client id.")] = False,
    redis: Redis = None,
    results: Annotated[str | None, typer.Option(help="Results store: a DuckDB path or postgresql:// URL (default results/arbkit.duckdb).")] = None,
    record_dir: Annotated[Path | None, typer.Option(help="Where the session's events are recorded (default data/sessions/<session>).")] = None,
    checkpoint_s: Annotated[float, typer.Option(help="Wall seconds between checkpoints.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final report as JSON.")] = False,
    http: Annotated[str | None, typer.Option(help="Serve /metrics, /health and the dashboard page on HOST:PORT (e.g. 127.0.0.1:8787; port 0 picks one). Controls on the page need the token of $ARBKIT_CONTROL_TOKEN (docs/operations.md).")] = None,
) -> None:
    """Trade a preset with real orders (Binance spot): the paper session's kernel with its venue EXTERNAL."""
    rehearsal = emulator is not None or venues_file is not None
    if emulator is not None and venues_file is not None:
        raise ConfigError("--emulator and --venues: give one (--emulator runs the emulators "
                          "in this process, --venues uses running ones)")
    if not rehearsal and not real_money:
        raise ConfigError(f"arbkit live sends real orders; add {OPT_IN} to go on (rehearse "
                          "first with `arbkit live --emulator DATA`, same preset)")
    missing = [k for k in (KEY_ENV, SECRET_ENV) if not os.environ.get(k)]
    if not rehearsal and missing:
        raise ConfigError(f"{' and '.join('$' + k for k in missing)} not set: export the API "
                          "key and secret of the account to trade (keys are read from the "
                          "environment only)")
    if max_notional is not None and max_notional <= 0:
        raise ConfigError(f"--max-notional {max_notional}: must be > 0 (quote currency)")
    if (duration_s is not None and duration_s <= 0) or speed <= 0:
        raise ConfigError(f"--duration-s {duration_s} / --speed {speed}: must be > 0")
    if http is not None:
        from arbkit.monitor.web import parse_http

        parse_http(http)
    import logging

    # the execution client's halts and alerts reach the operator as the command's one error
    # line (and the monitor), not as extra log lines on stderr
    logging.getLogger("arbkit.venues").addHandler(logging.NullHandler())
    from arbkit.cli.paper import _config, _live_factory, _monitor, _print_report, _serve
    from arbkit.runtime.clock import wall_ns
    from arbkit.runtime.live import LiveNode
    from arbkit.runtime.node import NodeOptions
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore

    cfg, name, meta = _config(preset, config)
    markets = _markets(cfg)
    name = session or name
    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    rec = record_dir or Path("data") / "sessions" / name
    venues = {v: {"markets": m, "url": None, "env": None} for v, m in markets.items()}
    factory, clock = _live_factory(cfg), wall_ns
    if venues_file is not None:  # (checked before anything is opened or written)
        factory, clock = _remote(cfg, venues_file, venues)
        meta = {**meta, "rehearsal": str(venues_file)}
    store = SessionStore(url, name, durable=True)
    if emulator is not None:
        factory, clock = _rehearsal(cfg, emulator, speed, venues)
        meta = {**meta, "rehearsal": str(emulator)}
    results_store = open_store(**({"url": results} if results and "://" in results
                                  else {"path": results or "results/arbkit.duckdb"}))
    node = LiveNode(cfg, execution=ClientVenue(name, url, venues), max_notional=max_notional,
                    store=store, results=results_store, record_dir=rec, clock=clock,
                    source_factory=factory, extra_meta=meta,
                    options=NodeOptions(session=name, checkpoint_s=checkpoint_s,
                                        duration_s=duration_s, resume=resume))
    node.monitor = _monitor()
    node.on_halt = lambda reason: typer.echo(
        f"alert: trading halted, the venue holds what this session does not know ({reason}); "
        "no new entries, nothing at the venue touched: check the account, then stop this "
        "session (Ctrl-C) and start it again with --resume", err=True)
    try:
        report = asyncio.run(node.run() if http is None else _serve(node, http))
        interrupted = node.interrupted
        if not interrupted:
            node.checkpoint()
            report = node.report()
    finally:
        results_store.close()
    _print_report(report, node, as_json, interrupted, rec)
    if interrupted:
        raise typer.Exit(130)


def _rehearsal(cfg: Any, data: Path, speed: float,
               venues: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """One emulator per venue (quotes of ``data``; an account with made-up keys, the config's
    starting balances and taker fee); ``venues`` gets each one's URL and keys. Returns the
    node's source factory and clock (the emulators' shared replay clock)."""
    import atexit
    import logging

    # the emulators' web server logs a client that hung up mid-request (a session that ends
    # or halts closes its sockets): noise for the rehearsal's operator, not an error of theirs
    logging.getLogger("aiohttp").addHandler(logging.NullHandler())

    from arbkit.runtime.emulated import rehearsal_accounts
    from arbkit.venues.emulator.multi import run_venues

    # the environment's keys when set (the emulators then accept exactly those), else made up
    keys = rehearsal_keys(cfg)
    # paused until the session's source starts (EmulatedSource.run): a first run compiles
    # the kernel for minutes meanwhile, and the replay must not run out before it trades
    cm = run_venues(data, cfg, speed=speed, accounts=rehearsal_accounts(cfg, keys),
                    start_paused=True)
    emulated = cm.__enter__()
    atexit.register(cm.__exit__, None, None, None)
    for v, spec in venues.items():
        spec["url"], spec["env"] = emulated[v], {KEY_ENV: keys[v][0], SECRET_ENV: keys[v][1]}
    from arbkit.runtime.emulated import EmulatedSource

    return (lambda queue, skip: EmulatedSource(emulated, queue)), emulated.clock.now_ns


def rehearsal_keys(cfg: Any) -> dict[str, tuple[str, str]]:
    """Per venue of ``cfg``: the environment's key and secret when set (the emulators then
    accept exactly those), else made-up ones."""
    import secrets

    return {inst.venue: (os.environ.get(KEY_ENV) or secrets.token_hex(16),
                         os.environ.get(SECRET_ENV) or secrets.token_hex(32))
            for inst in cfg.instruments}


def _remote(cfg: Any, path: Path, venues: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """The emulators ``arbkit emulator venues`` serves (they outlive this process)."""
    from arbkit.runtime.emulated import EmulatedSource, RemoteVenues

    remote = RemoteVenues.load(path, cfg)
    for v, spec in venues.items():
        spec["url"] = remote[v]
        if v in remote.keys:
            spec["env"] = {KEY_ENV: remote.keys[v][0], SECRET_ENV: remote.keys[v][1]}
    return (lambda queue, skip: EmulatedSource(remote, queue)), remote.clock.now_ns


def _markets(cfg: Any) -> dict[str, dict[str, str]]:
    """Venue -> {instrument key -> ccxt symbol}; live execution covers Binance spot."""
    out: dict[str, dict[str, str]] = {}
    for inst in cfg.instruments:
        if not inst.venue.startswith("binance") or inst.kind != "spot":
            raise ConfigError(f"instrument {inst.key}: live execution covers Binance spot "
                              f"only (venue {inst.venue!r}, kind {inst.kind!r}); paper-trade "
                              "the other legs with `arbkit paper`")
        out.setdefault(inst.venue, {})[inst.key] = f"{inst.base}/{inst.quote}"
    return out


class ClientVenue:
    """The node's ``Execution`` over one ``venues.execution.ExecutionClient`` per venue
    (Binance through ccxt). ``venues``: venue -> {"markets": {inst key: ccxt symbol}, "url": a
    local emulator's address or None, "env": where its keys are read (default the process
    environment)}. Each client keeps its own journal (session ``<session>.<venue>``); its
    reports reach the node tagged with its number (the node's exactly-once bookkeeping)."""

    def __init__(self, session: str, redis_url: str, venues: dict[str, dict[str, Any]]) -> None:
        self.session, self.redis_url, self.venues = session, redis_url, venues
        self.clients: list[Any] = []
        self.route: dict[str, int] = {}
        self.on_report: Any = None
        # ``on_halt(venue, reason)``: a running client halted (an order, fill or balance at
        # its venue the session does not know); every other client is halted with it (no
        # venue trades on while one disagrees) and the node stops entering: a human decides
        self.on_halt: Any = None
        self.started = False
        self.halts: list[dict[str, str]] = []
        # reports held from the start until the node has its backlog (recover) or has none
        # (release): a report a client makes while reconciling (a final of an order whose
        # fill the node never got) must not overtake the older ones redelivered from the
        # journal (the crash suite saw a fill dropped behind its own final report)
        self._held: list[tuple[int, int, Any]] | None = []

    async def start(self, on_report: Any) -> None:
        import redis.asyncio as aioredis

        from arbkit.venues.execution import ExecutionClient

        self.on_report = on_report
        for k, (venue, spec) in enumerate(self.venues.items()):
            client = ExecutionClient(
                session=f"{self.session}.{venue}", redis=aioredis.from_url(self.redis_url),
                markets=spec["markets"], url=spec.get("url"), env=spec.get("env"),
                on_report=lambda seq, rep, k=k: self._deliver(rep, seq, k),
                on_alert=lambda reason, venue=venue: self._halted(venue, reason))
            self.clients.append(client)
            for inst in spec["markets"]:
                self.route[inst] = k
        # every venue reconciles at once (its own account); any refusal stops the start
        states = await asyncio.gather(*(c.start() for c in self.clients),
                                      return_exceptions=True)
        for venue, client, state in zip(self.venues, self.clients, states, strict=True):
            if isinstance(state, BaseException):
                await self.close()
                if isinstance(state, ArbkitError):
                    raise state
                from arbkit.venues.explain import one_line

                raise ConfigError(f"{venue}: " + one_line(
                    state, action="start (markets, reconciliation)",
                    advice="nothing was sent; start again (--resume) when the venue answers"))
            if state != "ready":
                reasons = "; ".join(client.halt_reasons) or state
                await self.close()
                raise ConfigError(f"reconciliation with {venue} failed: {reasons}; nothing "
                                  "was sent (check the account, then start again)")
        self.started = True

    def journal_exists(self) -> bool:
        """Whether an execution journal of this session name is in Redis (any venue)."""
        from arbkit.venues.journal import any_journal

        return any_journal(self.redis_url, f"{self.session}.")

    def _halted(self, venue: str, reason: str) -> None:
        if not self.started:  # at start: the start itself refuses (one line, above)
            return
        first = not self.halts
        self.halts.append({"venue": venue, "reason": reason})
        if not first:  # (the others, halted below, call back here too)
            return
        for other, client in zip(self.venues, self.clients, strict=True):
            if other != venue and client.state != "halted":
                client.halt(f"{venue} halted: {reason}")
        if self.on_halt is not None:
            self.on_halt(venue, reason)

    def reconciliation(self) -> dict[str, Any]:
        """The clients' state for the session's status (``arbkit status``, /health, alerts)."""
        states = {v: c.state for v, c in zip(self.venues, self.clients, strict=True)}
        failed = any(st == "halted" for st in states.values())
        state = ("halted" if failed else "ready" if self.started else "reconciling")
        return {"state": state, "failed": failed, "venues": states,
                "reasons": [f"{h['venue']}: {h['reason']}" for h in self.halts][:10]}

    def submit(self, intent: dict[str, Any]) -> None:
        self.clients[self.route[intent["inst"]]].submit_nowait(intent)

    def _deliver(self, report: Any, seq: int, source: int) -> None:
        if self._held is not None:
            self._held.append((source, seq, report))
        else:
            self.on_report(report, seq, source)

    def release(self, after: dict[int, int] | None = None) -> None:
        """Deliver the held reports, per client in journal order, skipping those at or
        below ``after[client]`` (already delivered); from now on reports go straight on."""
        held, self._held = self._held or [], None
        after = after or {}
        for source, seq, report in sorted(held, key=lambda h: (h[0], h[1])):
            if seq and seq <= after.get(source, 0):
                continue
            self.on_report(report, seq, source)

    async def recover(self, intents: list[dict[str, Any]], after: dict[int, int]) -> None:
        from arbkit.core import types as T

        after = dict(after)
        for k, client in enumerate(self.clients):
            for seq, rep in await client.reports_after(after.get(k, 0)):
                self.on_report(rep, seq, k)
                after[k] = max(after.get(k, 0), seq)
        self.release(after)
        for it in intents:
            k = self.route[it["inst"]]
            if it["oid"] not in self.clients[k].orders:  # never journaled: never sent
                self.on_report((0, it["oid"], 0.0, 0.0, 0.0, T.ST_CANCELLED, 0, 0), 0, k)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
