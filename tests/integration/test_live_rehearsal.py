"""`arbkit live --emulator` end to end, as the README prints it: one local Binance emulator
per venue serves the quotes and takes the orders (private API), the real ccxt client feeds
the session and sends its IOC orders through the execution client, whose journal is on a
Redis with ``appendfsync always``. The session trades, its stored rows are what its recording
replays to; resumed against a venue whose account does not hold what the journal says (a
fresh emulator), reconciliation refuses to trade with one line instead of "fixing" anything;
the key and secret appear in no output, file or Redis value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib

from arbkit.config import load_config
from arbkit.runtime.live import replay_recording
from arbkit.store import open_store
from tests.integration.test_execution import _redis_server

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "rehearsalKEY7f3a9c21d0", "rehearsalSECRET5b8e1d94c7a2"


@pytest.fixture(scope="module")
def aof_redis(tmp_path_factory) -> str:
    proc, url = _redis_server(tmp_path_factory.mktemp("aof"), "always")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def market() -> tuple[Path, Path]:
    """The shipped rehearsal (docs/live.md): always-win on two Binance-protocol spot venues."""
    return (ROOT / "data/samples/rehearsal_binance_ab.parquet",
            ROOT / "studies/live_rehearsal.toml")


def _live(work: Path, data: Path, cfg: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARBKIT_BINANCE_KEY": KEY, "ARBKIT_BINANCE_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "arbkit", "live", "--config", str(cfg), "--emulator", str(data),
         "--speed", "60", "--duration-s", "12", "--session", "reh", "--redis", url,
         "--results", str(work / "r.duckdb"), "--record-dir", str(work / "rec"), "--json",
         *extra], cwd=work, env=env, capture_output=True, text=True, timeout=240)


def test_live_on_the_emulator_trades_replays_and_resumes(market, aof_redis, tmp_path) -> None:
    data, cfg = market
    first = _live(tmp_path, data, cfg, aof_redis)
    assert first.returncode == 0, first.stderr[-3000:]
    out = json.loads(first.stdout)
    assert out["trades"] >= 1, out
    with open_store(path=tmp_path / "r.duckdb") as store:
        fills = store.frame("fills", out["run_id"])
    again = replay_recording(tmp_path / "rec", load_config(cfg))
    assert fills.height >= 2 and again["fills"].shape[0] == fills.height
    np.testing.assert_array_equal(again["fills"]["oid"], fills["oid"].to_numpy())
    np.testing.assert_array_equal(again["fills"]["px"], fills["px"].to_numpy())
    # a second process resumes the same session (new emulators: a fresh venue account, so
    # the journal's orders are unknown there: reconciliation must not "fix" anything)
    second = _live(tmp_path, data, cfg, aof_redis, "--resume")
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    assert second.returncode == 1 and len(lines) == 1, second.stderr[-3000:]
    assert lines[0].startswith("error: reconciliation with binance_"), lines
    assert "a position arbkit does not know" in lines[0] and "nothing was sent" in lines[0]
    # the key and secret nowhere: outputs, the recording, the results store, Redis
    r = redis_lib.Redis.from_url(aof_redis)
    stored = [r.dump(k) or b"" for k in r.scan_iter("*")]
    stored += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    outputs = first.stdout + first.stderr + second.stdout + second.stderr
    for needle in (KEY, SECRET):
        assert needle not in outputs
        assert not any(needle.encode() in b for b in stored), needle
