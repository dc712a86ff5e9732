"""The soak's short version (scripts/soak.py): half a simulated hour of 10 symbols × 2 venues at
×60 through the emulators and the real ccxt client, with a network drop and a forced
disconnect; ~35-45 s (longer than the suite's 20 s rule: a soak needs enough wall time for a
warm-up and an RSS trend; the full run is ``scripts/soak.py``, docs/validation/soak.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak_script", ROOT / "scripts" / "soak.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.redis
@pytest.mark.slow
def test_short_soak_survives_drops_and_keeps_memory_identity_and_parity(
        tmp_path: Path, redis_url: str) -> None:
    redis = redis_url
    soak = _soak_module()
    # a drop at 10 simulated minutes, Binance's code-1000 disconnect at 20
    checks, m = soak.soak(symbols=10, hours=0.5, speed=60.0, wall_rate=200.0, redis=redis,
                          out=tmp_path, faults=[("drop", 600.0), ("disconnect", 1200.0)])
    failed = [c for c in checks if c[1] == "❌"]
    assert not failed, failed
    assert [f["kind"] for f in m.forced] == ["drop", "disconnect"]
    assert all(f["cut"] >= 2 for f in m.forced)  # one socket per venue, both cut
    assert m.parity and m.rows_stored == m.rows_replayed
    assert m.quotes > 0.8 * m.emulator_sent  # nothing piled up behind the drops
