"""Synthetic multi-symbol universes: one scenario per base asset on the two synthetic venues.

``generate_universe({"BTC": "always-win", "ETH": "always-lose"})`` generates each symbol's
scenario with its own seed (``seed + k``) over the same span, renames its symbol to
``<BASE>-USDT``, and returns the merged quotes and a config with one route per symbol; each
route carries its scenario's strategy as overrides of the first one's. Each symbol's rows are
exactly those of its solo scenario, so a symbol's trades in the universe can be compared with
its solo run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

from arbkit.config import Config, dump_config, from_dict
from arbkit.data.synth import SCENARIOS, generate
from arbkit.errors import ConfigError


def parse_universe(text: str) -> dict[str, str]:
    """``"BTC=always-win,ETH=always-lose"`` -> {"BTC": "always-win", "ETH": "always-lose"}."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        base, _, scenario = part.partition("=")
        if not base or scenario not in SCENARIOS or base.upper() in out:
            raise ConfigError(f"--universe {part!r}: use BASE=SCENARIO, each base once, with a "
                              f"scenario among {', '.join(SCENARIOS)}")
        out[base.upper()] = scenario
    if not out:
        raise ConfigError("--universe is empty; e.g. BTC=always-win,ETH=always-lose")
    return out


def generate_universe(spec: dict[str, str], *, seed: int = 7, n_events: int | None = None,
                      depth: int = 5) -> tuple[pl.DataFrame, Config]:
    """Quotes and a multi-route config (see module doc).

    Examples
    --------
    >>> df, cfg = generate_universe({"BTC": "flat", "ETH": "flat"}, n_events=1_000, depth=1)
    >>> [r.label for r in cfg.routes], sorted(df["symbol"].unique())
    (['A:BTC-USDT~B:BTC-USDT', 'A:ETH-USDT~B:ETH-USDT'], ['BTC-USDT', 'ETH-USDT'])
    """
    frames, instruments, routes = [], [], []
    base_strategy: dict | None = None
    for k, (base, scenario) in enumerate(spec.items()):
        df, cfg = generate(scenario, seed=seed + k, n_events=n_events, depth=depth)
        sym = f"{base}-USDT"
        frames.append(df.with_columns(pl.lit(sym).alias("symbol")))
        for inst in cfg.instruments:
            instruments.append({**dataclasses.asdict(inst), "symbol": sym, "base": base})
        strat = dataclasses.asdict(cfg.strategy)
        if base_strategy is None:
            base_strategy = strat
        over = {key: v for key, v in strat.items() if base_strategy[key] != v}
        routes.append({"a": f"A:{sym}", "b": f"B:{sym}", "name": f"{base} {scenario}",
                       "strategy": over})
    assert base_strategy is not None
    frame = pl.concat(frames).sort("ts_recv_ns", maintain_order=True)
    raw = {"run": {"seed": seed, "capital": 100_000.0 * len(spec), "reference_ccy": "USDT",
                   "label": "synth universe: " + ", ".join(f"{b}={s}" for b, s in spec.items())},
           "instruments": instruments, "routes": routes, "strategy": base_strategy}
    return frame, from_dict(raw, source="synth universe")


def write_universe(spec: dict[str, str], out: str | Path, *, seed: int = 7,
                   n_events: int | None = None, depth: int = 5) -> Path:
    """Write ``out/quotes.parquet`` and ``out/config.toml`` (temporary names, then renamed)."""
    df, cfg = generate_universe(spec, seed=seed, n_events=n_events, depth=depth)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        df.write_parquet(tmp / "quotes.parquet")
        (tmp / "config.toml").write_text(dump_config(cfg))
        os.replace(tmp / "quotes.parquet", out / "quotes.parquet")
        os.replace(tmp / "config.toml", out / "config.toml")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
