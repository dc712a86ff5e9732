"""``arbkit paper``: the backtest's kernel on live quotes, in a Redis session that survives a
crash; ``arbkit status`` and ``arbkit ctl`` for the operator."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from arbkit.errors import ConfigError

REDIS_ENV = "ARBKIT_REDIS_URL"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"

Redis = Annotated[str | None, typer.Option(help=f"Redis URL of the session store (default ${REDIS_ENV} or {DEFAULT_REDIS}).")]
SessionName = Annotated[str | None, typer.Option("--session", help="Session name (default: the preset's name, or the config file's stem).")]


def paper(
    preset: Annotated[str | None, typer.Option(help="presets/<name>.toml: re-checked by a short backtest before the session starts.")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML config instead of a preset (no re-check).")] = None,
    emulator: Annotated[Path | None, typer.Option(help="Quotes (Parquet file/folder or catalog) served by a local exchange emulator per venue, through the real ccxt client: no internet.")] = None,
    replay: Annotated[Path | None, typer.Option(help="Quotes fed straight to the session in their recorded order and times (deterministic, no network).")] = None,
    speed: Annotated[float, typer.Option(help="Replay speed of --emulator / --replay: data seconds per wall second.")] = 20.0,
    duration_s: Annotated[float | None, typer.Option(help="Stop after this many wall seconds (default: until Ctrl-C, or the end of --replay/--emulator data).")] = None,
    session: SessionName = None,
    resume: Annotated[bool, typer.Option(help="Continue the session after a crash or Ctrl-C: restore its snapshot, replay its journal.")] = False,
    clean: Annotated[bool, typer.Option(help="Start over: back up and clear the session's Redis keys (the results store and recordings are kept).")] = False,
    redis: Redis = None,
    results: Annotated[str | None, typer.Option(help="Results store: a DuckDB path or postgresql:// URL (default results/arbkit.duckdb).")] = None,
    record_dir: Annotated[Path | None, typer.Option(help="Where the session's events are recorded (default data/sessions/<session>).")] = None,
    checkpoint_s: Annotated[float, typer.Option(help="Wall seconds between checkpoints (rows to the results store, snapshot to Redis).")] = 5.0,
    view: Annotated[bool, typer.Option(help="Live terminal view (rich).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final report as JSON.")] = False,
    http: Annotated[str | None, typer.Option(help="Serve /metrics, /health and the dashboard page on HOST:PORT (e.g. 127.0.0.1:8787; port 0 picks one). Controls on the page need the token of $ARBKIT_CONTROL_TOKEN (docs/operations.md).")] = None,
) -> None:
    """Paper-trade a preset: live quotes through the backtest's kernel (simulated venue)."""
    from arbkit.runtime.node import NodeOptions, PaperNode
    from arbkit.store import open_store
    from arbkit.store.redis import SessionStore

    cfg, name, meta = _config(preset, config)
    name = session or name
    if sum(x is not None for x in (emulator, replay)) > 1:
        raise ConfigError("--emulator and --replay are two sources; give one")
    if resume and clean:
        raise ConfigError("--resume continues a session, --clean starts it over; give one")
    if speed <= 0 or (duration_s is not None and duration_s <= 0):
        raise ConfigError(f"--speed {speed} / --duration-s {duration_s}: must be > 0")
    if http is not None:
        from arbkit.monitor.web import parse_http

        parse_http(http)
    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    store = SessionStore(url, name)
    from arbkit.cli.compiling import note_once
    from arbkit.cli.render import console

    note_once(console(stderr=True))
    if clean:
        n = store.clean(Path("logs") / "session-backups", force=True)
        typer.echo(f"session {name}: {n} Redis keys cleared (backup: {store.last_backup})",
                   err=True)
    results_store = open_store(**({"url": results} if results and "://" in results
                                  else {"path": results or "results/arbkit.duckdb"}))
    rec = record_dir or Path("data") / "sessions" / name
    factory, clock = _source(cfg, emulator, replay, speed)
    live_view = _view(name) if view and not as_json else None
    node = PaperNode(cfg, store=store, results=results_store, record_dir=rec, clock=clock,
                     source_factory=factory, view=live_view, extra_meta=meta,
                     options=NodeOptions(session=name, checkpoint_s=checkpoint_s,
                                         duration_s=duration_s, resume=resume,
                                         heartbeat_ms=None if replay is not None else 100.0))
    node.monitor = _monitor()
    try:
        if live_view is not None:
            live_view.start()
        # Ctrl-C: the node stops between batches
        report = asyncio.run(node.run() if http is None else _serve(node, http))
        interrupted = node.interrupted
        if not interrupted:
            node.finish()
            report = node.report()
    finally:
        if live_view is not None:
            live_view.stop()
        results_store.close()
    _print_report(report, node, as_json, interrupted, rec)
    if interrupted:
        raise typer.Exit(130)


