"""Run configuration: frozen dataclasses loaded from TOML, unknown keys rejected.

A disabled rule is written explicitly as the string ``"off"`` (never a 0 that silently means
off); inside the kernel it becomes a flag plus a value. Units are in the key names
(``_bps``, ``_ms``, ``_s``).

Example
-------
>>> cfg = load_config_text('''
... [[instruments]]
... venue = "A"
... symbol = "BTC-USDT"
... quote = "USDT"
... taker_fee_bps = 1.0
... [[instruments]]
... venue = "B"
... symbol = "BTC-USDT"
... quote = "USDT"
... taker_fee_bps = 1.0
... [route]
... a = "A:BTC-USDT"
... b = "B:BTC-USDT"
... [strategy]
... entry_bps = 2.0
... exit_bps = 0.0
... ''')
>>> cfg.strategy.entry_bps
2.0
"""

from arbkit.config.load import dump_config, from_dict, load_config, load_config_text
from arbkit.config.model import (
    CURRENCIES,
    FEE_CCYS,
    INSTRUMENT_KINDS,
    LEGGING_POLICIES,
    OFF,
    BarsConfig,
    Config,
    FxConfig,
    InstrumentConfig,
    RiskConfig,
    RouteConfig,
    RunConfig,
    StrategyConfig,
    TransferConfig,
    WalletConfig,
)

__all__ = [
    "CURRENCIES", "FEE_CCYS", "INSTRUMENT_KINDS", "LEGGING_POLICIES", "OFF", "BarsConfig",
    "Config", "FxConfig", "InstrumentConfig", "RiskConfig", "RouteConfig", "RunConfig",
    "StrategyConfig", "TransferConfig", "WalletConfig", "dump_config", "from_dict", "load_config", "load_config_text",
]
