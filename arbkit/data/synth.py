"""Deterministic synthetic two-venue quote data for named scenarios.

Two spot venues ``A`` and ``B`` quote ``BTC-USDT`` in USDT. Both directions are tradable
because each venue starts with inventory: 0.5 BTC and 25,000 USDT (≈ 100,000 USDT in all,
the configured capital), four times the 10,000 USDT trade notional, so spot legs never need
to go short. No perpetual legs, hence no funding.

Market model (everything on a 10 ms grid, sampled at each row's exchange time):

- one merged receive-time stream, gaps ``0.1 ms + Exp``, split into venues by thinning
  (A ≈ 25 updates/s, B ≈ 15 updates/s), so rows come out sorted by ``ts_recv_ns`` with no
  ties; ``ts_exch_ns = ts_recv_ns`` minus a feed delay of 2 ms (A) or 5 ms (B);
- A's mid is a log random walk from 50,000 USDT (plus, in ``normal``, rare jumps);
  B's mid is A's mid ``lag_ms`` earlier times ``1 + basis``; the basis (bps) is an OU
  process with Poisson jumps, plus the scenario's episode profile or crash;
- spreads are uniform per row within a per-venue range; prices are whole ticks (0.01) and
  ``ask >= bid + 1 tick`` always (no crossed rows in any scenario, flash-crash included);
  deeper levels sit 1-3 ticks apart with sizes growing 10-60 % per level.

Scenarios (``thr = entry_bps - exit_bps + fees_4 + latency_allowance``; 1 bps taker per venue
so ``fees_4 = 4``; order latency 5 ms A / 8 ms B; 320,000 rows by default ≈ 2.2 h; the trade
counts are what the core kernel gave for seeds 1, 2, 3, 7, 11 and 42):

- ``normal``: lag 300 ms; basis = OU (sd 2.5 bps, half-life 60 s, jumps 20/h sd 6) plus
  level shifts (6/h, sd 8 bps, half-life 30 min) that do not converge within the hold; A jumps
  40/h (sd 6 bps) that B follows late. thr 7, exit -1.5, stop 8, hold 300 s: ≈ 30-45 trades,
  55-85 % winners (mostly converge), losers by stop-loss and time stop.
- ``always-win``: every 60 s the basis opens at ±15 bps (sign alternates) for 5 s, then
  converges to 0 over 2 s. thr 8.5, exit -2, stop 20: one converge win per episode
  (133 trades, +7 to +10 USDT each).
- ``always-lose``: every 60 s the basis opens at ±12 bps for 3 s, jumps to ±37 bps for 5 s
  (25 bps past entry, stop 15), then returns to 0 within the 30 s stop cooldown: one
  stop-loss per episode (133 trades, -30 to -32 USDT each).
- ``flat``: basis sd 0.4 bps, no jumps; thr 8.5: no trade; the best edge stays about 7 bps short of the threshold (nearest_miss_bps ≈ 7).
- ``flash-crash``: ``normal`` plus B falling 10 % in 0.5 s at mid-span and recovering
  linearly over 60 s; B's spreads widen and sizes shrink up to 4x meanwhile (never crossed).
  Expect a stop-loss entered on the way down and a large win entered in the recovery once the
  edge drops under ``sanity_max_edge_bps`` (500), besides the ``normal`` trades.
- ``outage``: ``normal`` but B is silent for 10 min from 40 % of the expected span (needs
  ``n_events`` ≳ 60,000 for B to resume inside the data).

Example
-------
>>> df, cfg = generate("always-win", n_events=2_000)
>>> df.height, cfg.route.a
(2000, 'A:BTC-USDT')
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.config import Config, dump_config, from_dict
from arbkit.data.schema import quote_column_order
from arbkit.errors import ConfigError

SCENARIOS: tuple[str, ...] = (
    "normal", "always-win", "always-lose", "flat", "flash-crash", "outage",
)

START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
SYMBOL = "BTC-USDT"
VENUES = ("A", "B")
TICKS_PER_USDT = 100  # tick 0.01: prices are ticks / 100, the closest double to the decimal
LOT = 1e-5
P0 = 50_000.0
RATE_HZ = (25.0, 15.0)  # updates per second, A and B
FEED_DELAY_NS = np.array([2_000_000, 5_000_000], np.int64)
MIN_GAP_NS = 100_000
DT_NS = 10_000_000  # price-path grid
GRID0_NS = START_NS - 1_000_000_000  # grid origin before the first exchange stamp
DEFAULT_N_EVENTS = 320_000
OUTAGE_S = 600.0
EPISODE_S = 60.0

# (phase seconds, basis bps) knots of one episode; the sign alternates per episode
WIN_KNOTS = ((0.0, 0.0), (20.0, 0.0), (20.001, 15.0), (25.0, 15.0), (27.0, 0.0), (60.0, 0.0))
LOSE_KNOTS = ((0.0, 0.0), (20.0, 0.0), (20.001, 12.0), (23.0, 12.0), (23.001, 37.0),
              (28.0, 37.0), (30.0, 0.0), (60.0, 0.0))


@dataclass(frozen=True)
class _Spec:
    """Market and strategy parameters of one scenario (bps, seconds, milliseconds)."""

    lag_ms: float = 300.0
    vol_bps: float = 0.9  # A's random walk, bps per sqrt(second) (≈ 50 % a year)
    a_jump_per_h: float = 0.0
    a_jump_sd_bps: float = 0.0
    spread_a: tuple[float, float] = (0.5, 1.5)
    spread_b: tuple[float, float] = (0.8, 2.0)
    ou_sd_bps: float = 2.5
    ou_halflife_s: float = 60.0
    jump_per_h: float = 0.0
    jump_sd_bps: float = 0.0
    shift_per_h: float = 0.0  # slowly decaying level shifts: gaps that do not converge soon
    shift_sd_bps: float = 0.0
    shift_halflife_s: float = 1800.0
    knots: tuple[tuple[float, float], ...] = ()
    crash: bool = False
    outage: bool = False
    strategy: dict[str, Any] = field(default_factory=dict)


_NORMAL_MKT: dict[str, Any] = {"a_jump_per_h": 40.0, "a_jump_sd_bps": 6.0, "jump_per_h": 20.0,
                               "jump_sd_bps": 6.0, "shift_per_h": 6.0, "shift_sd_bps": 8.0}
_NORMAL_STRAT: dict[str, Any] = {"entry_bps": 1.0, "exit_bps": -1.5, "stop_loss_bps": 8.0,
                                 "max_hold_s": 300.0}
_EPISODE_MKT: dict[str, Any] = {"lag_ms": 0.0, "spread_a": (0.6, 1.0), "spread_b": (0.8, 1.2),
                                "ou_sd_bps": 0.2, "ou_halflife_s": 10.0}
_EPISODE_STRAT: dict[str, Any] = {"entry_bps": 2.0, "exit_bps": -2.0, "max_hold_s": 120.0}

SPECS: dict[str, _Spec] = {
    "normal": _Spec(**_NORMAL_MKT, strategy=_NORMAL_STRAT),
    "always-win": _Spec(**_EPISODE_MKT, knots=WIN_KNOTS,
                        strategy={**_EPISODE_STRAT, "stop_loss_bps": 20.0}),
    "always-lose": _Spec(**_EPISODE_MKT, knots=LOSE_KNOTS,
                         strategy={**_EPISODE_STRAT, "stop_loss_bps": 15.0}),
    "flat": _Spec(lag_ms=100.0, ou_sd_bps=0.4, ou_halflife_s=30.0,
                  strategy={**_EPISODE_STRAT, "stop_loss_bps": 15.0}),
    "flash-crash": _Spec(**_NORMAL_MKT, crash=True, strategy=_NORMAL_STRAT),
    "outage": _Spec(**_NORMAL_MKT, outage=True, strategy=_NORMAL_STRAT),
}


def generate(scenario: str, *, seed: int = 7, n_events: int | None = None,
             depth: int = 5) -> tuple[pl.DataFrame, Config]:
    """Quotes and a matching config for a named scenario.

    Parameters
    ----------
    scenario : one of ``SCENARIOS``.
    seed : seed of the numpy ``PCG64`` generator; the same seed gives identical data.
    n_events : rows over both venues (default 320,000, ≈ 2.2 h of market time).
    depth : book levels per row (1 = L1 only).

    Returns
    -------
    (quotes, config) : the canonical ``quotes`` table sorted by (``ts_recv_ns``, ``venue``)
        and the scenario's backtest config.

    Examples
    --------
    >>> df, cfg = generate("flat", n_events=1_000, depth=2)
    >>> "bid_px_1" in df.columns, cfg.strategy.entry_bps
    (True, 2.0)
    """
    spec = _spec(scenario)
    n = _whole("n_events", DEFAULT_N_EVENTS if n_events is None else n_events)
    _whole("depth", depth)
    rng = np.random.Generator(np.random.PCG64(seed))
    ts_recv, code = _rows(spec, n, rng)
    ts_exch = ts_recv - FEED_DELAY_NS[code]
    idx = (ts_exch - GRID0_NS) // DT_NS
    grid_s = np.arange(int(idx.max()) + 1) * (DT_NS / 1e9) + (GRID0_NS - START_NS) / 1e9
    mid_a = _mid_a(grid_s.size, spec, rng)
    basis = _basis(grid_s, spec, _span_s(n), rng)
    lag = round(spec.lag_ms * 1e6 / DT_NS)
    is_b = code == 1
    mid = np.where(is_b, mid_a[np.maximum(idx - lag, 0)] * (1.0 + basis[idx] * 1e-4), mid_a[idx])
    widen = None
    if spec.crash:  # B's book thins out while it is away from A: spreads x4, sizes / 4
        widen = np.where(is_b, 1.0 + 3.0 * np.minimum(np.abs(basis[idx]) / 1000.0, 1.0), 1.0)
    cols = _book(mid, code, spec, widen, depth, rng)
    return _frame(ts_recv, ts_exch, code, cols), _config(scenario, spec, seed)


def write_scenario(scenario: str, out: str | Path, *, seed: int = 7, n_events: int | None = None,
                   depth: int = 5) -> Path:
    """Write ``out/quotes.parquet`` and ``out/config.toml`` for a scenario; returns ``out``.

    Both files are built in memory and written to temporary names first, then renamed into
    place, so an error never leaves a half-written file behind.

    Examples
    --------
    >>> import tempfile
    >>> d = write_scenario("flat", tempfile.mkdtemp(), n_events=500)
    >>> sorted(p.name for p in d.iterdir())
    ['config.toml', 'quotes.parquet']
    """
    df, cfg = generate(scenario, seed=seed, n_events=n_events, depth=depth)
    text = dump_config(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        df.write_parquet(tmp / "quotes.parquet")
        (tmp / "config.toml").write_text(text)
        os.replace(tmp / "quotes.parquet", out / "quotes.parquet")
        os.replace(tmp / "config.toml", out / "config.toml")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def generate_l1_events_fast(n_events: int, seed: int = 7) -> pl.DataFrame:
    """L1 quotes for benchmarks: ``n_events`` rows, vectorised (10M rows in a few seconds).

    A's mid is a random walk over the rows, B's mid is A's times an AR(1) basis (sd ≈ 2.5
    bps); no lag, jumps or depth. Same schema and invariants as ``generate``.

    Examples
    --------
    >>> generate_l1_events_fast(1_000).height
    1000
    """
    _whole("n_events", n_events)
    rng = np.random.Generator(np.random.PCG64(seed))
    ts_recv, code = _stream(n_events, rng)
    ts_exch = ts_recv - FEED_DELAY_NS[code]
    dt_s = np.diff(ts_recv, prepend=ts_recv[0]) * 1e-9
    steps = rng.standard_normal(n_events) * np.sqrt(dt_s) * 0.9e-4
    mid_a = P0 * np.exp(np.cumsum(steps))
    phi = math.exp(-math.log(2.0) / (60.0 * sum(RATE_HZ)))  # 60 s half-life in rows
    basis = _ar1(rng.standard_normal(n_events) * 2.5 * math.sqrt(1.0 - phi * phi), phi)
    basis *= 1e-4 * (code == 1)
    basis += 1.0
    basis *= mid_a  # now B's mid on B rows, A's mid on A rows
    cols = _book(basis, code, _Spec(), None, 1, rng)
    return _frame(ts_recv, ts_exch, code, cols)


def _spec(scenario: str) -> _Spec:
    if scenario not in SPECS:
        raise ConfigError(
            f"synth: unknown scenario {scenario!r}; use one of: {', '.join(SCENARIOS)}"
        )
    return SPECS[scenario]


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        flag = {"n_events": "--events", "depth": "--depth"}.get(name)
        cli = f" ({flag} on the command line)" if flag else ""
        raise ConfigError(f"synth: {name} = {value!r}{cli}; use a whole number >= 1")
    return value


def _span_s(n: int) -> float:
    """Expected market time covered by ``n`` rows."""
    return n / sum(RATE_HZ)


def _stream(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Merged receive times (strictly increasing, first at START_NS) and venue codes."""
    mean_gap = 1e9 / sum(RATE_HZ)
    gaps = MIN_GAP_NS + rng.exponential(mean_gap - MIN_GAP_NS, n).astype(np.int64)
    gaps[0] = 0
    ts = START_NS + np.cumsum(gaps)
    code = (rng.random(n) < RATE_HZ[1] / sum(RATE_HZ)).astype(np.int8)
    return ts, code


