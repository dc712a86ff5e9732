"""The grid batch (``engine.sweep.run_batch``): results built in parallel lanes, or after one
prange call, equal each config run alone, frame for frame and bit for bit."""

from __future__ import annotations

import pytest

from arbkit.config import load_config_text
from arbkit.data.synth import generate
from arbkit.engine.backtest import prepare, run_prepared
from arbkit.engine.sweep import run_batch
from arbkit.errors import ConfigError
from arbkit.tune import apply_params

FRAMES = ("trades", "fills", "orders", "equity", "legs", "summary", "guards", "routes",
          "symbols", "venues", "wallets", "opportunities")


@pytest.fixture(scope="module")
def batch():
    from arbkit.config import dump_config

    df, cfg = generate("normal", n_events=30_000)
    # a small equity buffer would grow mid-run: sample every 0.1 s to make it happen
    cfg = load_config_text(dump_config(cfg).replace("equity_interval_s = 1.0",
                                                    "equity_interval_s = 0.1"))
    prep = prepare(df, cfg)
    cfgs = [apply_params(cfg, {"strategy.entry_bps": 0.5 * j, "risk.loss_streak": j % 3})
            for j in range(5)]
    return cfgs, prep, [run_prepared(c, prep) for c in cfgs]


@pytest.mark.parametrize("mode", ["lanes", "prange"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_parallel_results_equal_the_serial_ones(batch, mode, threads) -> None:
    cfgs, prep, alone = batch
    assert len({r.trades.height for r in alone}) > 1  # the configs really differ
    assert alone[0].equity.height > 4096  # buffers grew during the run
    for a, b in zip(alone, run_batch(cfgs, prep, mode=mode, threads=threads)):
        for name in FRAMES:
            assert getattr(a, name).equals(getattr(b, name)), name


def test_configs_with_other_instruments_are_refused(batch) -> None:
    cfgs, prep, _ = batch
    other = load_config_text(
        "[[instruments]]\nvenue = 'X'\nsymbol = 'Y'\n[[instruments]]\nvenue = 'Z'\n"
        "symbol = 'Y'\n[[routes]]\na = 'X:Y'\nb = 'Z:Y'\n[strategy]\nentry_bps = 1.0\n")
    with pytest.raises(ConfigError, match="every config must have the instruments"):
        run_batch([cfgs[0], other], prep)