def _monitor() -> Any:
    """Metrics, health, the dashboard's data and arbkit's own alerts (docs/operations.md)."""
    from arbkit.monitor.alerts import from_env
    from arbkit.monitor.session import SessionMonitor

    return SessionMonitor(alerts=from_env())


def _serve(node: Any, http: str) -> Any:
    from arbkit.monitor.web import serve_node

    def announce(server: Any) -> None:
        how = ("controls with the token of $ARBKIT_CONTROL_TOKEN" if server.controls_on else
               "read-only: set ARBKIT_CONTROL_TOKEN for controls")
        typer.echo(f"dashboard {server.url} ({how}); metrics {server.url}metrics, health "
                   f"{server.url}health", err=True)

    return serve_node(node, http, announce=announce)


def _config(preset: str | None, config: Path | None) -> tuple[Any, str, dict]:
    from arbkit.config import load_config

    if (preset is None) == (config is None):
        raise ConfigError("give --preset NAME (a promoted preset, re-checked first) or "
                          "--config FILE")
    if config is not None:
        return load_config(config), config.stem, {"config_file": str(config)}
    from arbkit.tune.preset import load_preset, run_preset

    p = load_preset(preset)
    _, _, bad = run_preset(p)
    if bad:
        k, was, now = bad[0]
        raise ConfigError(f"preset {p.name}: the re-check backtest does not reproduce "
                          f"{k} (stored {was}, now {now}); the code or data changed since it "
                          "was promoted: promote it again before paper-trading it")
    return p.config, p.name, {"preset": p.name}


def _source(cfg: Any, emulator: Path | None, replay: Path | None, speed: float) -> tuple[Any, Any]:
    from arbkit.runtime.clock import wall_ns

    if replay is not None:
        from arbkit.engine.backtest import prepare
        from arbkit.runtime.replay import ReplaySource

        arrays = prepare(replay, cfg).arrays

        def replay_factory(queue: asyncio.Queue, skip: int) -> Any:
            return ReplaySource(queue, arrays, skip, speed=speed)

        return replay_factory, wall_ns
    if emulator is not None:
        return _EmulatorSource.factory(cfg, emulator, speed)
    return _live_factory(cfg), wall_ns


class _EmulatorSource:
    """Emulators for every venue of the config (background threads) + ccxt feeds on them."""

    @staticmethod
    def factory(cfg: Any, data: Path, speed: float) -> tuple[Any, Any]:
        from arbkit.runtime.emulated import EmulatedSource
        from arbkit.venues.emulator.multi import run_venues

        cm = run_venues(data, cfg, speed=speed, start_paused=True)
        venues = cm.__enter__()
        import atexit

        atexit.register(cm.__exit__, None, None, None)
        return (lambda queue, skip: EmulatedSource(venues, queue)), venues.clock.now_ns


def _live_factory(cfg: Any) -> Any:
    from arbkit.venues.feed import FeedSet, StreamSpec

    specs = []
    for inst in cfg.instruments:
        symbol = f"{inst.base}/{inst.quote}" + (f":{inst.quote}" if inst.kind == "linear_perp"
                                                else f":{inst.base}" if inst.kind == "inverse_perp"
                                                else "")
        specs.append(StreamSpec(key=inst.key, exchange=inst.venue.split("_")[0], symbol=symbol))
    from arbkit.runtime.clock import wall_ns

    return lambda queue, skip: FeedSet(specs, queue, wall_ns)


def _view(name: str) -> Any:
    from arbkit.runtime.view import SessionView

    return SessionView(name)


