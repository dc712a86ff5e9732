"""One self-contained HTML file per tuning study: inline CSS, inline PNG figures, no script,
no external URL, so it opens anywhere (mail attachment, air-gapped box) and renders the same."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from arbkit.report import sections_best as best
from arbkit.report import sections_overfit as overfit
from arbkit.report import sections_study as study
from arbkit.report.markup import esc
from arbkit.report.study import StudyReport, validate

# (section id, table-of-contents label, builder) in page order
SECTIONS: tuple[tuple[str, str, Callable[[StudyReport], str]], ...] = (
    ("summary", "Summary", study.summary),
    ("best-trials", "Best trials", study.best_trials),
    ("importance", "Importance", study.importance),
    ("parallel", "Parallel coordinates", study.parallel),
    ("slices", "Slices", study.slices),
    ("train-test", "Train vs test", overfit.train_test),
    ("multiple-testing", "Multiple testing", overfit.multiple_testing),
    ("equity", "Equity", best.equity),
    ("symbols", "Per symbol", best.symbols),
    ("exit-reasons", "Exit reasons", best.exit_reasons),
    ("trade-distribution", "Trades", best.trade_distribution),
)
SECTION_IDS = tuple(s[0] for s in SECTIONS)

CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:14px;color:#222;margin:0 auto;
max-width:1200px;padding:0 16px 40px}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;border-bottom:2px solid #1f77b4;
padding-bottom:2px;margin-top:28px}h3{font-size:15px;margin:14px 0 6px}
nav{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #ddd;
font-size:13px}nav a{margin-right:12px;color:#1f77b4;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 10px;font-size:12px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f3f7}
td:first-child,th:first-child{text-align:left}table.kv th{text-align:left}
table.kv td{text-align:left}table.wide{display:block;overflow-x:auto;max-width:100%}
tr.best td{background:#fdecea;font-weight:bold}img{max-width:100%;height:auto;display:block;
margin:6px 0}p.warn,ul.warn{color:#8a1c1c}p.ok{color:#1d6b2a}.muted{color:#777;font-size:12px}
"""


def render(rep: StudyReport) -> str:
    """The report as one HTML string (same input → same string)."""
    validate(rep)
    nav = "".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label, _ in SECTIONS)
    body = "\n".join(build(rep) for _, _, build in SECTIONS)
    if rep.stress is not None:  # `arbkit report --stress DIR`: the stress.json of a preset
        from arbkit.report.sections_stress import stress_section

        nav += '<a href="#stress">Stress</a>'
        body += "\n" + stress_section(rep.stress)
    title = f"arbkit study report: {rep.study}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="muted">created {esc(rep.meta.get("created", ""))}</p>\n'
        f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


def write_report(rep: StudyReport, out: str | Path) -> Path:
    """Write the study report to ``out`` (one .html file) atomically and return its path.

    The page is written to a temporary file beside ``out`` and renamed over it, so a reader
    never sees half a report. ``rep.meta["created"]`` is set to now (UTC) when missing; apart
    from it the file is a pure function of ``rep``.

    Examples
    --------
    >>> from arbkit.report import StudyReport, write_report
    >>> write_report(StudyReport(...), "out/study.html")  # doctest: +SKIP
    PosixPath('out/study.html')
    """
    out = Path(out)
    if "created" not in rep.meta:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rep = dataclasses.replace(rep, meta={**rep.meta, "created": now})
    text = render(rep)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is meant to be shared
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