def _rows(spec: _Spec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The row stream; in an outage, B's rows in the silent window are dropped and the
    stream is generated long enough that exactly ``n`` rows remain."""
    if not spec.outage:
        return _stream(n, rng)
    extra = int(3 * RATE_HZ[1] * OUTAGE_S) + 1_000
    ts, code = _stream(n + extra, rng)
    t0 = START_NS + int(0.4 * _span_s(n) * 1e9)
    silent = (code == 1) & (ts >= t0) & (ts < t0 + int(OUTAGE_S * 1e9))
    keep = np.flatnonzero(~silent)[:n]
    return ts[keep], code[keep]


def _mid_a(n_grid: int, spec: _Spec, rng: np.random.Generator) -> np.ndarray:
    """A's mid on the grid: log random walk plus rare jumps (bps)."""
    dt = DT_NS / 1e9
    steps = rng.standard_normal(n_grid) * spec.vol_bps * math.sqrt(dt)
    steps += _jumps(n_grid, spec.a_jump_per_h, spec.a_jump_sd_bps, rng)
    steps[0] = 0.0
    return P0 * np.exp(np.cumsum(steps) * 1e-4)


def _jumps(n_grid: int, per_h: float, sd_bps: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson jumps on the grid, normal sizes (bps); zeros when off."""
    hit = rng.random(n_grid) < per_h * DT_NS / 3.6e12
    return np.where(hit, rng.standard_normal(n_grid) * sd_bps, 0.0)


def _basis(grid_s: np.ndarray, spec: _Spec, span_s: float,
           rng: np.random.Generator) -> np.ndarray:
    """B's premium over A in bps: OU with jumps, plus episodes or the flash crash."""
    n = grid_s.size
    phi = math.exp(-math.log(2.0) * (DT_NS / 1e9) / spec.ou_halflife_s)
    eps = rng.standard_normal(n) * spec.ou_sd_bps * math.sqrt(1.0 - phi * phi)
    eps += _jumps(n, spec.jump_per_h, spec.jump_sd_bps, rng)
    basis = _ar1(eps, phi)
    if spec.shift_per_h > 0.0:
        phi_s = math.exp(-math.log(2.0) * (DT_NS / 1e9) / spec.shift_halflife_s)
        basis += _ar1(_jumps(n, spec.shift_per_h, spec.shift_sd_bps, rng), phi_s)
    if spec.knots:
        basis += _episodes(grid_s, spec.knots)
    if spec.crash:
        t0 = 0.5 * span_s
        basis += np.interp(grid_s, [t0, t0 + 0.5, t0 + 60.5], [0.0, -1000.0, 0.0])
    return basis


def _episodes(grid_s: np.ndarray, knots: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Repeat one episode profile every EPISODE_S, alternating its sign (+ = B rich)."""
    t = np.maximum(grid_s, 0.0)
    k = np.floor(t / EPISODE_S)
    xs, ys = zip(*knots)
    return np.where(k % 2 == 0, 1.0, -1.0) * np.interp(t - k * EPISODE_S, xs, ys)


def _ar1(eps: np.ndarray, phi: float, block: int = 1024) -> np.ndarray:
    """x[k] = phi * x[k-1] + eps[k], vectorised per block (exact, no Python loop per step)."""
    out = np.empty_like(eps)
    pw = phi ** np.arange(1, block + 1)
    carry = 0.0
    for s in range(0, eps.size, block):
        e = eps[s:s + block]
        p = pw[:e.size]
        x = p * (carry + np.cumsum(e / p))
        out[s:s + block] = x
        carry = x[-1]
    return out


def _book(mid: np.ndarray, code: np.ndarray, spec: _Spec, widen: np.ndarray | None, depth: int,
          rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tick-rounded top-N book around each row's mid (never crossed). In-place arithmetic
    keeps the 10M-row benchmark path to a few large temporaries."""
    n = mid.size
    is_b = code == 1
    (a_lo, a_hi), (b_lo, b_hi) = spec.spread_a, spec.spread_b
    half = rng.random(n)
    half *= np.where(is_b, b_hi - b_lo, a_hi - a_lo)
    half += np.where(is_b, b_lo, a_lo)
    half *= 0.5e-4
    qty0 = rng.exponential(0.55, (2, n))
    if widen is not None:
        half *= widen
        qty0 /= widen
    qty0 += 0.05
    # prices as whole tick counts held in float64 (exact below 2**53), in place where possible
    ask_t = mid * TICKS_PER_USDT
    half *= ask_t  # half spread in ticks
    bid_t = ask_t - half
    np.floor(bid_t, out=bid_t)
    ask_t += half
    np.ceil(ask_t, out=ask_t)
    np.maximum(ask_t, bid_t + 1.0, out=ask_t)  # at least one tick wide
    cols = {"bid_px": bid_t / TICKS_PER_USDT, "bid_qty": _lots(qty0[0]),
            "ask_px": ask_t / TICKS_PER_USDT, "ask_qty": _lots(qty0[1])}
    if depth > 1:
        steps = rng.integers(1, 4, (2, n, depth - 1)).cumsum(axis=2)
        growth = rng.uniform(1.1, 1.6, (2, n, depth - 1)).cumprod(axis=2)
        for lvl in range(1, depth):
            cols[f"bid_px_{lvl}"] = (bid_t - steps[0, :, lvl - 1]) / TICKS_PER_USDT
            cols[f"bid_qty_{lvl}"] = _lots(qty0[0] * growth[0, :, lvl - 1])
            cols[f"ask_px_{lvl}"] = (ask_t + steps[1, :, lvl - 1]) / TICKS_PER_USDT
            cols[f"ask_qty_{lvl}"] = _lots(qty0[1] * growth[1, :, lvl - 1])
    return cols


def _lots(qty: np.ndarray) -> np.ndarray:
    """Round sizes to the lot (in place on a temporary)."""
    out = qty / LOT
    np.rint(out, out=out)
    out *= LOT
    return out


def _frame(ts_recv: np.ndarray, ts_exch: np.ndarray, code: np.ndarray,
           cols: dict[str, np.ndarray]) -> pl.DataFrame:
    """Assemble the canonical quotes table in the schema's column order."""
    depth = 1 + sum(1 for c in cols if c.startswith("bid_px_"))
    df = pl.DataFrame({"ts_recv_ns": ts_recv, "ts_exch_ns": ts_exch, "code": code, **cols})
    venue = pl.when(pl.col("code") == 0).then(pl.lit(VENUES[0])).otherwise(pl.lit(VENUES[1]))
    df = df.with_columns(venue.alias("venue"), pl.lit(SYMBOL).alias("symbol"))
    return df.select(quote_column_order(depth))


def _config(scenario: str, spec: _Spec, seed: int) -> Config:
    """The scenario's backtest config: 1 bps taker fees, a few ms of latency, both venues
    pre-funded with BTC and USDT so both directions can trade on spot."""
    def inst(venue: str, latency_ms: float) -> dict[str, Any]:
        return {"venue": venue, "symbol": SYMBOL, "base": "BTC", "quote": "USDT",
                "kind": "spot", "taker_fee_bps": 1.0, "tick": 1.0 / TICKS_PER_USDT, "lot": LOT,
                "min_notional": 10.0, "order_latency_ms": latency_ms,
                "ack_latency_ms": latency_ms, "initial_base": 0.5, "initial_quote": 25_000.0}

    strategy = {"notional": 10_000.0, "latency_allowance_bps": 0.5, "cooldown_after_stop_s": 30.0,
                "max_quote_age_ms": 2_000.0, **spec.strategy}
    raw = {
        "run": {"seed": seed, "capital": 100_000.0, "reference_ccy": "USDT",
                "label": f"synth:{scenario}"},
        "instruments": [inst("A", 5.0), inst("B", 8.0)],
        "route": {"a": f"A:{SYMBOL}", "b": f"B:{SYMBOL}"},
        "strategy": strategy,
    }
    return from_dict(raw, source=f"synth:{scenario}")
