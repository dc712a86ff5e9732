"""`arbkit tune`, `arbkit report`, `arbkit preset promote`: the research loop."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from arbkit.cli.compiling import note_once
from arbkit.cli.guard import check_folder_arg, check_out_file, set_interrupt_note
from arbkit.cli.render import console as cli_console

STORAGE_HELP = ("postgresql://user@host:port/db for Optuna and the results (or the "
                "ARBKIT_STORAGE env var); default: results/optuna.journal + "
                "results/arbkit.duckdb")

preset_app = typer.Typer(no_args_is_help=True, help="Presets: tuned configs with provenance.")


def tune(
    study_file: Annotated[Path, typer.Argument(help="Study file, e.g. studies/tune_synth_normal.toml")],
    jobs: Annotated[int, typer.Option("-j", "--jobs", help="Worker processes (each loads the data once).")] = 1,
    trials: Annotated[int | None, typer.Option(help="Override study.trials (1 or more).")] = None,
    storage: Annotated[str | None, typer.Option(help=STORAGE_HELP)] = None,
    results: Annotated[Path, typer.Option(help="Folder of the default file storage.")] = Path("results"),
    fresh: Annotated[bool, typer.Option(help="Delete the study (trials and stored runs) first, then start it again.")] = False,
) -> None:
    """Run or resume an Optuna study; a live table shows each trial.

    Interrupt it at any time (Ctrl-C): the same command again continues the study, and trials cut short (or left RUNNING by a killed worker) are run again, not lost.
    """
    import dataclasses

    from rich.live import Live

    from arbkit.errors import ConfigError
    from arbkit.tune import best_trial, delete_study, load_study, run_study, storage_for
    from arbkit.tune.evaluate import Evaluator
    from arbkit.tune.study import budget

    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials}: run at least 1 trial (e.g. --trials 20), or "
                          "leave it out for the study file's study.trials")
    if jobs < 1:
        raise ConfigError(f"-j {jobs}: use 1 or more worker processes")
    spec = load_study(study_file)
    if trials is not None:
        spec = dataclasses.replace(spec, trials=trials)
    st = storage_for(storage, results)
    if st.journal is not None:
        check_folder_arg(results, "--results")
    # data, windows and objectives are checked before anything is shown or stored
    ev = Evaluator(spec)
    ev.check_objectives()
    if fresh:
        delete_study(spec.name, st)
    before = _finished_so_far(spec, st)  # (also: a database that cannot be reached fails here)
    console = cli_console(stderr=True)
    console.print(f"study [bold]{spec.name}[/]: {budget(spec)} trials, sampler {spec.sampler}, "
                  f"seed {spec.seed}, objective(s) {', '.join(spec.objectives)}, split "
                  f"{spec.split.kind}, storage {st.masked}, {jobs} worker(s)", markup=True,
                  highlight=False)
    if before is not None:
        console.print(f"resuming: {before[0]}/{budget(spec)} finished trials already stored; "
                      f"{before[1]} trial(s) cut short earlier will be run again",
                      highlight=False)
    note_once(console)  # the workers compile it before their first trial
    view = ProgressView(spec)
    fresh_files = _absent(st)
    try:
        with Live(view.table(), console=console, refresh_per_second=4,
                  transient=False) as live:
            def on_trial(row: dict[str, Any]) -> None:
                view.add(row)
                live.update(view.table())

            def poll(study: Any) -> None:
                view.from_study(study)
                live.update(view.table())

            study = run_study(spec, st, jobs=jobs, on_trial=on_trial, poll=poll, evaluator=ev)
            view.from_study(study)
            live.update(view.table())
    except KeyboardInterrupt:
        now = _finished_so_far(spec, st)
        if now is None or now[0] == 0:
            _drop_if_empty(spec, st, fresh_files)
            console.print("\ninterrupted: no trial finished; nothing stored", highlight=False)
        else:
            console.print(f"\ninterrupted: {now[0]}/{budget(spec)} finished trials stored; run "
                          "the same command again to resume", highlight=False)
        raise SystemExit(130) from None
    except BaseException:
        console.print()  # the error line starts below the live table, not on its last line
        _drop_if_empty(spec, st, fresh_files)
        raise
    console.print()
    best = best_trial(study)
    typer.echo(f"best trial {best.number}: {', '.join(spec.objectives)} = "
               f"{', '.join(f'{v:.4f}' for v in best.values)}; params "
               + ", ".join(f"{k}={_param(v)}" for k, v in best.params.items()))
    if spec.directions[0] == "maximize" and best.values[0] <= 0:
        typer.echo(f"warning: the best {spec.objectives[0]} is {best.values[0]:.4f} <= 0: no "
                   "trial did well on its train window; the best one is the least bad, not "
                   "an edge", err=True)
    where, note = same_storage(storage, results)
    typer.echo(f"next: arbkit report {spec.name}{where}   |   arbkit preset promote "
               f"{spec.name}{where} --name <preset>")
    if note:
        typer.echo(note)


def same_storage(storage: str | None, results: Path) -> tuple[str, str | None]:
    """The options a follow-up command needs to open the same study: without them, `arbkit
    report <study>` would read another study of that name from the default journal. A
    password in the URL is never printed: it shows as *** with a line saying so (the
    ``ARBKIT_STORAGE`` variable, when it holds the URL, needs no option at all)."""
    import shlex

    from arbkit.store import mask_url

    if storage is None and os.environ.get("ARBKIT_STORAGE"):
        return "", None  # the variable still points the next command at the same database
    if storage is not None:
        masked = mask_url(storage)
        note = None if masked == storage else (
            "(*** stands for the password in your --storage URL, never printed; put it "
            "back, or export ARBKIT_STORAGE=<url> and leave --storage out)")
        return f" --storage {shlex.quote(masked)}", note
    if Path(results) != Path("results"):
        return f" --results {shlex.quote(str(results))}", None
    return "", None


def _absent(st: Any) -> list[Path]:
    """The file storage's paths that do not exist yet (this run would create them)."""
    if st.journal is None:
        return []
    paths = [st.journal.parent, st.journal, st.results_path]
    return [p for p in paths if not p.exists()]


