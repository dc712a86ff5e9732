"""FX rates and perpetual funding as kernel events (``EV_FX``, ``EV_FUNDING``).

They come from the catalog (``fx`` series named by the config's ``[[fx]]``; the ``funding``
stream of each linear perpetual, when the catalog has one) or from frames / Parquet files
given to :func:`arbkit.backtest` (``fx=``, ``funding=``). They are merged into the quote events
by receive time; at equal times they come first, so a quote at ``t`` is evaluated with the
rate known at ``t``.

An FX series that tracks the route's own price ratio is refused: an FX implied from the
traded asset makes the premium zero by construction (BRIEF §3, §10).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbkit.config import Config
from arbkit.core import types as T
from arbkit.data.tables import validate_table
from arbkit.errors import DataError

IMPLIED_BPS = 2.0  # an FX within this of the legs' own price ratio (median) is implied


def _frame(src: Any, kind: str, label: str, warnings: list[str]) -> pl.DataFrame:
    """``src`` validated as ``kind``; its validation warnings are added to ``warnings`` (a
    funding rate in percent, stamps in the future: the run's notes say so)."""
    if src is None:
        return pl.DataFrame()
    if not isinstance(src, pl.DataFrame):
        from arbkit.data.load import parquet_files, read_file

        label = str(src)
        src = pl.concat([read_file(f) for f in parquet_files(Path(src))],
                        how="diagonal_relaxed")
    rep = validate_table(kind, src, label)
    warnings += rep.warnings
    return rep.frame


def _events(n: int) -> np.ndarray:
    ev = np.zeros(n, T.EVENT_DTYPE)
    ev["depth_row"] = -1
    ev["bid_qty"] = ev["ask_qty"] = 0.0
    return ev


def fx_events(cfg: Config, fx: pl.DataFrame) -> np.ndarray:
    """One ``EV_FX`` event per rate of every configured series found in ``fx``."""
    parts = []
    for k, fc in enumerate(cfg.fx):
        rows = fx.filter((pl.col("venue") == fc.venue) & (pl.col("symbol") == fc.symbol)) \
            if fx.height else fx
        if rows.height == 0:
            raise DataError(f"[[fx]] {fc.venue} {fc.symbol}: no rates in the FX data; import "
                            "or record the series (e.g. `arbkit data import upbit-fx`)")
        ev = _events(rows.height)
        ev["ts_recv"] = ev["ts_exch"] = rows["ts_ns"].to_numpy()
        ev["inst"] = k
        ev["kind"] = T.EV_FX
        ev["bid_px"] = ev["ask_px"] = rows["rate"].to_numpy()
        parts.append(ev)
    return _sorted(parts)


def funding_events(cfg: Config, inst_keys: list[str], funding: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """``EV_FUNDING`` events of every perpetual with a funding stream, and notes for
    those without one (their funding is not accrued: said, never silently 0)."""
    parts, notes = [], []
    for i, key in enumerate(inst_keys):
        inst = cfg.instrument(key)
        if inst.kind == "spot":
            continue
        rows = funding.filter((pl.col("venue") == inst.venue) & (pl.col("symbol") == inst.symbol)) \
            if funding.height else funding
        if rows.height == 0:
            notes.append(f"no funding series for {key}: its funding is not accrued (import or "
                         "download it: `arbkit data download --kind funding`)")
            continue
        ev = _events(rows.height)
        ev["ts_recv"] = ev["ts_exch"] = rows["ts_ns"].to_numpy()
        ev["inst"] = i
        ev["kind"] = T.EV_FUNDING
        ev["bid_px"] = rows["rate"].to_numpy()
        ev["ask_px"] = rows["mark_px"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        parts.append(ev)
    return _sorted(parts), notes


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return _events(0)
    ev = np.concatenate(parts)
    return ev[np.argsort(ev["ts_recv"], kind="stable")]


def from_sources(cfg: Config, inst_keys: list[str], fx: Any = None,
                 funding: Any = None) -> tuple[np.ndarray, list[str]]:
    """Carry events from frames or Parquet paths (the non-catalog path)."""
    warnings: list[str] = []
    fx_frame = _frame(fx, "fx", "fx", warnings)
    if cfg.fx and fx_frame.height == 0:
        names = ", ".join(f"{f.venue} {f.symbol}" for f in cfg.fx)
        raise DataError(f"the config has [[fx]] series but no FX data was given ({names}): "
                        "pass --fx FILE, the fx table as Parquet (fx= in Python), or run "
                        "from a catalog that holds it (`arbkit data import upbit-fx`)")
    fund_ev, notes = funding_events(cfg, inst_keys,
                                    _frame(funding, "funding", "funding", warnings))
    return (_sorted([fx_events(cfg, fx_frame) if cfg.fx else _events(0), fund_ev]),
            notes + warnings)


def from_catalog(cfg: Config, inst_keys: list[str], root: Path) -> tuple[np.ndarray, list[str]]:
    """Carry events from a catalog's ``fx`` and ``funding`` tables."""
    from arbkit.data.catalog import Catalog, Selection

    cat = Catalog(root)
    fx = pl.DataFrame()
    warnings: list[str] = []
    if cfg.fx:
        sels = [Selection("fx", f.venue, f.symbol) for f in cfg.fx]
        rep = cat.read_table(sels)
        fx, warnings = rep.frame, warnings + rep.warnings
    frames = []
    for key in inst_keys:
        inst = cfg.instrument(key)
        sel = Selection("funding", inst.venue, inst.symbol)
        if inst.kind != "spot" and cat.partitions(sel):
            rep = cat.read_table(sel)
            frames.append(rep.frame)
            warnings += rep.warnings
    funding = pl.concat(frames) if frames else pl.DataFrame()
    fund_ev, notes = funding_events(cfg, inst_keys, funding)
    return (_sorted([fx_events(cfg, fx) if cfg.fx else _events(0), fund_ev]),
            notes + warnings)


CONTROLS = {"kill": T.CTL_KILL, "stop": T.CTL_STOP, "resume": T.CTL_RESUME,
            "symbol_off": T.CTL_SYMBOL_OFF, "symbol_on": T.CTL_SYMBOL_ON}


def base_ids(cfg: Config) -> list[str]:
    """The base assets of the config's routes, in the kernel's order (``route.base_id``)."""
    return sorted({cfg.instrument(rc.a).base for rc in cfg.routes})


def control_event(ts: int, name: str, cfg: Config | None = None) -> np.ndarray:
    """One ``EV_CONTROL`` event: ``kill``, ``stop``, ``resume``, or ``symbol_off:BASE`` /
    ``symbol_on:BASE`` (no new entries on that base asset's routes, or again)."""
    code, _, arg = name.partition(":")
    if code not in CONTROLS:
        raise DataError(f"control {name!r} at {ts}: unknown; known: kill, stop, resume, "
                        "symbol_off:BASE, symbol_on:BASE")
    ev = _events(1)
    ev[0]["ts_recv"] = ev[0]["ts_exch"] = int(ts)
    ev[0]["inst"] = CONTROLS[code]
    ev[0]["kind"] = T.EV_CONTROL
    if code.startswith("symbol_"):
        bases = base_ids(cfg) if cfg is not None else []
        if arg not in bases:
            raise DataError(f"control {name!r}: name a base asset of the routes, one of "
                            f"{', '.join(bases) or 'none'} (e.g. {code}:{bases[0] if bases else 'BTC'})")
        ev[0]["bid_px"] = float(bases.index(arg))
    return ev


def with_controls(extra: np.ndarray, controls: list[tuple[int, str]] | None,
                  cfg: Config | None = None) -> np.ndarray:
    """Operator controls as ``EV_CONTROL`` events, merged into the carry events."""
    if not controls:
        return extra
    return _sorted([extra, *[control_event(ts, name, cfg) for ts, name in controls]])


def asof_start(extra: np.ndarray, t_first: int) -> tuple[np.ndarray, int]:
    """The carry events in force when the market data starts at ``t_first``: the last rate of
    each FX series before it, delivered at ``t_first`` (its own time stays in ``ts_exch``, so
    its age, and a stale-FX block, are right); funding and controls before the start are
    dropped. Returns (those rates, index of the first event of ``extra`` at or after
    ``t_first``). The run's span is the market data's: carry series only supply values."""
    lo = int(np.searchsorted(extra["ts_recv"], t_first, "left"))
    head = extra[:lo]
    fx = head[head["kind"] == T.EV_FX]
    if fx.shape[0] == 0:
        return _events(0), lo
    last = [np.nonzero(fx["inst"] == k)[0][-1] for k in np.unique(fx["inst"])]
    out = fx[np.sort(np.array(last))].copy()
    out["ts_recv"] = t_first
    return out, lo


def clip_to(extra: np.ndarray, t_first: int, t_last: int) -> tuple[np.ndarray, int]:
    """``extra`` cut to the market data's span ``[t_first, t_last]`` (see ``asof_start``);
    also the number of rows after ``t_last`` left out."""
    head, lo = asof_start(extra, t_first)
    hi = int(np.searchsorted(extra["ts_recv"], t_last, "right"))
    return np.concatenate([head, extra[lo:hi]]), extra.shape[0] - hi


def span_note(after: int) -> list[str]:
    """The note a run carries when FX/funding/control rows came after its market data."""
    return [f"{after} FX/funding/control rows after the last market event were not used "
            "(the run's span is the market data's)"] if after else []


def insert(ev: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """``extra`` events placed into time-sorted ``ev``, each before the events at its time."""
    if extra.shape[0] == 0:
        return ev
    at = np.searchsorted(ev["ts_recv"], extra["ts_recv"], side="left")
    return np.insert(ev, at, extra)


class ImpliedCheck:
    """Collects (FX rate, the route's own price ratio) pairs at FX times, chunk by chunk, and
    refuses an FX series that tracks the ratio (see module doc)."""

    def __init__(self, cfg: Config, inst_keys: list[str]) -> None:
        self.cfg, self.keys = cfg, inst_keys
        self.pairs: dict[tuple[str, int], list[np.ndarray]] = {}
        self._last_mid: dict[int, float] = {}

    def add(self, ev: np.ndarray) -> None:
        """Events of one chunk (time-sorted, quotes and FX)."""
        for rc in self.cfg.routes:
            a, b = self.cfg.instrument(rc.a), self.cfg.instrument(rc.b)
            for leg, other in ((a, b), (b, a)):
                conv = self.cfg.fx_for(leg.quote)
                if conv is None or self.cfg.fx_for(other.quote) is not None:
                    continue
                k, inv = conv
                fx = ev[(ev["kind"] == T.EV_FX) & (ev["inst"] == k)]
                if fx.shape[0] == 0:
                    continue
                ratio = (self._mid_at(ev, self.keys.index(other.key), fx["ts_recv"])
                         / self._mid_at(ev, self.keys.index(leg.key), fx["ts_recv"]))
                to_ref = 1.0 / fx["bid_px"] if inv else fx["bid_px"]
                self.pairs.setdefault((rc.label, k), []).append(np.c_[to_ref, ratio])
        for i in range(len(self.keys)):  # carry each instrument's last mid into the next chunk
            q = ev[(ev["kind"] == T.EV_QUOTE) & (ev["inst"] == i)]
            if q.shape[0]:
                self._last_mid[i] = float(0.5 * (q["bid_px"][-1] + q["ask_px"][-1]))

    def _mid_at(self, ev: np.ndarray, i: int, at: np.ndarray) -> np.ndarray:
        q = ev[(ev["kind"] == T.EV_QUOTE) & (ev["inst"] == i)]
        j = np.searchsorted(q["ts_recv"], at, side="right") - 1
        m = 0.5 * (q["bid_px"] + q["ask_px"])
        before = self._last_mid.get(i, np.nan)
        return np.where(j >= 0, m[np.maximum(j, 0)] if m.shape[0] else before, before)

    def verdict(self) -> None:
        """Raise if a series tracked a route's own ratio (median within IMPLIED_BPS), or
        is the inverse of what its name says (any number of rates)."""
        for (label, k), parts in self.pairs.items():
            x = np.concatenate(parts)
            ok = np.isfinite(x[:, 1]) & (x[:, 1] > 0) & np.isfinite(x[:, 0]) & (x[:, 0] > 0)
            if ok.any():
                _check_not_inverted(self.cfg.fx[k], label, x[ok])
            if ok.sum() < 10:
                continue
            dev_bps = float(np.median(np.abs(x[ok, 0] / x[ok, 1] - 1.0)) * 1e4)
            if dev_bps < IMPLIED_BPS:
                fc = self.cfg.fx[k]
                raise DataError(
                    f"[[fx]] {fc.venue} {fc.symbol}: its rates track the route {label}'s own "
                    f"price ratio (median deviation {dev_bps:.2f} bps over {int(ok.sum())} "
                    "rates): an FX implied from the traded asset makes the premium zero by "
                    "construction; use an independently recorded rate")


def _check_not_inverted(fc: Any, label: str, x: np.ndarray) -> None:
    """Refuse a series whose rates are the inverse of what its name says: converted with
    them the route's legs are far apart (here more than 2x), with their inverse they agree
    (within 50 %). ``x``: (rate to the reference currency, the legs' own price ratio)."""
    as_named = float(np.median(x[:, 0] / x[:, 1]))
    inverted = float(np.median(1.0 / (x[:, 0] * x[:, 1])))
    if abs(np.log(as_named)) > np.log(2.0) and abs(np.log(inverted)) < np.log(1.5):
        base, quote = fc.pair
        raise DataError(
            f"[[fx]] {fc.venue} {fc.symbol}: the rates look inverted: converted with them the "
            f"route {label}'s legs differ {max(as_named, 1 / as_named):,.0f}x, with their "
            f"inverse they agree to {abs(inverted - 1):.1%}; {fc.symbol} is {quote} per 1 "
            f"{base} (e.g. USDT/KRW = 1,380): store the series that way, or name it "
            f"{quote}/{base} in [[fx]] and the fx table")


def check_not_implied(cfg: Config, inst_keys: list[str], ev: np.ndarray) -> None:
    """One-shot :class:`ImpliedCheck` over a whole event array."""
    chk = ImpliedCheck(cfg, inst_keys)
    chk.add(ev)
    chk.verdict()
