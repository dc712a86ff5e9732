"""``arbkit data ...``: the catalog (add, ls, info, validate) and synthetic scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arbkit.cli.guard import catalog_note, check_folder_arg, set_interrupt_note

app = typer.Typer(no_args_is_help=True, help="Market data: the Parquet catalog (import, add, ls, "
                  "info, validate), ccxt download and recording, synthetic scenarios.")


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write quotes.parquet and config.toml into.")],
    scenario: Annotated[str | None, typer.Option(help="normal | always-win | always-lose | flat | flash-crash | outage")] = None,
    universe: Annotated[str | None, typer.Option(help="Several symbols, one scenario each: BTC=always-win,ETH=always-lose")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 7,
    events: Annotated[int | None, typer.Option(help="Number of quote rows (per symbol).")] = None,
    depth: Annotated[int, typer.Option(help="Book levels per side (1 = L1 only).")] = 5,
) -> None:
    """Write deterministic synthetic two-venue quotes and a matching config."""
    from arbkit.errors import ConfigError

    if (scenario is None) == (universe is None):
        raise ConfigError("data synth: pass --scenario NAME or --universe BASE=NAME,...")
    check_folder_arg(out, "--out")
    _check_synth_target(out)
    if universe is not None:
        from arbkit.data.universe import parse_universe, write_universe

        path = write_universe(parse_universe(universe), out, seed=seed, n_events=events,
                              depth=depth)
    else:
        from arbkit.data.synth import write_scenario

        path = write_scenario(scenario, out, seed=seed, n_events=events, depth=depth)
    typer.echo(f"wrote {path}/quotes.parquet and {path}/config.toml")


def _check_synth_target(out: Path) -> None:
    """``data synth`` writes quotes.parquet and config.toml: it replaces them only when they
    are an earlier synth's (its config's run.label starts with ``synth``), never a user's."""
    import tomllib

    from arbkit.errors import ConfigError

    held = [n for n in ("quotes.parquet", "config.toml") if (out / n).exists()]
    if not held:
        return
    try:
        label = str(tomllib.loads((out / "config.toml").read_text(encoding="utf-8-sig"))
                    .get("run", {}).get("label", ""))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        label = ""
    if not label.startswith("synth"):
        raise ConfigError(f"--out {out}: holds {' and '.join(held)} that data synth did not "
                          "write (synth writes those names); pass a new or empty folder")


Root = Annotated[Path | None, typer.Option(help="Catalog root (default: $ARBKIT_DATA_ROOT or ./data).")]
Start = Annotated[str | None, typer.Option(help="First UTC day, YYYY-MM-DD (inclusive).")]
End = Annotated[str | None, typer.Option(help="Last UTC day, YYYY-MM-DD (inclusive).")]
SelectionArg = Annotated[str | None, typer.Argument(
    help="kind\\[/venue\\[/symbol]] with * and ? wildcards, e.g. quotes/binance-spot/BTC*.")]


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="Quotes Parquet file or folder to import.")],
    root: Root = None,
) -> None:
    """Validate quotes and merge them into the catalog (one file per instrument and UTC day)."""
    from arbkit.data.catalog import Catalog

    cat = Catalog(root)
    set_interrupt_note(catalog_note(cat.root))
    parts = cat.add_quotes(path)
    typer.echo(f"{cat.root}: wrote {len(parts)} instrument-day file(s) from {path}")


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="Source format; `arbkit data formats` lists them.")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Input files (some formats default to the shared data).")] = None,
    root: Root = None,
    venue: Annotated[str | None, typer.Option(help="Venue id to store under.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol (exchange's own, e.g. BTCUSDT).")] = None,
    interval: Annotated[str | None, typer.Option(help="Bar interval, e.g. 1m, 5m, 1h.")] = None,
    levels: Annotated[int, typer.Option(help="Book levels to keep when depth is rebuilt.")] = 5,
    markets: Annotated[str, typer.Option(help="hftbacktest markets, comma-separated.")] = "spot,usdm",
    session: Annotated[str | None, typer.Option(help="hftbacktest capture session (A, B, C).")] = None,
    base: Annotated[str | None, typer.Option(help="FX base currency (fred-fx).")] = None,
    quote: Annotated[str | None, typer.Option(help="FX quote currency (fred-fx).")] = None,
    mapping: Annotated[Path | None, typer.Option("--map", help="Column mapping TOML (csv).")] = None,
) -> None:
    """Import third-party data into the catalog (validated; all or nothing per table)."""
    from arbkit.data.catalog import Catalog
    from arbkit.data.importers.registry import ImportOptions, run_import

    cat = Catalog(root)
    set_interrupt_note(catalog_note(cat.root))
    opts = ImportOptions(venue=venue, symbol=symbol, interval=interval, levels=levels,
                         markets=markets, session=session, base=base, quote=quote,
                         mapping=mapping)
    frames = run_import(fmt, list(paths or []), opts)
    label = f"{fmt} {' '.join(map(str, paths or [])) or '(default)'}"
    # every table is planned (merged, validated) before the first file is staged, and every
    # file of every table is staged before they are published together
    plans = [(kind, frame, cat.plan(kind, frame, name=label)) for kind, frame in frames]
    cat.write([part for _, _, plan in plans for part in plan])
    for kind, frame, plan in plans:
        typer.echo(f"{cat.root}: {kind}: {frame.height:,} rows -> {len(plan)} file(s)")