def _drop_if_empty(spec: Any, st: Any, created: list[Path]) -> None:
    """A run that failed or was stopped before any trial finished leaves nothing: the study
    it created is deleted, and the storage files it created are removed."""
    import contextlib
    import shutil

    from arbkit.tune import delete_study

    now = _finished_so_far(spec, st)
    if now is not None and now[0] > 0:
        return
    if st.journal is None or st.journal not in created:
        with contextlib.suppress(Exception):
            if now is not None:
                delete_study(spec.name, st)
        return
    for p in sorted(created, key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            if p.is_dir():
                shutil.rmtree(p) if p == st.journal.parent else p.rmdir()
            else:
                p.unlink()
        for side in (Path(f"{p}.lock"), Path(f"{p}.wal")):  # (each on its own: either may be absent)
            with contextlib.suppress(OSError):
                side.unlink()


def _finished_so_far(spec: Any, st: Any) -> tuple[int, int] | None:
    """(finished trials, trials to retry) of an existing study; None if there is none."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=spec.name, storage=st.optuna(create=False))
    except KeyError:
        return None
    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    again = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    return (done, again) if trials else None


class ProgressView:
    """The live progress table: last trials, best so far, ETA."""

    def __init__(self, spec: Any) -> None:
        from arbkit.tune.study import budget

        self.spec = spec
        self.total = budget(spec)
        self.rows: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()
        self.n0: int | None = None
        self.maximize = spec.directions[0] == "maximize"

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def from_study(self, study: Any) -> None:
        from optuna.trial import TrialState

        rows = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                          TrialState.PRUNED)):
            ua = t.user_attrs
            rows.append({"number": t.number, "state": t.state.name,
                         "values": t.values or [math.nan], "trades": _attr(ua, "m.trades"),
                         "win_rate": _attr(ua, "m.win_rate"),
                         "net_pnl": _attr(ua, "m.net_pnl"),
                         "max_drawdown": _attr(ua, "m.max_drawdown"),
                         "reason": ua.get("pruned_because", "")})
        self.rows = sorted(rows, key=lambda r: r["number"])

    def table(self) -> Any:
        from rich.table import Table

        done = len(self.rows)
        if self.n0 is None and done:
            self.n0 = done - 1
        el = time.perf_counter() - self.t0
        new = done - (self.n0 or 0)
        eta = (f"{(self.total - done) * el / new:.0f} s" if new > 0 and done < self.total
               else ("-" if done < self.total else "0 s"))
        complete = [r for r in self.rows if r["state"] == "COMPLETE"]
        best = None
        if complete:
            def key(r):
                return (r["values"][0])
            best = max(complete, key=key) if self.maximize else min(complete, key=key)
        title = (f"trial {done}/{self.total}   best "
                 f"{'-' if best is None else _fmt(best['values'][0])}"
                 f"{'' if best is None else ' (#' + str(best['number']) + ')'}   "
                 f"elapsed {el:.0f} s   ETA {eta}")
        tb = Table(title=title, title_justify="left")
        for c in ("trial", "state", "trades", "win %", "net PnL", "max DD", "objective"):
            tb.add_column(c, justify="right")
        for r in self.rows[-12:]:
            obj = ", ".join(_fmt(v) for v in r["values"]) if r["state"] == "COMPLETE" else \
                "pruned: " + (r.get("reason") or "").split(":")[0]
            tb.add_row(str(r["number"]), r["state"], _count(r["trades"]),
                       _fmt(None if r["win_rate"] is None else 100 * r["win_rate"]),
                       _fmt(r["net_pnl"]), _fmt(r["max_drawdown"]), obj)
        return tb


def _attr(ua: dict[str, Any], k: str) -> float | None:
    return None if ua.get(k) is None else float(ua[k])


def _fmt(v: Any) -> str:
    """A figure of the live table: always two decimals (75.00 beside 75.25, never 75)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if math.isfinite(v) else "n/a"
    return str(v)


def _count(v: Any) -> str:
    """A count (trades): a whole number."""
    if v is None:
        return "-"
    return f"{int(v):,}" if math.isfinite(v) else "n/a"


def _param(v: Any) -> str:
    """A sampled parameter as it will be used: its significant digits, not rounded to 2."""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def report(
    study: Annotated[str, typer.Argument(help="Study name (study.name in its study file).")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default reports/<study>.html).")] = None,
    storage: Annotated[str | None, typer.Option(help=STORAGE_HELP)] = None,
    results: Annotated[Path, typer.Option(help="Folder of the default file storage.")] = Path("results"),
    stress: Annotated[Path | None, typer.Option(help="Add a Stress section from the stress.json an `arbkit stress --out DIR` wrote (pass DIR).")] = None,
) -> None:
    """Write one self-contained HTML report of a study (opens in any browser, no server)."""
    from arbkit.errors import ConfigError
    from arbkit.report import write_report
    from arbkit.tune import storage_for
    from arbkit.tune.reporting import build_report

    target = check_out_file(out or Path("reports") / f"{study}.html", "--out", suffix=".html",
                            signature="arbkit study report")
    st = storage_for(storage, results)
    if st.journal is not None and results.exists() and not results.is_dir():
        raise ConfigError(f"--results {results}: is a file, not a folder; pass the folder "
                          "`arbkit tune --results` wrote")
    table = None
    if stress is not None:  # read before the study's best trial is re-run
        from arbkit.report.sections_stress import load_stress

        table = load_stress(stress)
    rep = build_report(study, st)
    rep.stress = table
    set_interrupt_note(f"no report written to {target}")
    path = write_report(rep, target)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {rep.trials.height} trials, "
               f"best #{rep.best_number}")


def promote(
    study: Annotated[str, typer.Argument(help="Study name.")],
    name: Annotated[str, typer.Option(help="Preset name: writes presets/<name>.toml.")],
    trial: Annotated[int | None, typer.Option(help="Trial number (default: the best).")] = None,
    storage: Annotated[str | None, typer.Option(help=STORAGE_HELP)] = None,
    results: Annotated[Path, typer.Option(help="Folder of the default file storage.")] = Path("results"),
    presets: Annotated[Path, typer.Option(help="Presets folder.")] = Path("presets"),
    force: Annotated[bool, typer.Option(help="Replace an existing preset of that name.")] = False,
) -> None:
    """Write a trial's effective config as presets/<name>.toml, with its provenance."""
    import shlex

    from arbkit.tune import storage_for
    from arbkit.tune.preset import promote as do_promote

    path = do_promote(study, storage_for(storage, results), name, trial=trial, folder=presets,
                      force=force)
    ref = name if Path(presets) == Path("presets") else shlex.quote(str(path))
    typer.echo(f"wrote {path}; reproduce it with: arbkit backtest --preset {ref}")


preset_app.command("promote")(promote)