def _print_report(report: Any, node: Any, as_json: bool, interrupted: bool, rec: Path) -> None:
    import numpy as np

    lat = report.decide_us
    out = {"session": report.session, "run_id": report.run_id, "events": report.events,
           "quotes": report.quotes, "trades": report.trades, "wins": report.wins,
           "win_rate": None if not report.trades else report.wins / report.trades,
           "net_pnl": report.net_pnl, "checkpoints": report.checkpoints,
           "resumed_from_seq": report.resumed_from, "recording": str(rec),
           "decide_us_p50": float(np.percentile(lat, 50)) if lat else None,
           "decide_us_p99": float(np.percentile(lat, 99)) if lat else None,
           "interrupted": interrupted}
    mode = getattr(node, "mode", "paper")
    if as_json:
        typer.echo(json.dumps(out, indent=1))
    else:
        wr = "n/a" if out["win_rate"] is None else f"{out['win_rate']:.0%}"
        typer.echo(f"{mode} session {report.session}: {report.events:,} events "
                   f"({report.quotes:,} quotes), {report.trades} round trips, win rate {wr}, "
                   f"net PnL {report.net_pnl:,.4f}; results run {report.run_id}; recording {rec}")
    if getattr(node, "feeds_ended", False) and not interrupted:  # (stderr, as below)
        n = node.open_routes() if hasattr(node, "open_routes") else 0
        typer.echo("note: the session ended with its feeds (a replay's data ran out, or the "
                   "venues stopped)" + (f"; {n} route(s) still hold a position (`arbkit "
                                        "status`): `arbkit ctl stop`, then --resume it, exits "
                                        "them and enters nothing"
                                        if n else ""), err=True)
    if interrupted:  # (on stderr: the JSON on stdout stays JSON)
        typer.echo(f"interrupted: checkpoint written; continue with "
                   f"`{_resume_command(mode, report.session)}`", err=True)


def _resume_command(mode: str, session: str) -> str:
    """The command this process ran, made a resume of ``session`` (same preset or config,
    source, Redis; ``--clean`` dropped; a URL's password as ***)."""
    import shlex
    import sys

    from arbkit.store import mask_url

    args = list(sys.argv[1:])
    if not args or args[0] != mode:  # (not started from the command line: the short form)
        return f"arbkit {mode} --session {session} --resume"
    out: list[str] = []
    it = iter(args[1:])
    for a in it:
        if a in ("--clean", "--no-clean", "--resume", "--no-resume"):
            continue
        if a == "--session":
            next(it, None)
            continue
        if a.startswith("--session="):
            continue
        out.append(mask_url(a) if "://" in a else a)
    return shlex.join(["arbkit", mode, *out, "--session", session, "--resume"])


