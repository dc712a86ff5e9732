"""Small HTML builders: every string that reaches the page goes through ``esc``."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A cell's text: numbers compact and readable, missing as an en dash (escaped)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value == 0.0:
            return "0"
        a = abs(value)
        if a >= 1e5:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    if isinstance(value, dict | list | tuple):
        return esc(json.dumps(value, sort_keys=True, default=str))
    return esc(value)


def redact(text: str) -> str:
    """Hide a password written into a URL (``scheme://user:secret@host`` → ``user:***@``)."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
          highlight: set[int] | None = None, cls: str = "") -> str:
    """A table; cells through ``fmt``; rows whose index is in ``highlight`` get class best."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        attr = ' class="best"' if highlight and i in highlight else ""
        cells = "".join(f"<td>{fmt(v)}</td>" for v in row)
        body.append(f"<tr{attr}>{cells}</tr>")
    klass = f' class="{esc(cls)}"' if cls else ""
    return (f"<table{klass}><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column key/value table."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{fmt(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def img(b64_png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64_png}" alt="{esc(alt)}">'


def para(text: str, kind: str = "") -> str:
    klass = f' class="{esc(kind)}"' if kind else ""
    return f"<p{klass}>{esc(text)}</p>"


def bullets(items: Iterable[str], kind: str = "") -> str:
    klass = f' class="{esc(kind)}"' if kind else ""
    lis = "".join(f"<li>{esc(t)}</li>" for t in items)
    return f"<ul{klass}>{lis}</ul>"


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{esc(sid)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'
