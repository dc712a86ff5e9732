"""Soak: an accelerated paper session with many symbols, network drops and a forced disconnect.

One paper session (``arbkit.runtime.soak.run_measured``: emulators per venue, the real ccxt
client, Redis journal, kernel, recording, DuckDB results) over ``--hours`` simulated hours of
synthetic ``normal`` books for ``--symbols`` symbols × 2 venues, replayed at ``--speed``.
Every simulated hour every market-data socket is cut (a reconnect storm); at the middle of
the run every socket is closed with code 1000 (Binance's 24 h disconnect). RSS is sampled
every second. Checks: no crash; RSS growth ≤ 5 % after warm-up (the first 20 % of the wall
time); every row reached the store (the stored trades/fills/equity equal the recording's
backtest: replay parity); account identity of that backtest; every fault was followed by a
reconnect.

The data is time-stretched so that ``--wall-rate`` quotes per wall second reach the node
in total (a quieter market than the synthetic 40 updates/s per symbol: the emulator and ccxt
sustain ~1,000 messages/s on this 2-core machine, see docs/benchmarks.md "Scaling").

    bash scripts/services.sh >/dev/null && source .services/env
    .venv/bin/python scripts/soak.py                       # 12 simulated hours at ×60: 12 min
    .venv/bin/python scripts/soak.py --hours 24            # the full day: 24 min
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RSS_GROWTH_MAX = 0.05


def plan(hours: float) -> list[tuple[str, float]]:
    """(kind, simulated seconds from the start): a drop every hour, a disconnect mid-run,
    half an hour away from any drop (a disconnect right after a drop finds the sockets still
    redialling and closes none: the first 12 h run did exactly that)."""
    out = [("drop", h * 3600.0) for h in range(1, int(hours) + 1) if h * 3600.0 < hours * 3600]
    mid = hours * 3600.0 / 2
    out.append(("disconnect", (mid // 3600) * 3600 + 1800.0 if hours >= 1 else mid))
    return sorted(out, key=lambda f: f[1])


def soak(*, symbols: int, hours: float, speed: float, wall_rate: float, redis: str,
         out: Path, faults: list[tuple[str, float]] | None = None) -> tuple[list, object]:
    """Run the soak; returns (checks, Measured). ``checks``: (name, ✅/❌, detail)."""
    from arbkit.runtime.soak import run_measured, universe

    span = hours * 3600.0
    per_symbol = max(200, int(wall_rate * span / speed / symbols))
    df, cfg = universe(symbols, span_s=span, events_per_symbol=per_symbol)
    t0 = int(df["ts_recv_ns"].min())
    sched = plan(hours) if faults is None else faults
    m = run_measured(df, cfg, speed=speed, redis_url=redis, results=str(out / "results.duckdb"),
                     out=out, faults=[(k, t0 + int(s * 1e9)) for k, s in sched], tag="soak")
    growth = m.rss_growth
    stored = m.rows_stored
    checks = [
        ("no crash: the session ran to the end of the data", "✅", f"{m.quotes:,} quotes, "
         f"{m.wall_s:.0f} s wall, {m.data_span_s / 3600:.2f} simulated h"),
        (f"RSS growth after warm-up ≤ {RSS_GROWTH_MAX:.0%}",
         "✅" if growth <= RSS_GROWTH_MAX else "❌",
         f"{m.rss_warm_mib:.0f} → {m.rss_end_mib:.0f} MiB ({growth:+.1%}); max "
         f"{m.rss_max_mib:.0f} MiB"),
        ("buffers drained: stored rows = the recording's backtest (replay parity, bit for bit)",
         "✅" if m.parity else "❌",
         ", ".join(f"{k} {stored[k]:,}/{m.rows_replayed[k]:,}" for k in stored)),
        ("account identity at the end", "✅" if (m.identity_gap_rel or 0) <= 1e-9 else "❌",
         f"identity_gap {m.identity_gap:.2e} (rel {m.identity_gap_rel:.2e})"),
        ("every forced drop/disconnect reconnected",
         "✅" if len(m.forced) > 0 and all(f["cut"] > 0 for f in m.forced)
         and m.connections >= 2 + sum(f["cut"] for f in m.forced) else "❌",
         f"{len(m.forced)} injected, {sum(f['cut'] for f in m.forced)} sockets cut, "
         f"{m.connections} websockets opened in all, {m.feed_reconnects} instrument "
         "reconnects (each socket carries its venue's symbols)"),
        ("trades happened", "✅" if m.trades > 0 else "❌", f"{m.trades} round trips"),
    ]
    return checks, m


def render(checks: list, m: object, args: argparse.Namespace, started: str) -> str:
    lines = [f"soak: {args.symbols} symbols × 2 venues, {m.data_span_s / 3600:.2f} simulated h "
             f"at ×{args.speed:g} in {m.wall_s:.0f} s wall (started {started}; load average "
             f"{_load()} at the end)", "",
             "| check | | detail |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in checks]
    lines += ["", "| figure | value |", "|---|---:|",
              f"| quotes fed / emulator messages sent | {m.quotes:,} / {m.emulator_sent:,} |",
              f"| quotes/s sustained | {m.events_per_s:,.0f} |",
              f"| CPU (process / loop thread, % of one core) | {m.cpu_pct:.0f} / "
              f"{m.loop_cpu_pct:.0f} |",
              f"| receive→decision p50 / p99 | {m.recv_decision_us[0]:.0f} / "
              f"{m.recv_decision_us[1]:.0f} µs |",
              f"| kernel per event p50 / p99 | {m.decide_us[0]:.1f} / {m.decide_us[1]:.1f} µs |",
              f"| queue lag p50 / p99 / max | {m.queue_lag_ms[0]:.2f} / {m.queue_lag_ms[1]:.2f} "
              f"/ {m.queue_lag_ms[2]:.1f} ms |",
              f"| RSS start / warm / end / max | {m.rss_start_mib:.0f} / {m.rss_warm_mib:.0f} / "
              f"{m.rss_end_mib:.0f} / {m.rss_max_mib:.0f} MiB |",
              f"| round trips | {m.trades} |", "", "Faults (simulated time → sockets cut):"]
    lines += [f"- {f['kind']} at {f['data_s'] / 3600:.2f} h (wall {f['wall']} s): {f['cut']} "
              f"socket(s)" for f in m.forced]
    step = max(1, len(m.samples) // 12)
    lines += ["", "RSS over time:", "", "| wall s | simulated h | quotes | RSS MiB |",
              "|---:|---:|---:|---:|"]
    t0 = m.samples[0]["data_ns"] if m.samples else 0
    for s in m.samples[::step] + m.samples[-1:]:
        lines.append(f"| {s['wall_s']:.0f} | {(s['data_ns'] - t0) / 3.6e12:.2f} | "
                     f"{s['quotes']:,} | {s['rss_mib']:.1f} |")
    return "\n".join(lines) + "\n"


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--hours", type=float, default=12.0, help="simulated hours (24: a day)")
    ap.add_argument("--speed", type=float, default=60.0, help="data seconds per wall second")
    ap.add_argument("--wall-rate", type=float, default=400.0,
                    help="quotes per wall second, all instruments together")
    ap.add_argument("--out", type=Path, default=None, help="folder for data, recording, results "
                    "and soak.md/soak.json (default: a temporary folder)")
    args = ap.parse_args()
    for name in ("symbols", "hours", "speed", "wall_rate"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"error: --{name.replace('_', '-')} {getattr(args, name)}: must "
                             "be > 0")
    if args.speed < 50:
        print("note: the soak is meant at ≥ 50× (--speed 60 by default)", file=sys.stderr)
    redis = os.environ.get("ARBKIT_TEST_REDIS_URL") or os.environ.get("ARBKIT_REDIS_URL")
    if not redis:
        raise SystemExit("error: no Redis; start the services: bash scripts/services.sh "
                         ">/dev/null && source .services/env")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        checks, m = soak(symbols=args.symbols, hours=args.hours, speed=args.speed,
                         wall_rate=args.wall_rate, redis=redis, out=out)
        text = render(checks, m, args, started)
        print(text, flush=True)
        if args.out:
            (out / "soak.md").write_text(text)
            (out / "soak.json").write_text(json.dumps(
                {"checks": checks, "samples": m.samples, "forced": m.forced}, default=str))
    sys.exit(0 if all(c[1] != "❌" for c in checks) else 1)


if __name__ == "__main__":
    main()
