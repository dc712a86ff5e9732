"""The reference docs cannot drift from the code (pattern: sqlite-utils ``tests/test_docs.py``).

- ``docs/cli.md`` is exactly what ``scripts/gen_cli_docs.py`` generates, and has a heading for
  every command and subcommand of the typer app;
- ``docs/config.md`` has a row for every key of every config dataclass, in that dataclass's
  section, with the default the code uses;
- ``docs/data.md`` lists every column of the canonical quotes schema with its dtype, and every
  synthetic scenario.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from arbkit.config import (
    BarsConfig,
    FxConfig,
    InstrumentConfig,
    RouteConfig,
    RunConfig,
    StrategyConfig,
    TransferConfig,
    WalletConfig,
)
from arbkit.data import schema
from arbkit.data.synth import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG_CLASSES = (RunConfig, InstrumentConfig, RouteConfig, StrategyConfig, BarsConfig,
                  FxConfig, WalletConfig, TransferConfig)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _generator()


def _sections(text: str) -> dict[str, str]:
    """Markdown text split at ``##`` headings: heading line -> body up to the next one."""
    parts = re.split(r"^(##+ .*)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _rows(body: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a backticked name: name -> the other cells."""
    out: dict[str, list[str]] = {}
    for line in body.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if m:
            out[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", m.group(2))]
    return out


# ------------------------------------------------------------------ CLI reference


def test_cli_reference_is_up_to_date(gen) -> None:
    current = (DOCS / "cli.md").read_text()
    assert current == gen.render(), (
        "docs/cli.md is out of date: run .venv/bin/python scripts/gen_cli_docs.py"
    )
    assert gen.main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_file(gen, tmp_path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(gen.render().replace("## arbkit backtest", "## arbkit backtset"))
    assert gen.main(["--check", "--out", str(stale)]) == 1
    assert gen.main(["--check", "--out", str(tmp_path / "missing.md")]) == 1


def test_cli_reference_does_not_depend_on_terminal_width(gen, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    narrow = gen.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert gen.render() == narrow


def test_every_command_and_subcommand_has_a_heading(gen) -> None:
    text = (DOCS / "cli.md").read_text()
    paths = gen.command_paths()
    assert {"arbkit", "arbkit backtest", "arbkit data", "arbkit data synth"} <= set(paths)
    for path in paths:
        assert re.search(rf"^#{{2,6}} {re.escape(path)}$", text, flags=re.MULTILINE), (
            f"docs/cli.md has no heading for `{path}`"
        )


def test_every_option_of_every_command_is_in_the_cli_reference(gen) -> None:
    import typer.main

    from arbkit.cli.app import app

    text = (DOCS / "cli.md").read_text()
    for cmd, ctx, _ in gen._walk(typer.main.get_command(app), "arbkit"):
        section = _sections(text)
        body = next(b for h, b in section.items() if h.endswith(f" {ctx.command_path}"))
        for p in cmd.params:
            if getattr(p, "param_type_name", "option") == "argument":
                assert f"`{p.name.upper()}` (argument)" in body, (
                    f"{ctx.command_path}: argument {p.name} not documented")
                continue
            for opt in p.opts:
                assert f"`{opt}`" in body, f"{ctx.command_path}: option {opt} not documented"


# ------------------------------------------------------------------ config reference


def _config_section(cls: type) -> dict[str, list[str]]:
    sections = _sections((DOCS / "config.md").read_text())
    found = [body for head, body in sections.items() if head.endswith(f"— {cls.__name__}")]
    assert len(found) == 1, f"docs/config.md needs one section headed '... — {cls.__name__}'"
    return _rows(found[0])


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_config_key_is_documented_in_its_section(cls) -> None:
    rows = _config_section(cls)
    keys = [f.name for f in dataclasses.fields(cls)]
    missing = [k for k in keys if k not in rows]
    assert not missing, f"docs/config.md, {cls.__name__}: no row for {missing}"
    stale = sorted(set(rows) - set(keys))
    assert not stale, f"docs/config.md, {cls.__name__}: rows for keys the code lacks: {stale}"


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_documented_config_defaults_match_the_code(cls) -> None:
    rows = _config_section(cls)
    for f in dataclasses.fields(cls):
        cell = rows[f.name][2].strip("`")  # columns: type | unit | default | meaning
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if default is dataclasses.MISSING:
            assert cell == "required", f"{cls.__name__}.{f.name}: documented default {cell!r}"
            continue
        documented = tomllib.loads(f"v = {cell}")["v"]
        assert documented == default and type(documented) is type(default), (
            f"{cls.__name__}.{f.name}: docs say {cell}, code says {default!r}"
        )


# ------------------------------------------------------------------ data reference


def test_every_quotes_column_is_documented_with_its_dtype() -> None:
    text = (DOCS / "data.md").read_text()
    body = next(b for h, b in _sections(text).items() if "canonical `quotes` table" in h)
    rows = _rows(body)
    columns = {**schema.QUOTE_REQUIRED, **schema.QUOTE_OPTIONAL_COLUMNS}
    for name, dtype in columns.items():
        assert name in rows, f"docs/data.md: column {name} missing from the schema table"
        assert rows[name][0] == str(dtype), f"docs/data.md: {name} documented as {rows[name][0]}"
    depth_row = "| `bid_px_N`, `bid_qty_N`, `ask_px_N`, `ask_qty_N` |"
    assert depth_row in body, "docs/data.md: the depth columns (bid_px_N ...) are not documented"


def test_every_synthetic_scenario_is_documented() -> None:
    text = (DOCS / "data.md").read_text()
    for name in SCENARIOS:
        assert f"| `{name}` |" in text, f"docs/data.md: scenario {name} has no row"


def test_help_of_every_command_renders(gen) -> None:
    """``--help`` of every command and subcommand, through the real rich renderer (a stray
    ``[/x]`` in a help text is a rich MarkupError, i.e. a traceback for the user)."""
    import typer.main
    from typer.testing import CliRunner

    from arbkit.cli.app import app

    runner = CliRunner()
    paths = [ctx.command_path.split()[1:]
             for _, ctx, _ in gen._walk(typer.main.get_command(app), "arbkit")]
    assert len(paths) > 15
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], terminal_width=100)
        assert res.exit_code == 0 and "Usage" in res.output, (path, res.output, res.exception)


def test_tuning_doc_says_optuna_dashboard_needs_psycopg_3_on_postgresql() -> None:
    text = (DOCS / "tuning.md").read_text()
    i = text.index("optuna-dashboard postgresql://")
    near = text[i - 600:i + 600]
    assert 'pip install optuna-dashboard "psycopg[binary]"' in near
    assert "psycopg 3" in near and "Objective 0" in near