@app.command("formats")
def formats() -> None:
    """List the import formats."""
    from arbkit.data.importers.registry import FORMATS

    for name, (text, _) in FORMATS.items():
        typer.echo(f"{name:24s} {text}")


@app.command("ls")
def ls(selection: SelectionArg = None, root: Root = None, start: Start = None,
       end: End = None) -> None:
    """List the catalog: instruments, days, rows and size (read from Parquet footers)."""
    from rich.table import Table

    from arbkit.cli.render import console
    from arbkit.data.catalog import Catalog, Selection

    cat = Catalog(root).require()
    df = cat.ls(Selection.parse(selection or "*", start, end))
    _warn_orphans(cat)
    if df.height == 0:
        typer.echo(f"{cat.root}: catalog is empty (add quotes with `arbkit data add FILE`)")
        return
    table = Table(title=f"catalog {cat.root}")
    for c in ("kind", "venue", "symbol", "days", "first day", "last day", "rows", "MB"):
        table.add_column(c, justify="right" if c in ("days", "rows", "MB") else "left",
                         overflow="fold")
    for r in df.to_dicts():
        rows = f"{r['rows']:,}" + (f" + {r['damaged']} damaged file(s)" if r["damaged"] else "")
        table.add_row(r["kind"], r["venue"], r["symbol"], str(r["days"]), str(r["first_day"]),
                      str(r["last_day"]), rows, f"{r['bytes'] / 2**20:.2f}")
    console().print(table)


@app.command("info")
def info(selection: SelectionArg = None, root: Root = None, start: Start = None,
         end: End = None,
         gap_s: Annotated[float, typer.Option(help="A silence longer than this is a gap.")] = 60.0,
         ) -> None:
    """Rows, span, gaps (stale: others kept quoting; quiet: all silent), crossed rows, clocks."""
    from rich.table import Table

    from arbkit.cli.render import console
    from arbkit.data.catalog import Catalog, Selection, fmt_ts

    if not gap_s > 0 or gap_s == float("inf"):
        from arbkit.errors import ConfigError

        raise ConfigError(f"--gap-s {gap_s:g}: a gap is a silence longer than a positive number "
                          "of seconds; pass e.g. --gap-s 60")
    cat = Catalog(root).require()
    sel = Selection.parse(selection, start, end)
    infos = cat.info(sel, gap_s=gap_s)
    from arbkit.data.tables import time_column

    tcol = time_column(sel.kind)
    con = console()
    for i in infos:
        table = Table(title=f"{cat.root}: {sel.kind}/{i.venue}/{i.symbol}", show_header=False)
        table.add_column("field")
        table.add_column("value", justify="right")
        for k, v in (("days", i.days), ("rows", f"{i.rows:,}"), ("first (UTC)", fmt_ts(i.first_ns)),
                     (f"last {tcol} (UTC)", fmt_ts(i.last_ns)), ("book levels", i.depth_levels),
                     ("median interval ms", f"{i.median_interval_ms:.3g}"),
                     (f"gaps > {gap_s:g} s", i.gaps),
                     ("  stale (others kept quoting)", i.stale_gaps),
                     ("  quiet (all silent)", i.quiet_gaps),
                     ("longest gap s", f"{i.longest_gap_s:,.1f}"),
                     ("crossed rows (untradable)", i.crossed_rows),
                     ("recv - exch median ms", "n/a" if i.recv_minus_exch_ms_p50 != i.recv_minus_exch_ms_p50
                      else f"{i.recv_minus_exch_ms_p50:,.1f}"),
                     ("clock offset per session ms", ", ".join(f"{x:,.1f}" for x in i.clock_offsets_ms) or "n/a")):
            table.add_row(k, str(v))
        con.print(table)


