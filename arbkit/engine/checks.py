"""What a finished backtest must say about its own data, beside its numbers.

The summary's notes (``arbkit.metrics``) judge the trades; these judge the input: a result
that looks like "no trades" or "a small loss" may only be the shadow of data that could never
trade (every row crossed), of legs in different units (edges the sanity guard threw away
thousands of times), or of a warning the validator raised and nobody read (a funding rate in
percent, stamps in the future, sizes that are all 0). The CLI prints them with the summary
and puts them in ``--json``'s ``notes``.
"""

from __future__ import annotations

from typing import Any

CROSSED_SHARE = 0.10  # a larger share of crossed rows is a data fault, not market noise
SANITY_MIN = 10  # sanity-guard skips worth a word (and more than the entries taken)


def result_checks(res: Any) -> list[str]:
    """One ``CHECK: ...`` line per finding (see module doc); empty for clean data."""
    notes = [f"CHECK: {n}" for n in res.meta.get("data_notes", [])
             if n not in res.meta.get("notes", []) and not _shown_elsewhere(n)]
    notes += _crossed(res) + _sanity(res)
    return notes


def _shown_elsewhere(note: str) -> bool:
    """Data notes the summary already prints, or that :func:`_crossed` words better."""
    return note.startswith(("bar mode", "no funding series")) or "crossed/locked rows" in note


def _metric(res: Any, name: str) -> float:
    try:
        return float(res.metric(name))
    except KeyError:
        return 0.0


def _crossed(res: Any) -> list[str]:
    crossed = int(res.meta.get("crossed_rows", 0) or 0)
    events = max(1, int(res.meta.get("events", 0) or 0))
    if crossed == 0:
        return []
    if crossed < CROSSED_SHARE * events:  # market noise, said once (not only in meta.json)
        return [f"{crossed:,} quote row(s) ({crossed / events:.2%}) are crossed or locked "
                "(bid_px >= ask_px): kept, and no trade is decided on them "
                "(skipped_crossed_book counts the moments they cost)"]
    share = ("every quote row is" if crossed >= events
             else f"{crossed / events:.0%} of the quote rows are")
    return [f"CHECK: {share} crossed or locked ({crossed:,} rows with bid_px >= ask_px): no "
            "trade is possible on them; are bid and ask swapped, or the venues mixed up, at "
            "the source?"]


def _sanity(res: Any) -> list[str]:
    out = []
    routes = getattr(res, "routes", None)
    rows = routes.to_dicts() if routes is not None and routes.height else []
    if not rows:
        rows = [{"route": "", "skipped_sanity": _metric(res, "skipped_sanity"),
                 "opportunities_taken": _metric(res, "opportunities_taken")}]
    for k, r in enumerate(rows):
        limit = res.config.route_strategy(min(k, len(res.config.routes) - 1)).sanity_max_edge_bps
        n, taken = int(r.get("skipped_sanity") or 0), int(r.get("opportunities_taken") or 0)
        if n >= SANITY_MIN and n > taken:
            where = f"route {r['route']}: " if len(rows) > 1 else ""
            out.append(f"CHECK: {where}{n:,} edges were wider than sanity_max_edge_bps "
                       f"({limit:g}) and skipped as data faults ({taken:,} entries taken): are "
                       "the legs in the same units? (a venue priced x100 or in cents, a "
                       "contract size, an FX series inverted)")
    return out
