"""arbkit: backtest-first research framework for cross-venue crypto arbitrage.

>>> import arbkit
>>> res = arbkit.backtest("data/samples/binance_btcusdt_spot_usdm.parquet",
...                       "studies/binance_spot_usdm.toml")  # doctest: +SKIP
"""

from arbkit.config import Config, load_config
from arbkit.engine.backtest import BacktestResult, Runner, backtest

__all__ = ["BacktestResult", "Config", "Runner", "backtest", "load_config"]
__version__ = "0.1.0"
