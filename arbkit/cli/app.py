"""arbkit command line: a thin layer over the library, one module per command group.

Exit codes: 0 success; 1 an ``ArbkitError`` (bad data, bad config, infeasible strategy), printed
as one ``error: ...`` line on stderr (``--debug`` or ``ARBKIT_DEBUG=1`` shows the traceback);
2 a usage error (unknown option, missing argument); 130 interrupted (one ``interrupted: ...``
line saying what was left: nothing half-written).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

try:
    import typer

    from arbkit.cli import backtest as backtest_cmd
    from arbkit.cli import data as data_cmd
    from arbkit.cli import emulator as emulator_cmd
    from arbkit.cli import live as live_cmd
    from arbkit.cli import paper as paper_cmd
    from arbkit.cli import stress as stress_cmd
    from arbkit.cli import tune as tune_cmd
    from arbkit.cli.guard import interrupt_note, set_interrupt_note
    from arbkit.errors import ArbkitError
except KeyboardInterrupt:  # Ctrl-C while the CLI loads: no command has started
    print("interrupted: before the command started; nothing was written", file=sys.stderr)
    raise SystemExit(130) from None

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Backtest-first research framework for cross-venue crypto arbitrage.")
app.command("backtest")(backtest_cmd.backtest)
app.add_typer(data_cmd.app, name="data")
app.add_typer(emulator_cmd.app, name="emulator")
app.command("tune")(tune_cmd.tune)
app.command("report")(tune_cmd.report)
app.add_typer(tune_cmd.preset_app, name="preset")
app.command("stress")(stress_cmd.stress)
app.command("paper")(paper_cmd.paper)
app.command("live")(live_cmd.live)
app.command("status")(paper_cmd.status)
app.add_typer(paper_cmd.ctl_app, name="ctl")
app.command("campaign")(paper_cmd.campaign)
app.command("reset")(paper_cmd.reset)


def run(argv: list[str] | None = None, *, last: bool = False) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    An ``ArbkitError`` becomes one ``error: ...`` line (exit 1), a file-system error one
    ``error: <path>: <reason>`` line (exit 1), a Ctrl-C one ``interrupted: ...`` line saying
    what was left (exit 130); ``--debug`` anywhere (or ``ARBKIT_DEBUG=1``) shows the
    traceback of the first two instead. ``last``: this process ends with the command (the
    console script), so a Ctrl-C once the command is over is ignored: the work is done and
    only its report is left to print.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("ARBKIT_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    set_interrupt_note(None)
    try:
        # standalone mode: click itself handles usage errors (exit 2); typer turns a Ctrl-C
        # into exit 130 (recognised below by its cause); anything else propagates to here
        try:
            app(args=args, prog_name="arbkit")
        finally:
            if last:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ArbkitError as exc:
        if debug:
            raise
        return _error(str(exc))
    except KeyboardInterrupt:
        return _interrupted()
    except OSError as exc:
        if debug:
            raise
        return _error(_os_error(exc))
    except SystemExit as exc:
        if exc.code == 130 and _was_interrupted(exc):
            return _interrupted()
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _error(text: str) -> int:
    print(f"error: {' '.join(text.split())}", file=sys.stderr)
    return 1


def _interrupted() -> int:
    print(f"interrupted: {interrupt_note()}", file=sys.stderr)
    return 130


def _was_interrupted(exc: BaseException) -> bool:
    """A typer exit that came from a KeyboardInterrupt (not a command's own exit 130)."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        # ``raise ... from None``: the command reported the interrupt itself (tune)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        if isinstance(seen, KeyboardInterrupt):
            return True
    return False


def _os_error(exc: OSError) -> str:
    """One line for a file-system failure the commands did not foresee (full disk, a
    permission, a file where a folder was expected)."""
    where = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or type(exc).__name__
    fixes = {errno.EACCES: "check its permissions, or write somewhere else",
             errno.EROFS: "write somewhere else",
             errno.ENOSPC: "free some space and run it again",
             errno.ENOTDIR: "a part of that path is a file; pass a path in a folder",
             errno.EEXIST: "a file is in the way; pass another path",
             errno.EISDIR: "it is a folder; pass a file"}
    return f"{where}: {reason}; {fixes.get(exc.errno or 0, 'check the path and run it again')}"


def main() -> None:
    code = run(last=True)
    if code == 130:
        # the one "interrupted" line has said all there is: end here, without the
        # interpreter's finalization (objects a Ctrl-C cut short, such as a half-built numba
        # compilation or a worker thread, could complain or let the signal's default action
        # end the process as "killed by SIGINT" instead of exit 130)
        sys.unraisablehook = lambda _: None
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    raise SystemExit(code)
