"""Contract tests of the results store, run on every backend (DuckDB file, real PostgreSQL).

PostgreSQL tests each get a fresh schema (dropped afterwards) chosen through the URL's
``options=-csearch_path=...``, so they never see each other's runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import arbkit
from arbkit.errors import StorageError
from arbkit.store import Store, mask_url, open_store
from arbkit.store import schema as S

KINDS = ("trades", "fills", "equity", "guards")
SPECIAL = [math.nan, -0.0, 0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
           0.1 + 0.2, -1 / 3, 2.0**-1074 * 3]


# --------------------------------------------------------------------------- fixtures


@dataclass
class Backend:
    name: str
    url: str
    raw: Callable[[str], list[tuple]]  # a statement on the backend's tables, outside the store


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "duckdb":
        path = tmp_path / "results" / "arbkit.duckdb"

        def raw_duck(sql: str) -> list[tuple]:
            import duckdb

            con = duckdb.connect(str(path))
            try:
                cur = con.execute(sql)
                return cur.fetchall() if cur.description else []
            finally:
                con.close()

        yield Backend("duckdb", f"duckdb:///{path}", raw_duck)
        return
    pg_url = request.getfixturevalue("pg_url")
    yield from _pg_backend(pg_url)


def _pg_backend(pg_url: str) -> Iterator[Backend]:
    import psycopg

    schema = f"t_store_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            def raw_pg(sql: str) -> list[tuple]:
                with psycopg.connect(pg_url, options=f"-c search_path={schema}") as conn:
                    cur = conn.execute(sql)
                    return cur.fetchall() if cur.description else []

            sep = "&" if "?" in pg_url else "?"
            yield Backend("postgres", f"{pg_url}{sep}options=-csearch_path%3D{schema}", raw_pg)
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def res() -> Any:
    """A real backtest: trades, fills and equity rows; an empty guard log."""
    from arbkit.data.universe import generate_universe

    df, cfg = generate_universe({"BTC": "normal"}, n_events=20000)
    out = arbkit.backtest(df, cfg)
    assert out.trades.height and out.fills.height and out.equity.height
    return out


@pytest.fixture(scope="module")
def odd_res(res: Any) -> Any:
    """The real run with awkward values in every float column and a non-empty guard log."""
    def spiked(frame: pl.DataFrame) -> pl.DataFrame:
        n = frame.height
        vals = [SPECIAL[i % len(SPECIAL)] for i in range(n)]
        return frame.with_columns(pl.Series(c, vals, dtype=pl.Float64)
                                  for c, t in frame.schema.items() if t == pl.Float64)

    fills = spiked(res.fills).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("Bïnance:BTC/USDT ✓"))
        .otherwise(pl.col("instrument")).alias("instrument"))
    guards = pl.DataFrame({
        "ts": pl.Series([1, 2, 3], dtype=pl.Int64), "code": pl.Series([100, 101, 103], dtype=pl.Int32),
        "route": pl.Series([0, -1, 0], dtype=pl.Int32), "value": [math.nan, -0.0, 1e-300],
        "limit": [math.inf, 2.5, -math.inf], "route_name": ["BTC normal", "portfolio", None],
        "guard": ["daily_loss", "day_reset", 'kill "quoted", comma'],
    })
    assert guards.schema == res.guards.schema
    return dataclasses.replace(res, trades=spiked(res.trades), fills=fills,
                               equity=spiked(res.equity), guards=guards)


# --------------------------------------------------------------------------- helpers


def assert_same_frame(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """Same columns, dtypes and order; floats bit for bit."""
    assert got.schema == want.schema
    assert got.height == want.height
    for name, dtype in want.schema.items():
        a, b = got.get_column(name), want.get_column(name)
        if dtype == pl.Float64:
            assert np.array_equal(a.to_numpy().view(np.uint64), b.to_numpy().view(np.uint64)), name
        else:
            assert a.to_list() == b.to_list(), name


def row_counts(be: Backend) -> dict[str, dict[str, int]]:
    """Rows per run_id of every per-row table, read around the store."""
    return {k: dict(be.raw(f'SELECT run_id, count(*) FROM "{k}" GROUP BY run_id')) for k in KINDS}


def heights(r: Any) -> dict[str, int]:
    return {k: getattr(r, k).height for k in KINDS}


# --------------------------------------------------------------------------- contract


def test_every_frame_round_trips_bit_for_bit(backend: Backend, res: Any, odd_res: Any) -> None:
    with open_store(backend.url) as store:
        ids = [store.save_run(r) for r in (res, odd_res)]
        for r, run_id in zip((res, odd_res), ids):
            for kind in KINDS:
                assert_same_frame(store.frame(kind, run_id), getattr(r, kind))
    assert res.guards.height == 0 and odd_res.guards.height == 3


def test_frames_without_columns_read_back_empty_with_the_schema(backend: Backend,
                                                                res: Any) -> None:
    bare = dataclasses.replace(res, guards=pl.DataFrame(), trades=res.trades.head(0))
    with open_store(backend.url) as store:
        run_id = store.save_run(bare)
        guards = store.frame("guards", run_id)
        assert guards.height == 0 and guards.schema == res.guards.schema
        assert_same_frame(store.frame("trades", run_id), res.trades.head(0))
        assert store.runs().get_column("n_trades").to_list() == [0]


def test_runs_lists_every_run_and_filters_by_study(backend: Backend, res: Any) -> None:
    with open_store(backend.url) as store:
        a1 = store.save_run(res, study="a", trial=0, params={"entry_bps": 1.5, "x": math.nan})
        a2 = store.save_run(res, study="a", trial=1, extra={"note": "second", "arr": (1, 2)})
        b1 = store.save_run(res, study="b")
        lone = store.save_run(res)
        everything, only_a = store.runs(), store.runs("a")
        assert store.runs("nope").height == 0
        assert store.runs("nope").schema == everything.schema
    assert everything.get_column("run_id").to_list() == [a1, a2, b1, lone]  # oldest first
    assert only_a.get_column("run_id").to_list() == [a1, a2]
    assert everything.schema == pl.Schema({c.name: c.dtype for c in S.RUNS.columns})
    first = only_a.row(0, named=True)
    assert first["kind"] == "trial" and first["trial"] == 0
    assert everything.row(2, named=True)["kind"] == "backtest"
    assert first["config_hash"] == res.config.config_hash()
    assert json.loads(first["config_json"]) == json.loads(json.dumps(res.config.to_dict()))
    assert json.loads(first["params_json"]) == {"entry_bps": 1.5, "x": None}
    assert json.loads(only_a.row(1, named=True)["extra_json"]) == {"note": "second",
                                                                    "arr": [1, 2]}
    metrics = json.loads(first["metrics_json"])
    for metric, value in res.summary.iter_rows():
        assert metrics[metric] == (value if math.isfinite(value) else None), metric
    assert first["events"] == res.meta["events"] and first["n_trades"] == res.trades.height
    assert first["code_version"].startswith(arbkit.__version__)
    assert first["data_hash"] is None and first["extra_json"] is None


@pytest.mark.parametrize("failure", ["python", "database"])
def test_a_failed_save_leaves_nothing_behind(backend: Backend, res: Any, failure: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(backend.url) as store:
        kept = store.save_run(res, study="s")
        real = type(store)._insert

        def broken(self: Store, con: Any, kind: str, run_id: str, frame: pl.DataFrame) -> None:
            real(self, con, kind, run_id, frame)  # trades and fills are in when equity fails
            if kind == "equity":
                if failure == "python":
                    raise RuntimeError("disk on fire")
                con.execute("INSERT INTO equity (seq) VALUES ('not a number')")

        monkeypatch.setattr(type(store), "_insert", broken)
        with pytest.raises(RuntimeError if failure == "python" else StorageError):
            store.save_run(res, study="s")
        monkeypatch.undo()
        assert store.runs().get_column("run_id").to_list() == [kept]
        after = store.save_run(res, study="s")  # the store still works
    counts = row_counts(backend)
    for kind, n in heights(res).items():
        assert counts[kind] == ({kept: n, after: n} if n else {}), kind


def test_frames_that_do_not_match_the_schema_are_refused(backend: Backend, res: Any) -> None:
    bad = dataclasses.replace(res, fills=res.fills.with_columns(pl.lit(1.0).alias("surprise")))
    with open_store(backend.url) as store:
        with pytest.raises(StorageError, match="surprise"):
            store.save_run(bad)
        with pytest.raises(StorageError, match="unknown frame kind"):
            store.frame("orders", "x")
        with pytest.raises(StorageError, match="no run"):
            store.frame("trades", "no-such-run")
        assert store.runs().height == 0


def test_delete_study_removes_its_runs_and_their_rows(backend: Backend, res: Any) -> None:
    with open_store(backend.url) as store:
        gone = [store.save_run(res, study="gone") for _ in range(2)]
        kept = store.save_run(res, study="kept")
        assert store.delete_study("gone") == 2
        assert store.delete_study("gone") == 0
        assert store.runs().get_column("run_id").to_list() == [kept]
        assert_same_frame(store.frame("fills", kept), res.fills)
        with pytest.raises(StorageError, match="no run"):
            store.frame("fills", gone[0])
    for kind, counts in row_counts(backend).items():
        assert set(counts) == ({kept} if getattr(res, kind).height else set()), kind


def test_schema_version_is_recorded_once(backend: Backend) -> None:
    for _ in range(2):
        open_store(backend.url).close()
    rows = backend.raw("SELECT fingerprint, version FROM schema_version")
    assert rows == [(S.fingerprint(), S.SCHEMA_VERSION)]


def test_a_column_missing_from_an_older_database_is_added(backend: Backend, res: Any) -> None:
    with open_store(backend.url) as store:
        old = store.save_run(res)
    backend.raw('ALTER TABLE equity DROP COLUMN n_open')  # as if written before n_open existed
    with open_store(backend.url) as store:
        assert store.frame("equity", old).get_column("n_open").null_count() == res.equity.height
        assert_same_frame(store.frame("equity", store.save_run(res)), res.equity)


def _save_many(url: str, res: Any, n: int, start: Any) -> None:
    start.wait(timeout=60)  # every worker opens the fresh store at once: a schema race too
    with open_store(url) as store:
        for i in range(n):
            store.save_run(res, study="race", trial=i)


def test_concurrent_writers_lose_nothing(backend: Backend, res: Any) -> None:
    workers, saves = 4, 5
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=_save_many, args=(backend.url, res, saves, start))
             for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * workers
    with open_store(backend.url) as store:
        runs = store.runs("race")
        assert runs.height == workers * saves
        assert runs.get_column("run_id").n_unique() == workers * saves
        assert_same_frame(store.frame("fills", runs.get_column("run_id")[-1]), res.fills)
    ids = set(runs.get_column("run_id"))
    for kind, counts in row_counts(backend).items():
        n = getattr(res, kind).height
        assert counts == ({i: n for i in ids} if n else {}), kind


# --------------------------------------------------------------------------- opening


def test_backend_is_chosen_from_url_env_or_path(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARBKIT_STORAGE", raising=False)
    with open_store() as store:
        assert store.path == Path("results/arbkit.duckdb")
    with open_store("duckdb:///rel/a.duckdb") as store:
        assert store.path == Path("rel/a.duckdb")
    with open_store(f"duckdb:///{tmp_path}/abs.duckdb") as store:
        assert store.path == tmp_path / "abs.duckdb"
    monkeypatch.setenv("ARBKIT_STORAGE", "env/b.duckdb")
    with open_store() as store:
        assert store.path == Path("env/b.duckdb")
    for f in ("results/arbkit.duckdb", "rel/a.duckdb", "abs.duckdb", "env/b.duckdb"):
        assert (tmp_path / f).is_file() and (tmp_path / (f + ".lock")).is_file()
    with pytest.raises(StorageError, match="not understood"):
        open_store("sqlite:///x.db")
    with pytest.raises(StorageError, match="in-memory"):
        open_store("duckdb:///:memory:")


def test_the_postgres_password_is_masked() -> None:
    assert mask_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "s3cret" not in mask_url("postgres://h/db?user=u&password=s3cret")
    assert mask_url("postgresql://u@h/db") == "postgresql://u@h/db"
    with pytest.raises(StorageError) as err:  # nothing listens on port 1
        open_store("postgresql://u:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret" not in str(err.value) and "u:***@" in str(err.value)


@pytest.mark.postgres
def test_postgres_store_keeps_no_password(pg_url: str, res: Any) -> None:
    from urllib.parse import urlsplit

    password = urlsplit(pg_url).password
    for be in _pg_backend(pg_url):
        with open_store(be.url) as store:
            store.save_run(res, study="p")
            text = repr(store) + store.url + str(store.runs().rows())
        assert pg_url not in text
        if password:
            assert f":{password}@" not in text and ":***@" in store.url


def test_a_sessions_rows_are_appended_as_it_goes_and_a_rewrite_is_idempotent(
        backend: Backend, res: Any) -> None:
    """Paper/live sessions write their rows at each checkpoint (``append_rows``); a session
    that resumes from an older snapshot writes some rows again: one copy stays."""
    with open_store(url=backend.url) as store:
        run_id = store.open_session_run(res.config, kind="paper", study="session-x")
        assert store.rows_written(run_id) == {k: 0 for k in KINDS}
        fills = res.fills
        half = fills.height // 2
        store.append_rows(run_id, {"fills": (0, fills[:half])}, metrics={"trades": 1.0},
                          events=10, n_trades=1)
        assert store.rows_written(run_id)["fills"] == half
        # resumed from a snapshot taken before the last rows: they come again, then the rest
        store.append_rows(run_id, {"fills": (half - 1, fills[half - 1:])}, events=20,
                          n_trades=2)
        back = store.frame("fills", run_id)
        assert back.height == fills.height and back.equals(fills.select(back.columns))
        row = store.runs("session-x").row(0, named=True)
        assert row["kind"] == "paper" and row["events"] == 20 and row["n_trades"] == 2
