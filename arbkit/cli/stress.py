"""``arbkit stress``: re-run a preset under adverse scenarios and print a robustness table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from arbkit.cli.guard import check_out_dir, publish_note, set_interrupt_note, write_dir

SCEN_HELP = ("Comma-separated scenarios (baseline always runs): fees_x2, slippage_x2, "
             "latency_x3, quote_noise, flash_crash, venue_outage, fx_stale, funding_spike; "
             "default all.")


def stress(
    preset: Annotated[str, typer.Option(help="Preset name (presets/<name>.toml) or a preset .toml path.")],
    data: Annotated[Path | None, typer.Option(help="Run on this data instead of the preset's recorded path.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the quote noise and of where the crash, the outage, the stale FX and the funding spike happen.")] = 0,
    scenarios: Annotated[str | None, typer.Option(help=SCEN_HELP)] = None,
    venue: Annotated[str | None, typer.Option(help="Venue of the flash crash, outage and funding spike (default: the long leg of a seeded baseline trade).")] = None,
    noise_bps: Annotated[float, typer.Option(help="quote_noise: standard deviation of each quote's move, bps.")] = 1.0,
    crash_pct: Annotated[float, typer.Option(help="flash_crash: price drop, percent (0-100).")] = 10.0,
    crash_s: Annotated[float, typer.Option(help="flash_crash: how long prices stay down, seconds.")] = 60.0,
    outage_s: Annotated[float, typer.Option(help="venue_outage: how long the venue is silent, seconds.")] = 600.0,
    fx_stale_s: Annotated[float, typer.Option(help="fx_stale: how long FX is not updated, seconds.")] = 3600.0,
    funding_spike_bps: Annotated[float, typer.Option(help="funding_spike: the one funding payment, bps of the position (paid by the side held).")] = 100.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON (the stress.json of --out).")] = False,
    out: Annotated[Path | None, typer.Option(help="Write stress.json and stress.html to this folder (a new or empty one, or one an earlier run wrote, with --force).")] = None,
    force: Annotated[bool, typer.Option(help="Replace the --out folder of an earlier arbkit run.")] = False,
) -> None:
    """Re-run a preset on its data under fees x2, slippage x2, latency x3, quote noise, a flash
    crash, a venue outage, stale FX and a funding spike; one row per scenario.

    Scenarios that do not apply (no FX route, no perpetual) say n/a and why. The same --seed
    gives the same table. `arbkit report STUDY --stress DIR` adds the table to a study report.
    """
    from arbkit.engine.scenarios import StressParams, check_names
    from arbkit.engine.stress import stress_preset
    from arbkit.errors import ConfigError
    from arbkit.tune.preset import find_preset

    names = check_names([s.strip() for s in scenarios.split(",") if s.strip()]
                        if scenarios is not None else ["baseline", *_all()])
    for flag, v, hi in (("--noise-bps", noise_bps, None), ("--crash-pct", crash_pct, 100.0),
                        ("--crash-s", crash_s, None), ("--outage-s", outage_s, None),
                        ("--fx-stale-s", fx_stale_s, None),
                        ("--funding-spike-bps", funding_spike_bps, None)):
        if not (math.isfinite(v) and v > 0 and (hi is None or v < hi)):
            raise ConfigError(f"{flag} {v}: use a number above 0"
                              + ("" if hi is None else f" and below {hi:g}"))
    if force and out is None:
        raise ConfigError("--force replaces an --out folder an earlier run wrote; pass --out")
    path = find_preset(preset)
    if out is not None:
        check_out_dir(out, force=force, inputs=[("--preset", path), ("--data", data)])
        set_interrupt_note(publish_note(f"nothing was written to {out}",
                                        f"after the results were written whole to {out}"))
    params = StressParams(seed=seed, noise_bps=noise_bps, crash_pct=crash_pct, crash_s=crash_s,
                          outage_s=outage_s, fx_stale_s=fx_stale_s,
                          funding_spike_bps=funding_spike_bps, venue=venue)
    rep = stress_preset(path, data=data, params=params, scenarios=names)
    payload = rep.to_dict()
    if out is not None:
        _write(out, payload, force)
    if as_json:
        typer.echo(json.dumps(payload, indent=1, allow_nan=False))
    else:
        print_stress(rep)
    if out is not None:
        typer.echo(f"wrote {out / 'stress.json'} and {out / 'stress.html'}; add it to a study "
                   f"report with: arbkit report {rep.meta.get('study') or 'STUDY'} --stress "
                   f"{out}", err=True)


def _all() -> list[str]:
    from arbkit.engine.scenarios import SCENARIOS

    return list(SCENARIOS[1:])


def _write(out: Path, payload: dict, force: bool) -> None:
    from arbkit.report.sections_stress import stress_page

    check_out_dir(out, force=force)

    def fill(tmp: Path) -> None:
        (tmp / "stress.json").write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
        (tmp / "stress.html").write_text(stress_page(payload), encoding="utf-8")

    write_dir(out, fill)


def print_stress(rep) -> None:
    from rich.table import Table

    from arbkit.cli.render import console as make_console

    m = rep.meta
    t = Table(title=f"arbkit stress — preset {rep.name} (study {m.get('study')} trial "
                    f"{m.get('trial')}), seed {rep.params.seed}", header_style="bold")
    for head in ("scenario", "net PnL", "account PnL", "max DD", "win %", "trades",
                 "guard triggers", "identity gap"):
        t.add_column(head, justify="left" if head in ("scenario", "guard triggers")
                     else "right", no_wrap=head != "guard triggers")
    worst = rep.worst().scenario
    for r in rep.rows:
        name = f"[bold red]{r.scenario}[/]" if r.scenario == worst else r.scenario
        if not r.applies:
            t.add_row(name, "n/a", "n/a", "n/a", "n/a", "n/a", "-", "-")
            continue
        x = r.metrics
        guards = ", ".join(f"{k} {v}" for k, v in r.guards.items()) or "-"
        t.add_row(name, f"{x['net_pnl']:,.2f}", f"{x['account_pnl']:,.2f}",
                  f"{x['max_drawdown']:,.2f}",
                  "-" if math.isnan(x["win_rate"]) else f"{100 * x['win_rate']:.1f}",
                  f"{x['trades']:,.0f}", guards, f"{x['identity_gap']:.1e}")
    console = make_console()
    console.print(t)
    for r in rep.rows:
        console.print(f"  [cyan]{r.scenario}[/]: {r.detail}", highlight=False)
    console.print(f"worst: [bold]{worst}[/] (net PnL {rep.worst().metrics['net_pnl']:,.2f}); "
                  "figures are means over the preset's windows, in the reference currency "
                  f"{rep.meta.get('ccy', '')}".rstrip(), highlight=False)
