"""Regenerate docs/img/report.png: the top of a study report rendered in headless Chromium.

    bash scripts/chromium.sh                      # once: Debian's chromium (needs root)
    .venv/bin/python scripts/report_screenshot.py [--html out/report-demo.html]

The report is built from a real study (arbkit.report.demo: a seeded random search whose
trials are real backtests on the synthetic universe), written as one HTML file, rendered at
1280×2400 and stored as a 256-colour PNG so the docs stay small (< 400 KB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402  (a matplotlib dependency)

from arbkit.report import write_report  # noqa: E402
from arbkit.report.browser import find_chromium, screenshot  # noqa: E402
from arbkit.report.demo import demo_study  # noqa: E402

OUT = ROOT / "docs" / "img" / "report.png"
WIDTH, HEIGHT = 1280, 2400
MAX_BYTES = 400_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, help="also keep the report here")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if find_chromium() is None:
        print("report_screenshot: chromium not found; run `bash scripts/chromium.sh`",
              file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    rep = demo_study(n_trials=12, n_events=30_000)
    t_study = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="arbkit-report-") as tmp:
        html = write_report(rep, args.html or Path(tmp) / "report.html")
        raw = Path(tmp) / "raw.png"
        took = screenshot(html, raw, WIDTH, HEIGHT)
        img = Image.open(raw).convert("RGB")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
        size_html = html.stat().st_size
    size = args.out.stat().st_size
    print(f"report_screenshot: study {t_study:.1f} s, report {size_html / 1e3:.0f} KB, "
          f"chromium {took:.1f} s, {args.out.relative_to(ROOT)} {size / 1e3:.0f} KB")
    if size > MAX_BYTES:
        print(f"report_screenshot: {args.out} is {size} bytes > {MAX_BYTES}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
