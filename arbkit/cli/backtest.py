"""``arbkit backtest``: run one configuration over quote data and print the summary."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from arbkit.cli.compiling import compile_status
from arbkit.cli.guard import check_out_dir, publish_note, set_interrupt_note, write_dir
from arbkit.cli.render import console, print_summary
from arbkit.engine.checks import result_checks

DEFAULT_DIR = Path("out/default-study")


def _default_inputs() -> tuple[Path, Path]:
    """Generate the default study (synthetic `normal` scenario) once, then reuse it."""
    from arbkit.data.synth import write_scenario

    if not (DEFAULT_DIR / "quotes.parquet").is_file():
        typer.echo(f"generating the default study data in {DEFAULT_DIR} (scenario 'normal')", err=True)
        write_scenario("normal", DEFAULT_DIR)
    return DEFAULT_DIR / "quotes.parquet", DEFAULT_DIR / "config.toml"


def backtest(
    data: Annotated[Path | None, typer.Option(help="Parquet file or folder of quotes, or a catalog root (reads only the configured instruments).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write result Parquet files to this folder (a new or empty one, or one an earlier run wrote, with --force).")] = None,
    force: Annotated[bool, typer.Option(help="Replace the --out folder of an earlier arbkit run (never any other folder).")] = False,
    chunk: Annotated[int | None, typer.Option(help="Feed the loop in chunks of N events (N >= 1).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    stream: Annotated[bool, typer.Option(help="Catalog only: read and run one UTC day at a time (bounded memory, identical results).")] = False,
    start: Annotated[str | None, typer.Option(help="Catalog only: first UTC day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Catalog only: last UTC day, YYYY-MM-DD (inclusive).")] = None,
    fx: Annotated[Path | None, typer.Option(help="FX rates (fx table Parquet) for the config's \\[\\[fx]] series, when --data is not a catalog.")] = None,
    funding: Annotated[Path | None, typer.Option(help="Realised funding (funding table Parquet) of the perpetuals, when --data is not a catalog.")] = None,
    preset: Annotated[str | None, typer.Option(help="Run presets/<name>.toml on its recorded data and windows, and check the trial's metrics are reproduced bit for bit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every metric in the table, also the skip counters that are 0.")] = False,
) -> None:
    """Backtest the spread-convergence strategy on one route or a universe of routes.

    With no arguments: runs the default study on generated data. --data takes quotes, quote
    bars or OHLCV bars (bar mode), as a Parquet file, a folder, or a catalog root.
    """
    import arbkit
    from arbkit.errors import ConfigError

    if chunk is not None and chunk < 1:
        raise ConfigError(f"--chunk {chunk}: feed at least 1 event per chunk (e.g. --chunk "
                          "100000), or leave it out to run the whole array at once")
    if force and out is None:
        raise ConfigError("--force replaces an --out folder an earlier run wrote; pass --out")
    inputs = [("--data", data), ("--config", config), ("--fx", fx), ("--funding", funding)]
    if out is not None:
        set_interrupt_note(publish_note(f"no results were written to {out}", "after the "
                                        f"results were written whole to {out}"))
    if preset is not None:
        if config is not None:
            raise ConfigError("--preset carries its own config; drop --config")
        _run_preset(preset, data, out, as_json, force, inputs, verbose)
        return
    if data is None and config is None:
        data, config = _default_inputs()
        inputs = [("--data", data), ("--config", config)]
    elif data is None or config is None:
        raise ConfigError("pass both --data and --config (or neither, for the default study)")
    if out is not None:  # refused before the run, not after it
        check_out_dir(out, force=force, inputs=inputs)
    with compile_status(console(stderr=True)):
        res = arbkit.backtest(data, config, chunk=chunk, stream=stream, start_day=start,
                              end_day=end, fx=fx, funding=funding)
    res.meta["notes"] = [*res.meta.get("notes", []), *result_checks(res)]
    if out is not None:
        write_results(res, out, force=force, inputs=inputs)
    if as_json:
        payload: dict = {r["metric"]: _json_value(r["metric"], r["value"])
                         for r in res.summary.to_dicts()}
        payload["label"] = res.config.run.label
        payload["notes"] = res.meta.get("notes", [])
        typer.echo(json.dumps(payload, default=str, indent=1, allow_nan=False))
    else:
        print_summary(res, verbose=verbose)


def _run_preset(name: str, data: Path | None, out: Path | None, as_json: bool, force: bool,
                inputs: list[tuple[str, Path | None]], verbose: bool = False) -> None:
    from arbkit.errors import EngineError
    from arbkit.tune.preset import load_preset, run_preset

    p = load_preset(name)
    inputs = [*inputs, ("--preset", p.path)] + [
        (f"the preset's {k}", Path(str(p.meta[k]))) for k in ("data", "fx", "funding")
        if p.meta.get(k) and not str(p.meta[k]).startswith("synth:")]
    if out is not None:
        check_out_dir(out, force=force, inputs=inputs)
    with compile_status(console(stderr=True)):
        results, metrics, bad = run_preset(p, data)
    for res in results:
        res.meta["notes"] = [*res.meta.get("notes", []), *result_checks(res)]
    m = p.meta
    if len(results) == 1:
        if out is not None:
            write_results(results[0], out, force=force, inputs=inputs)
        if not as_json:
            print_summary(results[0], verbose=verbose)
    if as_json:
        payload = {k: _json_value(k, v) for k, v in metrics.items()}
        payload["preset"] = p.name
        typer.echo(json.dumps(payload, default=str, indent=1, allow_nan=False))
    from datetime import UTC, datetime

    def iso(ns: int | None) -> str:
        return "start" if ns is None else datetime.fromtimestamp(ns / 1e9, UTC).strftime(
            "%Y-%m-%d %H:%M:%S")

    spans = ", ".join(f"{iso(a)} -> {iso(b)}" for a, b in (m.get("windows") or [[None, None]]))
    typer.echo(f"preset {p.name}: study {m.get('study')} trial {m.get('trial')}, the trial's "
               f"train window(s) {spans} UTC, {len(m.get('metrics', {}))} metrics checked",
               err=True)
    if bad:
        lines = "; ".join(f"{k}: stored {a!r}, now {b!r}" for k, a, b in bad[:5])
        raise EngineError(f"preset {p.name} does NOT reproduce its trial: {lines}")
    typer.echo(f"reproduced: every metric equals the trial's, bit for bit "
               f"(data hash {m.get('data_hash')})", err=True)


def _json_value(metric: str, v: float) -> float | int | None:
    """Strict JSON has no NaN/inf: undefined metrics (e.g. Sharpe below 30 days) become null;
    counts are whole numbers (``"trades": 12``, not ``12.0``)."""
    from arbkit.metrics.summary import is_count

    if not math.isfinite(v):
        return None
    return int(v) if is_count(metric) and float(v).is_integer() else v


RESULT_FRAMES = ("trades", "fills", "orders", "equity", "legs", "opportunities", "summary",
                 "routes", "symbols", "venues", "wallets", "guards")


def write_results(res, out: Path, *, force: bool = False,
                  inputs: list[tuple[str, Path | None]] | None = None) -> None:
    """Write every frame whole: a hidden temporary folder beside ``out``, marked as arbkit's,
    renamed into place (see :mod:`arbkit.cli.guard`); nothing is left if it fails or is
    interrupted. ``out`` is checked again (it may have changed during the run)."""
    out = check_out_dir(Path(out), force=force, inputs=inputs or [])

    def fill(tmp: Path) -> None:
        from arbkit.config import dump_config

        for name in RESULT_FRAMES:
            getattr(res, name).write_parquet(tmp / f"{name}.parquet")
        (tmp / "meta.json").write_text(json.dumps(res.meta, default=str, indent=1))
        (tmp / "config.toml").write_text(dump_config(res.config))

    write_dir(out, fill)
