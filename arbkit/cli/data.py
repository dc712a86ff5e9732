"""``arbkit data ...``: synthetic scenarios (and, later, catalog/download/record)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Market data: synthetic scenarios (the catalog, "
                  "importers, download and recording come with the data work, issue #3).")


@app.command("synth")
def synth(
    scenario: Annotated[str, typer.Option(help="normal | always-win | always-lose | flat | flash-crash | outage")],
    out: Annotated[Path, typer.Option(help="Folder to write quotes.parquet and config.toml into.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 7,
    events: Annotated[int | None, typer.Option(help="Number of quote rows.")] = None,
    depth: Annotated[int, typer.Option(help="Book levels per side (1 = L1 only).")] = 5,
) -> None:
    """Write deterministic synthetic two-venue quotes and a matching config."""
    from arbkit.data.synth import write_scenario

    path = write_scenario(scenario, out, seed=seed, n_events=events, depth=depth)
    typer.echo(f"wrote {path}/quotes.parquet and {path}/config.toml")
