"""Self-contained HTML report of a tuning study (BRIEF §8).

>>> from arbkit.report import StudyReport, write_report
>>> write_report(rep, "out/my-study.html")  # doctest: +SKIP

``StudyReport`` (in ``study.py``) is what the tuning code fills; ``write_report`` (in
``html.py``) renders it; ``stats.py`` holds the Probabilistic and Deflated Sharpe Ratio.
"""

from arbkit.report.html import SECTION_IDS, render, write_report
from arbkit.report.study import StudyReport

__all__ = ["SECTION_IDS", "StudyReport", "render", "write_report"]
