"""arbkit command line: a thin layer over the library, one module per command group.

Every ``ArbkitError`` becomes one line on stderr and exit code 1 (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import os
import sys

import typer

from arbkit.cli import backtest as backtest_cmd
from arbkit.cli import data as data_cmd
from arbkit.errors import ArbkitError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Backtest-first research framework for cross-venue crypto arbitrage.")
app.command("backtest")(backtest_cmd.backtest)
app.add_typer(data_cmd.app, name="data")


def main() -> None:
    debug = "--debug" in sys.argv or os.environ.get("ARBKIT_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        app(standalone_mode=False)
    except ArbkitError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, click.exceptions.Exit):
            raise SystemExit(exc.exit_code) from None
        raise