@app.command("validate")
def validate(selection: SelectionArg = None, root: Root = None, start: Start = None,
             end: End = None) -> None:
    """Validate every selected instrument-day file; exit 1 if any fails."""
    from arbkit.data.catalog import Catalog, Selection
    from arbkit.errors import DataError

    cat = Catalog(root).require()
    results = cat.validate(Selection.parse(selection or "*", start, end))
    if not results:
        raise DataError(f"catalog {cat.root}: nothing selected by "
                        f"{Selection.parse(selection, start, end)} (see `arbkit data ls`)")
    bad = [(p, err) for p, err in results if err]
    for p, err in results:
        typer.echo(f"{'ok  ' if err is None else 'FAIL'} {p.kind}/{p.venue}/{p.symbol}/{p.day}"
                   + ("" if err is None else f": {err}"))
    orphans = cat.orphans()
    for f in orphans:
        typer.echo(f"FAIL {f}: {ORPHAN}")
    typer.echo(f"{len(results) - len(bad)} ok, {len(bad) + len(orphans)} failed")
    if bad or orphans:
        raise typer.Exit(1)


ORPHAN = ("orphan temporary file of an interrupted or killed write (never read); delete it "
          "once no import is running")


def _warn_orphans(cat) -> None:
    orphans = cat.orphans()
    if orphans:
        more = f" (+{len(orphans) - 3} more)" if len(orphans) > 3 else ""
        typer.echo(f"warning: {len(orphans)} {ORPHAN.split(' (')[0]}(s) in the catalog: "
                   f"{', '.join(map(str, orphans[:3]))}{more}; delete them once no import is "
                   "running (`arbkit data validate` lists them)", err=True)


Url = Annotated[str | None, typer.Option(
    "--url", envvar="ARBKIT_VENUE_URL",
    help="Base URL of an exchange emulator (e.g. http://127.0.0.1:8765) instead of the venue.")]


