"""arbkit command line: a thin layer over the library, one module per command group.

Exit codes: 0 success; 1 an ``ArbkitError`` (bad data, bad config, infeasible strategy), printed
as one ``error: ...`` line on stderr (``--debug`` or ``ARBKIT_DEBUG=1`` shows the traceback);
2 a usage error (unknown option, missing argument); 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import typer

from arbkit.cli import backtest as backtest_cmd
from arbkit.cli import data as data_cmd
from arbkit.cli import emulator as emulator_cmd
from arbkit.cli import tune as tune_cmd
from arbkit.errors import ArbkitError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Backtest-first research framework for cross-venue crypto arbitrage.")
app.command("backtest")(backtest_cmd.backtest)
app.add_typer(data_cmd.app, name="data")
app.add_typer(emulator_cmd.app, name="emulator")
app.command("tune")(tune_cmd.tune)
app.command("report")(tune_cmd.report)
app.add_typer(tune_cmd.preset_app, name="preset")


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("ARBKIT_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        # standalone mode: click itself handles usage errors (exit 2) and Ctrl-C; anything
        # else propagates to here
        app()
    except ArbkitError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
