"""arbkit: backtest-first research framework for cross-venue crypto arbitrage.

>>> import arbkit
>>> res = arbkit.backtest("data/samples/binance_btcusdt_spot_usdm.parquet",
...                       "studies/binance_spot_usdm.toml")  # doctest: +SKIP

The public names are loaded on first use (PEP 562), so ``import arbkit`` and the command line
start without loading polars and numba; a Ctrl-C while the CLI starts is then one
``interrupted`` line, not a traceback from inside an import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arbkit.config import Config, load_config
    from arbkit.engine.backtest import BacktestResult, Runner, backtest

__all__ = ["BacktestResult", "Config", "Runner", "backtest", "load_config"]
__version__ = "0.1.0"

_PUBLIC = {"Config": "arbkit.config", "load_config": "arbkit.config",
           "BacktestResult": "arbkit.engine.backtest", "Runner": "arbkit.engine.backtest",
           "backtest": "arbkit.engine.backtest"}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module 'arbkit' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