@app.command("download")
def download(
    venue: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT.")],
    kind: Annotated[str, typer.Option(help="ohlcv (paged bars), book (polled snapshots) or funding (perpetuals, e.g. BTC/USDT:USDT).")] = "ohlcv",
    since: Annotated[str | None, typer.Option(help="ohlcv: first bar, YYYY-MM-DD[THH:MM] UTC.")] = None,
    until: Annotated[str | None, typer.Option(help="ohlcv: stop before this time (default: now).")] = None,
    timeframe: Annotated[str, typer.Option(help="ohlcv: bar interval, e.g. 1m, 5m, 1h.")] = "1m",
    levels: Annotated[int, typer.Option(help="book: levels per side.")] = 5,
    every_s: Annotated[float, typer.Option(help="book: seconds between polls.")] = 1.0,
    duration_s: Annotated[float, typer.Option(help="book: seconds to poll for.")] = 60.0,
    store_as: Annotated[str | None, typer.Option(help="Venue name in the catalog (default: the ccxt id).")] = None,
    root: Root = None,
    url: Url = None,
) -> None:
    """Download history through ccxt REST into the catalog (resumable, rate-limit aware)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from arbkit.data import download as dl
    from arbkit.data.catalog import Catalog
    from arbkit.errors import ConfigError
    from arbkit.venues.client import make_exchange

    dl.check_kind(kind)
    syms = [s.strip() for s in symbols.split(",") if s.strip()]
    cat = Catalog(root)
    ex = make_exchange(venue, url=url)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        tasks: dict[str, int] = {}

        def progress(sym: str, done: int, total: int) -> None:
            if sym not in tasks:
                tasks[sym] = bar.add_task(f"{venue} {sym} {kind}", total=total)
            bar.update(tasks[sym], completed=done, total=total)

        if kind in ("ohlcv", "funding") and since is None:
            raise ConfigError(f"download --kind {kind}: pass --since YYYY-MM-DD")
        if kind == "funding":
            rep = dl.download_funding(ex, cat, syms, since_ms=dl.parse_day(since, "since"),
                                      until_ms=None if until is None else dl.parse_day(until, "until"),
                                      store_as=store_as)
        elif kind == "ohlcv":
            rep = dl.download_ohlcv(ex, cat, syms, timeframe=timeframe,
                                    since_ms=dl.parse_day(since, "since"),
                                    until_ms=None if until is None else dl.parse_day(until, "until"),
                                    store_as=store_as, progress=progress)
        else:
            rep = dl.poll_order_book(ex, cat, syms, levels=levels, every_s=every_s,
                                     duration_s=duration_s, store_as=store_as, progress=progress)
    for sym, n in rep.rows.items():
        resumed = rep.resumed_from_ms.get(sym)
        note = f" (resumed after {resumed} ms)" if resumed is not None else ""
        why = rep.notes.get(sym)
        typer.echo(f"{sym}: {n:,} new rows{note}" + (f": {why}" if why else ""))
    typer.echo(f"{rep.pages} pages, {rep.retries} retries, {rep.rate_limited} rate-limited (429)")


@app.command("record")
def record(
    venue: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[str, typer.Option(help="Comma-separated unified symbols.")],
    channels: Annotated[str, typer.Option(help="Any of bbo,book,trades.")] = "bbo,book,trades",
    duration_s: Annotated[float, typer.Option(help="Seconds to record.")] = 60.0,
    flush_s: Annotated[float, typer.Option(help="Seconds between rolling part files.")] = 10.0,
    levels: Annotated[int, typer.Option(help="Book levels per side.")] = 5,
    gap_s: Annotated[float, typer.Option(help="A silence longer than this counts as a gap.")] = 5.0,
    store_as: Annotated[str | None, typer.Option(help="Venue name in the catalog (default: the ccxt id).")] = None,
    root: Root = None,
    url: Url = None,
) -> None:
    """Record websocket data through ccxt.pro into the catalog (reconnects on drops)."""
    import asyncio

    from arbkit.data.catalog import Catalog
    from arbkit.data.record import Recorder, RecordSpec
    from arbkit.venues.client import make_exchange

    spec = RecordSpec(symbols=[s.strip() for s in symbols.split(",") if s.strip()],
                      channels=tuple(c.strip() for c in channels.split(",") if c.strip()),
                      duration_s=duration_s, flush_s=flush_s, levels=levels, gap_s=gap_s,
                      store_as=store_as)
    spec.check()

    async def go() -> tuple[dict, int]:
        ex = make_exchange(venue, url=url, pro=True)
        try:
            rec = Recorder(ex, Catalog(root), spec)
            return await rec.run(), rec.connections_opened
        finally:
            await ex.close()

    stats, connections = asyncio.run(go())
    typer.echo(f"websocket connections opened: {connections} (ccxt opens one per stream group "
               "at the start; more mean reconnects after drops)")
    for key, st in stats.items():
        if st.refused:
            typer.echo(f"{key}: not recorded: {st.refused}")
            continue
        extra = (f", {st.missed:,} trades missed (id gaps)" if key.startswith("trades") else
                 f", {st.skipped} snapshot(s) without exchange time skipped"
                 if key.startswith("book") else "")
        typer.echo(f"{key}: {st.messages:,} messages, {st.rows:,} rows, {st.reconnects} "
                   f"errors retried, longest gap {st.longest_gap_s:.2f} s, {st.gaps} gaps > "
                   f"{gap_s:g} s{extra}")


@app.command("compact")
def compact_cmd(
    parts: Annotated[Path, typer.Argument(help="A recording's parts folder, <root>/_recording/<session>.")],
    root: Root = None,
) -> None:
    """Merge a recording's part files into the catalog (e.g. after a crash), then remove them."""
    from arbkit.data.catalog import Catalog
    from arbkit.data.record import compact

    for table, n in compact(Catalog(root), parts).items():
        typer.echo(f"{table}: {n:,} rows merged")
