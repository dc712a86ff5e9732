"""The "Stress" section: the robustness table ``arbkit stress --out DIR`` wrote as
``DIR/stress.json``, in a study report (``arbkit report STUDY --stress DIR``) or on its own
page (``DIR/stress.html``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arbkit.errors import ConfigError
from arbkit.report.markup import bullets, esc, kv, para, section, table

KIND = "arbkit stress"
COLS = (("net_pnl", "net PnL"), ("account_pnl", "account PnL"), ("max_drawdown", "max DD"),
        ("win_rate", "win %"), ("trades", "trades"), ("fees", "fees"),
        ("slippage", "slippage"), ("funding", "funding"), ("identity_gap", "identity gap"))


def load_stress(path: str | Path, flag: str = "--stress") -> dict[str, Any]:
    """``stress.json`` from a folder ``arbkit stress --out`` wrote (or the file itself)."""
    p = Path(path)
    f = p / "stress.json" if p.is_dir() else p
    if not f.is_file():
        raise ConfigError(f"{flag} {path}: no stress.json there; write one with `arbkit stress "
                          f"--preset NAME --out {path}`")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("kind") != KIND \
            or not isinstance(data.get("scenarios"), list):
        raise ConfigError(f"{flag} {f}: not a stress.json `arbkit stress --out` wrote; run it "
                          "again")
    return data


def stress_body(data: dict[str, Any]) -> str:
    """The section's HTML: provenance, the robustness table, what each scenario did."""
    rows, done = [], []
    for s in data["scenarios"]:
        m = s.get("metrics") or {}
        guards = ", ".join(f"{k} {v}" for k, v in (s.get("guards") or {}).items()) or "–"
        if not s["applies"]:
            rows.append([s["scenario"], *(["n/a"] * len(COLS)), "–"])
            continue
        vals = [m.get(k) for k, _ in COLS]
        wr = m.get("win_rate")
        vals[3] = None if wr is None else 100.0 * wr
        rows.append([s["scenario"], *vals, guards])
        done.append(s["scenario"])
    worst = data.get("worst") or {}
    hi = {i for i, s in enumerate(data["scenarios"]) if s["scenario"] == worst.get("scenario")}
    meta = data.get("meta") or {}
    out = [kv([("preset", data.get("name")), ("study / trial",
                                              f"{meta.get('study')} / {meta.get('trial')}"),
               ("data", meta.get("data")), ("config hash", meta.get("config_hash")),
               ("seed", data.get("seed"))]),
           table(["scenario", *(h for _, h in COLS), "guard triggers"], rows, highlight=hi,
                 cls="wide"),
           para(f"Worst: {worst.get('scenario')} (net PnL {worst.get('net_pnl')}). "
                "Figures are the mean over the preset's windows; guard triggers are rows of "
                "the guard log by reason (an entry blocked for one reason is one row until "
                "the reason changes)."),
           bullets([f"{s['scenario']}: {s['detail']}" for s in data["scenarios"]])]
    bad = [s["scenario"] for s in data["scenarios"] if s["applies"]
           and abs((s.get("metrics") or {}).get("identity_gap_rel") or 0.0) > 1e-9]
    if bad:
        out.append(para(f"CHECK: the account identity is off in {', '.join(bad)}", "warn"))
    return "\n".join(out)


def stress_section(data: dict[str, Any]) -> str:
    return section("stress", "Stress", stress_body(data))


def stress_page(data: dict[str, Any]) -> str:
    """A self-contained page holding only the Stress section."""
    from arbkit.report.html import CSS

    title = f"arbkit stress: {data.get('name')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n{stress_section(data)}\n</body>\n</html>\n")
