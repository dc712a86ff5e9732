"""Paper sessions (``arbkit paper``) against real Redis and the results store: the recording
replays to the session's fills bit for bit, and a session killed with -9 at seeded random
points (inside a batch, and inside a checkpoint between the results store and the snapshot)
and resumed each time ends with exactly the rows of the session that never died."""

from __future__ import annotations

import json
import os
import random
import subprocess
import uuid
from pathlib import Path

import polars as pl
import pytest

from arbkit.config import load_config
from arbkit.data.synth import write_scenario
from arbkit.engine.backtest import prepare, run_prepared
from arbkit.store import open_store

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
TAG = uuid.uuid4().hex[:10]  # session names of this test run only


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("paper-data")
    write_scenario("always-win", out, n_events=80_000)
    return out / "quotes.parquet", out / "config.toml"


_SERVER: list = []


def paper(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """``arbkit paper ARGS`` in a child process forked from a clean fork server that has
    arbkit and its compiled kernel loaded already (tests/integration/paper_child.py): the 20
    kill -9 / resume cycles cost their work, not 20 interpreter starts."""
    import multiprocessing as mp
    import tempfile

    if not _SERVER:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["tests.integration.paper_child"])
        _SERVER.append(ctx)
    ctx = _SERVER[0]
    from tests.integration import paper_child

    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        proc = ctx.Process(target=paper_child.main, args=(["paper", *args], env or {}, out, err))
        proc.start()
        proc.join(180)
        if proc.exitcode is None:
            proc.kill()
            proc.join()
            raise AssertionError(f"arbkit paper {args} did not end in 180 s")
        return subprocess.CompletedProcess(args, proc.exitcode, Path(out).read_text(),
                                           Path(err).read_text())


def base_args(data: Path, cfg: Path, name: str, tmp: Path, redis_url: str) -> list[str]:
    return ["--config", str(cfg), "--replay", str(data), "--speed", "1000000",
            "--session", f"{name}-{TAG}", "--redis", redis_url, "--results", str(tmp / "results.duckdb"),
            "--record-dir", str(tmp / "rec" / name), "--checkpoint-s", "0.02", "--no-view",
            "--json"]


def frames(tmp: Path, run_id: str) -> dict[str, pl.DataFrame]:
    with open_store(path=tmp / "results.duckdb") as store:
        return {k: store.frame(k, run_id) for k in ("trades", "fills", "equity", "guards")}


def test_a_session_replays_from_its_recording_to_the_same_fills(scenario, tmp_path,
                                                               redis_url) -> None:
    data, cfg = scenario
    p = paper(base_args(data, cfg, "parity", tmp_path, redis_url))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["trades"] >= 10 and out["events"] == 80_000
    got = frames(tmp_path, out["run_id"])
    res = run_prepared(load_config(cfg), prepare(tmp_path / "rec" / "parity", load_config(cfg)))
    assert res.meta["data_notes"][0].startswith("replay of paper session parity-")
    for kind in ("trades", "fills", "equity"):
        mine = getattr(res, kind)
        assert mine.select(got[kind].columns).equals(got[kind]), kind
    assert res.metric("identity_gap_rel") <= 1e-9


def test_kill_9_at_seeded_random_points_then_resume_ends_as_the_run_that_never_died(
        scenario, tmp_path, redis_url) -> None:
    data, cfg = scenario
    ok = paper(base_args(data, cfg, "whole", tmp_path, redis_url))
    assert ok.returncode == 0, ok.stderr
    want = frames(tmp_path, json.loads(ok.stdout)["run_id"])
    rng = random.Random(11)
    args = base_args(data, cfg, "crashy", tmp_path, redis_url)
    from arbkit.store.redis import SessionStore

    store = SessionStore(redis_url, args[args.index("--session") + 1])
    died = 0
    for k in range(KILLS):
        # in turn: die once journal entry N is written (N a seeded distance ahead of where the
        # session is), or just before it is written, or inside the first checkpoint between
        # the results store and the snapshot
        if k % 3 == 0:  # journaled, not yet in a checkpoint
            env = {"ARBKIT_FAULT_KILL_AT_SEQ": str(store.last_seq() + rng.randint(1, 800))}
        elif k % 3 == 1:  # in the kernel, not yet journaled (lost: the source resends it)
            env = {"ARBKIT_FAULT_KILL_AT_SEQ": str(store.last_seq() + rng.randint(1, 800)),
                   "ARBKIT_FAULT_KILL_BEFORE_JOURNAL": "1"}
        else:
            env = {"ARBKIT_FAULT_KILL_IN_CHECKPOINT": "0"}
        p = paper(args + (["--resume"] if k else []), env)
        if p.returncode == 0:  # the data ran out before this kill point
            break
        assert p.returncode == -9, p.stderr
        died += 1
    assert died == KILLS, died
    last = paper(args + ["--resume"])
    assert last.returncode == 0, last.stderr
    out = json.loads(last.stdout)
    got = frames(tmp_path, out["run_id"])
    for kind in ("trades", "fills", "equity", "guards"):
        assert got[kind].equals(want[kind]), kind
    assert got["fills"]["oid"].is_unique().all()  # no order twice
    assert out["resumed_from_seq"] is not None
