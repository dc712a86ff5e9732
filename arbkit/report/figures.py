"""Matplotlib figures of a study report, each returned as a base64 PNG for an inline <img>.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas (no pyplot
state, no display), small (dpi 80), and saved without a timestamp so the same input gives the
same bytes.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib
import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 80
BEST_COLOR = "#d62728"
TEST_COLOR = "#ff7f0e"
RC = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
      "ytick.labelsize": 9, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
      "svg.hashsalt": "arbkit", "font.family": "DejaVu Sans"}


@contextmanager
def _figure(w: float, h: float, **kw) -> Iterator[Figure]:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(w, h), dpi=DPI, **kw)
        FigureCanvasAgg(fig)
        yield fig


def to_png(fig: Figure) -> str:
    """The figure as base64 PNG (no metadata: byte-identical for the same drawing)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Axis:
    """One parameter mapped onto [0, 1] for parallel coordinates and slices."""

    name: str
    x: np.ndarray  # raw positions for slices (categories as 0..k-1), NaN where missing
    unit: np.ndarray  # positions in [0, 1], NaN where missing
    ticks: tuple[tuple[float, str], ...]  # (unit position, label)
    categories: tuple[str, ...] = ()
    log: bool = False


def encode(name: str, col: pl.Series, log: bool | None = None) -> Axis:
    """Map a parameter column to [0, 1]: numbers min-max (log10 when ``log``, i.e. the search
    space samples it on a log scale; unknown: when positive over ≥ 2 decades), anything else
    as evenly spaced sorted categories."""
    if col.dtype.is_numeric() and col.dtype != pl.Boolean:
        v = col.cast(pl.Float64).fill_null(math.nan).to_numpy().copy()
        ok = np.isfinite(v)
        if not ok.any():
            return Axis(name, v, v.copy(), ())
        lo, hi = float(v[ok].min()), float(v[ok].max())
        log = lo > 0 and (hi / lo >= 100.0 if log is None else bool(log))
        f = np.log10 if log else (lambda a: a)
        span = float(f(hi) - f(lo))
        unit = (f(v) - f(lo)) / span if span > 0 else np.where(ok, 0.5, np.nan)
        ticks = ((0.0, _num(lo)), (1.0, _num(hi))) if span > 0 else ((0.5, _num(lo)),)
        return Axis(name, v, unit, ticks, (), log)
    labels = [None if s is None else str(s) for s in col.to_list()]
    cats = tuple(sorted({s for s in labels if s is not None}))
    idx = {c: k for k, c in enumerate(cats)}
    x = np.array([idx[s] if s is not None else math.nan for s in labels], np.float64)
    den = max(len(cats) - 1, 1)
    unit = x / den if len(cats) > 1 else np.where(np.isfinite(x), 0.5, np.nan)
    ticks = tuple(((k / den if len(cats) > 1 else 0.5), c) for k, c in enumerate(cats))
    return Axis(name, x, unit, ticks, cats)


def _num(v: float) -> str:
    return f"{v:.4g}"


def importance(imp: dict[str, float]) -> str:
    items = sorted(imp.items(), key=lambda kv: (-kv[1], kv[0]))
    names, vals = [k for k, _ in items], [v for _, v in items]
    with _figure(6.0, 0.35 * len(items) + 0.9) as fig:
        ax = fig.add_subplot()
        ax.barh(range(len(names)), vals, color="#1f77b4")
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("importance")
        fig.tight_layout()
        return to_png(fig)


def parallel(axes: Sequence[Axis], colour: np.ndarray, colour_name: str, best: int | None,
             direction: str) -> str:
    """One line per trial across normalised axes (parameters, then objectives), coloured by
    the first objective; the best trial drawn on top in red."""
    ys = np.vstack([a.unit for a in axes]).T  # trials × axes
    xs = np.arange(len(axes))
    cmap = matplotlib.colormaps["viridis" if direction == "maximize" else "viridis_r"]
    finite = colour[np.isfinite(colour)]
    # the colour scale spans the 10th-90th percentiles (clipped beyond): a few very bad
    # trials would otherwise paint every trial worth comparing one colour
    lo, hi = ((float(np.percentile(finite, 10)), float(np.percentile(finite, 90)))
              if finite.size else (0.0, 1.0))
    norm = matplotlib.colors.Normalize(lo, hi if hi > lo else lo + 1.0, clip=True)
    # worst first, so the good trials are drawn on top
    order = np.argsort(np.nan_to_num(colour if direction == "maximize" else -colour,
                                     nan=-np.inf), kind="stable")
    with _figure(max(6.0, 1.1 * len(axes) + 1.5), 3.6) as fig:
        ax = fig.add_subplot()
        for i in order:
            if i != best:
                ax.plot(xs, ys[i], color=cmap(norm(colour[i])), alpha=0.6, lw=1.0)
        if best is not None:
            ax.plot(xs, ys[best], color=BEST_COLOR, lw=2.4, label="best trial")
            ax.legend(loc="upper right")
        for k, a in enumerate(axes):
            ax.axvline(k, color="#555", lw=0.6)
            for pos, label in a.ticks:
                ax.annotate(label[:12], (k, pos), xytext=(3, 0), textcoords="offset points",
                            fontsize=7, va="center", color="#333")
        ax.set_xticks(xs, [a.name + (" (log)" if a.log else "") for a in axes], rotation=20,
                      ha="right")
        ax.set_xlim(-0.2, len(axes) - 0.5)
        ax.set_ylim(-0.05, 1.05)
        ax.set_yticks([])
        ax.grid(False)
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=ax, label=f"{colour_name} (10th-90th pct)", pad=0.01)
        fig.tight_layout()
        return to_png(fig)