def status(
    redis: Redis = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every session in Redis: alive or not, routes, PnL, feeds."""
    from arbkit.store.redis import SessionStore

    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    out = {}
    for name in SessionStore.sessions(url):
        st = SessionStore(url, name)
        out[name] = {"alive": st.status() is not None, "status": st.status(), "meta": st.meta()}
    if as_json:
        typer.echo(json.dumps(out, indent=1, default=str))
        return
    if not out:
        typer.echo(f"no session in {url}")
    for name, s in out.items():
        typer.echo(_status_line(name, s["status"], s["meta"] or {}))
        for r in (s["status"] or {}).get("routes", []):
            typer.echo(f"  {r['route']}: {r['state']}{' (off)' if r.get('off') else ''}, "
                       f"round trips {r.get('trades', 0)}, net PnL {_num(r.get('net_pnl'))}")


def _num(v: Any, digits: int = 2) -> str:
    return f"{v:,.{digits}f}" if isinstance(v, int | float) else "?"


def _status_line(name: str, st: dict | None, meta: dict) -> str:
    """One line per session: running or not, PnL, drawdown, halt, health (text form)."""
    mode = meta.get("mode", "paper")
    if st is None:  # ended or crashed: its last checkpoint
        last = meta.get("last_checkpoint") or {}
        if not last:
            return f"{name} ({mode}): not running; no checkpoint yet"
        return (f"{name} ({mode}): not running; at its last checkpoint ({last.get('at', '?')}) "
                f"round trips {last.get('trades', 0)}, net PnL {_num(last.get('net_pnl'))}; "
                f"`--resume` continues it")
    health = st.get("health") or {}
    rec = (st.get("reconciliation") or {}).get("state", "n/a")
    bits = [f"round trips {st.get('trades', 0)}", f"net PnL {_num(st.get('net_pnl'))}",
            f"drawdown {_num(st.get('drawdown'))}", f"halt {st.get('halt_reason', '?')}",
            f"{'ready' if health.get('ready') else 'not ready'}"]
    if rec != "n/a":
        bits.append(f"reconciliation {rec}")
    stale = (health.get("checks") or {}).get("stale_feeds") or []
    if stale:
        bits.append(f"stale feeds {', '.join(stale)}")
    return f"{name} ({mode}): running; " + ", ".join(bits)


ctl_app = typer.Typer(no_args_is_help=True, help="Operator controls of a running session.")


def _push(session: str | None, redis: str | None, control: str) -> None:
    from arbkit.store.redis import SessionStore

    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    names = [session] if session else SessionStore.sessions(url)
    if not names:
        raise ConfigError(f"no session in {url}; start one with `arbkit paper`")
    if len(names) > 1:
        raise ConfigError(f"{len(names)} sessions in {url} ({', '.join(names)}); name one "
                          "with --session")
    from arbkit.monitor.control import send_control

    st = SessionStore(url, names[0])
    if session and st.meta() is None:  # a mistyped name must not look like success
        have = SessionStore.sessions(url)
        raise ConfigError(f"--session {session}: no such session in {url}"
                          + (f" (there: {', '.join(have)})" if have else
                             "; start one with `arbkit paper` or `arbkit live`"))
    entry = send_control(st, control, by=os.environ.get("USER", "cli"), via="cli")
    typer.echo(f"session {names[0]}: {entry['control']} sent")


@ctl_app.command("symbol")
def ctl_symbol(base: Annotated[str, typer.Argument(help="Base asset of the routes, e.g. ETH.")],
               state: Annotated[str, typer.Argument(help="on | off")],
               session: SessionName = None, redis: Redis = None) -> None:
    """Turn new entries on one base asset's routes off or on (open positions keep their exits)."""
    if state not in ("on", "off"):
        raise ConfigError(f"arbkit ctl symbol {base} {state}: say on or off")
    _push(session, redis, f"symbol_{state}:{base.upper()}")


@ctl_app.command("stop")
def ctl_stop(session: SessionName = None, redis: Redis = None) -> None:
    """Reduce only: no new entries anywhere; open positions keep their exit rules."""
    _push(session, redis, "stop")


@ctl_app.command("resume")
def ctl_resume(session: SessionName = None, redis: Redis = None) -> None:
    """Lift a stop."""
    _push(session, redis, "resume")


@ctl_app.command("kill")
def ctl_kill(session: SessionName = None, redis: Redis = None) -> None:
    """Kill switch: flatten every position and halt for good."""
    _push(session, redis, "kill")


def campaign(
    name: Annotated[str, typer.Argument(help="btc-1h | btc-eth-1h | multi-6h")],
    minutes: Annotated[float | None, typer.Option(help="Minutes of data instead of the campaign's hours (a short version).")] = None,
    speed: Annotated[float | None, typer.Option(help="Replay speed (default: the campaign's).")] = None,
    redis: Redis = None,
    results: Annotated[str, typer.Option(help="Results store (DuckDB path or postgresql:// URL).")] = "results/arbkit.duckdb",
    out: Annotated[Path, typer.Option(help="Folder for the data, the recording and the reports.")] = Path("reports/campaigns"),
) -> None:
    """A standard paper campaign against local emulators, with its report (exit 1 on a ❌)."""
    from arbkit.runtime.campaign import run_campaign

    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    r = run_campaign(name, redis_url=url, results=results, out=out / name, minutes=minutes,
                     speed=speed)
    for check, mark, detail in r.checks:
        typer.echo(f"{mark} {check}: {detail}")
    typer.echo(f"report: {r.report_md} ({r.report_html})")
    if not r.passed:
        raise typer.Exit(1)


def reset(
    session: Annotated[str | None, typer.Option("--session", help="The session to reset (default: the only one in Redis).")] = None,
    all_sessions: Annotated[bool, typer.Option("--all", help="Every session in Redis.")] = False,
    redis: Redis = None,
    backup_dir: Annotated[Path, typer.Option(help="Where the Redis keys (journal, snapshot, audit log, ...) are backed up first.")] = Path("logs") / "session-backups",
    wait_s: Annotated[float, typer.Option(help="Seconds to wait for a running session to shut down.")] = 30.0,
    force: Annotated[bool, typer.Option(help="Clear a session that did not shut down in time.")] = False,
) -> None:
    """Stop a session (a shutdown control), back up and clear its Redis keys; the results store and recordings are kept."""
    from arbkit.monitor.reset import reset_session
    from arbkit.store.redis import SessionStore

    url = redis or os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    names = SessionStore.sessions(url) if all_sessions else [session] if session else None
    if names is None:
        names = SessionStore.sessions(url)
        if len(names) > 1:
            raise ConfigError(f"{len(names)} sessions in {url} ({', '.join(names)}); name one "
                              "with --session, or --all")
    if not names:
        raise ConfigError(f"no session in {url}; nothing to reset")
    if wait_s < 0:
        raise ConfigError(f"--wait-s {wait_s}: must be >= 0")
    for name in names:
        r = reset_session(SessionStore(url, name), backup_dir=backup_dir, wait_s=wait_s,
                          force=force, by=os.environ.get("USER", "cli"))
        was = ("stopped" if r.stopped else "NOT stopped (forced)") if r.was_running else \
            "not running"
        audit = f"; audit log {r.audit_backup}" if r.audit_backup else "; no audit entries"
        typer.echo(f"session {name}: {was}; {r.keys_cleared} Redis keys cleared (backup "
                   f"{r.backup}{audit}); results store and recordings kept")