def slices(axes: Sequence[Axis], objective: np.ndarray, numbers: np.ndarray, obj_name: str,
           best: int | None) -> str:
    """Objective against each parameter, one small panel each, coloured by trial number."""
    ncols = min(3, len(axes))
    nrows = math.ceil(len(axes) / ncols)
    with _figure(3.0 * ncols, 2.3 * nrows) as fig:
        for k, a in enumerate(axes):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            ax.scatter(a.x, objective, c=numbers, cmap="Blues", s=14, edgecolors="#333",
                       linewidths=0.3)
            if best is not None:
                ax.scatter([a.x[best]], [objective[best]], marker="*", s=90, color=BEST_COLOR,
                           zorder=3)
            if a.categories:
                ax.set_xticks(range(len(a.categories)), [c[:10] for c in a.categories])
            elif a.log:
                ax.set_xscale("log")
            ax.set_xlabel(a.name)
            if k % ncols == 0:
                ax.set_ylabel(obj_name)
        fig.tight_layout()
        return to_png(fig)


def train_test(train: np.ndarray, test: np.ndarray, best: int | None, name: str) -> str:
    with _figure(4.6, 3.6) as fig:
        ax = fig.add_subplot()
        ax.scatter(train, test, s=16, color="#1f77b4", edgecolors="#333", linewidths=0.3,
                   label="trial")
        if best is not None:
            ax.scatter([train[best]], [test[best]], marker="*", s=120, color=BEST_COLOR,
                       zorder=3, label="best trial")
        both = np.concatenate([train, test])
        both = both[np.isfinite(both)]
        if both.size:
            lo, hi = float(both.min()), float(both.max())
            ax.plot([lo, hi], [lo, hi], ls="--", color="#777", lw=0.8, label="test = train")
        ax.axhline(0, color="#333", lw=0.6)
        ax.set_xlabel(f"{name} (train)")
        ax.set_ylabel(f"{name} (test)")
        ax.legend(loc="best")
        fig.tight_layout()
        return to_png(fig)


def sharpe_spread(sharpes: np.ndarray, best_sr: float, e_max: float, basis: str) -> str:
    with _figure(5.0, 2.6) as fig:
        ax = fig.add_subplot()
        ax.hist(sharpes, bins=max(5, min(30, int(math.sqrt(sharpes.size)) + 1)),
                color="#9ecae1", edgecolor="#333", linewidth=0.4)
        if math.isfinite(e_max):
            ax.axvline(e_max, color="#555", ls="--", label=f"E[max SR] of the null = {e_max:.3g}")
        if math.isfinite(best_sr):
            ax.axvline(best_sr, color=BEST_COLOR, label=f"best trial SR = {best_sr:.3g}")
        ax.set_xlabel(f"Sharpe per {basis} (not annualised)")
        ax.set_ylabel("trials")
        ax.legend(loc="best")
        fig.tight_layout()
        return to_png(fig)


def equity(train: pl.DataFrame, test: pl.DataFrame | None) -> str:
    """Equity (top) and drawdown from the running peak (bottom), train then test."""
    with _figure(9.0, 4.4) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        for frame, color, label in ((train, "#1f77b4", "train"), (test, TEST_COLOR, "test")):
            if frame is None or frame.height == 0:
                continue
            ts = frame.get_column("ts").to_numpy().astype("datetime64[ns]")
            eq = frame.get_column("equity").to_numpy()
            dd = eq - np.maximum.accumulate(eq)
            top.plot(ts, eq, color=color, lw=1.0, label=label)
            bottom.fill_between(ts, dd, 0.0, color=color, alpha=0.5, lw=0, label=label)
        top.set_ylabel("equity")
        top.legend(loc="best")
        bottom.set_ylabel("drawdown")
        bottom.xaxis.set_major_formatter(
            matplotlib.dates.ConciseDateFormatter(bottom.xaxis.get_major_locator()))
        fig.tight_layout()
        return to_png(fig)


def exit_pnl(reasons: list[str], pnl: list[float], counts: list[int]) -> str:
    with _figure(5.5, 0.35 * len(reasons) + 1.0) as fig:
        ax = fig.add_subplot()
        colors = ["#2ca02c" if v >= 0 else BEST_COLOR for v in pnl]
        ax.barh(range(len(reasons)), pnl, color=colors)
        ax.set_yticks(range(len(reasons)), [f"{r} ({n})" for r, n in zip(reasons, counts)])
        ax.invert_yaxis()
        ax.axvline(0, color="#333", lw=0.6)
        ax.set_xlabel("net PnL by exit reason")
        fig.tight_layout()
        return to_png(fig)


def trade_hist(net: np.ndarray) -> str:
    with _figure(5.5, 2.8) as fig:
        ax = fig.add_subplot()
        bins = max(10, min(60, int(math.sqrt(net.size)) * 2))
        ax.hist(net, bins=bins, color="#9ecae1", edgecolor="#333", linewidth=0.4)
        ax.axvline(0, color="#333", lw=0.8)
        ax.axvline(float(net.mean()), color=BEST_COLOR, ls="--", lw=1.0,
                   label=f"mean {net.mean():.4g}")
        ax.set_xlabel("net PnL per round trip")
        ax.set_ylabel("round trips")
        ax.legend(loc="best")
        fig.tight_layout()
        return to_png(fig)
