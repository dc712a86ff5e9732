"""Smoke tests against the real PostgreSQL and Redis servers (scripts/services.sh)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_pg_server_is_loopback_and_authenticated(pg_url: str) -> None:
    with psycopg.connect(pg_url, connect_timeout=2) as conn:
        user, addr, db = conn.execute(
            "SELECT current_user, host(inet_server_addr()), current_database()"
        ).fetchone()
        assert conn.info.server_version >= 120000
        assert user == conn.info.user
        assert db == conn.info.dbname
    assert addr == "127.0.0.1"


@pytest.mark.postgres
def test_pg_write_read_table(clean_pg: psycopg.Connection, pg_url: str) -> None:
    conn = clean_pg
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    assert schema.startswith("t_")

    conn.execute(
        """
        CREATE TABLE quotes (
            ts      timestamptz NOT NULL,
            venue   text        NOT NULL,
            symbol  text        NOT NULL,
            bid     numeric(20, 8) NOT NULL,
            ask     numeric(20, 8) NOT NULL,
            PRIMARY KEY (ts, venue, symbol)
        )
        """
    )
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (t0, "binance", "BTC/USDT", Decimal("42000.10"), Decimal("42000.20")),
        (t0, "kraken", "BTC/USDT", Decimal("42001.00"), Decimal("42001.50")),
        (t0, "okx", "ETH/USDT", Decimal("2300.01"), Decimal("2300.02")),
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quotes (ts, venue, symbol, bid, ask) VALUES (%s, %s, %s, %s, %s)", rows
        )
    conn.commit()

    # Read back through a second connection to prove the data was really committed.
    with psycopg.connect(pg_url, connect_timeout=2, options=f"-c search_path={schema}") as other:
        got = other.execute(
            "SELECT ts, venue, symbol, bid, ask FROM quotes ORDER BY venue"
        ).fetchall()
    assert got == rows

    spread = conn.execute(
        "SELECT max(bid) - min(ask) FROM quotes WHERE symbol = %s", ("BTC/USDT",)
    ).fetchone()[0]
    assert spread == Decimal("42001.00") - Decimal("42000.20")

    # A failed statement rolls back cleanly and the table is still usable.
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO quotes VALUES (%s, %s, %s, 1, 2)", rows[0][:3])
    conn.rollback()
    assert conn.execute("SELECT count(*) FROM quotes").fetchone()[0] == 3


@pytest.mark.postgres
def test_pg_clean_schema_is_isolated(clean_pg: psycopg.Connection, pg_url: str) -> None:
    schema = clean_pg.execute("SELECT current_schema()").fetchone()[0]
    clean_pg.execute("CREATE TABLE t (x int)")
    clean_pg.execute("INSERT INTO t VALUES (1), (2)")
    clean_pg.commit()
    with psycopg.connect(pg_url, connect_timeout=2) as other:
        n = other.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()[0]
        assert n == 1
        # Default search_path of a plain connection does not see the test schema.
        assert other.execute("SELECT to_regclass('t')").fetchone()[0] is None


# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_set_get(clean_redis) -> None:
    r = clean_redis
    assert r.dbsize() == 0
    assert r.set("arbkit:quote:binance:BTC/USDT", "42000.1") is True
    assert r.get("arbkit:quote:binance:BTC/USDT") == "42000.1"
    assert r.get("arbkit:missing") is None
    assert r.set("arbkit:once", "1", nx=True) is True
    assert r.set("arbkit:once", "2", nx=True) is None
    assert r.get("arbkit:once") == "1"


@pytest.mark.redis
def test_redis_expire(clean_redis) -> None:
    r = clean_redis
    r.set("arbkit:ttl", "v", px=200)
    assert 0 < r.pttl("arbkit:ttl") <= 200
    r.set("arbkit:persist", "v")
    assert r.ttl("arbkit:persist") == -1
    assert r.expire("arbkit:persist", 60) is True
    assert 0 < r.ttl("arbkit:persist") <= 60

    deadline = time.monotonic() + 3.0
    while r.exists("arbkit:ttl") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.get("arbkit:ttl") is None
    assert r.get("arbkit:persist") == "v"


@pytest.mark.redis
def test_redis_pipeline(clean_redis) -> None:
    r = clean_redis
    with r.pipeline(transaction=True) as pipe:
        pipe.incr("arbkit:fills")
        pipe.incrby("arbkit:fills", 4)
        pipe.hset("arbkit:book:BTC/USDT", mapping={"bid": "42000.1", "ask": "42000.2"})
        pipe.rpush("arbkit:events", "a", "b", "c")
        pipe.expire("arbkit:events", 30)
        results = pipe.execute()
    assert results == [1, 5, 2, 3, True]
    assert r.get("arbkit:fills") == "5"
    assert r.hgetall("arbkit:book:BTC/USDT") == {"bid": "42000.1", "ask": "42000.2"}
    assert r.lrange("arbkit:events", 0, -1) == ["a", "b", "c"]

    # Non-transactional pipeline: many round-trips batched into one.
    with r.pipeline(transaction=False) as pipe:
        for i in range(100):
            pipe.set(f"arbkit:k:{i}", i)
        pipe.execute()
    assert r.mget([f"arbkit:k:{i}" for i in (0, 50, 99)]) == ["0", "50", "99"]


# ---------------------------------------------------------------------------
# scripts/services.sh and scripts/test.sh: stop what a run started, nothing else
# ---------------------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _services(root, *args: str, env: dict | None = None):
    import os
    import subprocess

    return subprocess.run(["bash", str(root / "scripts" / "services.sh"), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_a_start_that_reuses_running_servers_records_none(tmp_path, pg_url: str,
                                                          redis_url: str) -> None:
    """The suite's servers are up: a start reuses them, records nothing, so test.sh's end
    stops nothing (a developer's servers keep running)."""
    started = tmp_path / "started"
    r = _services(ROOT, "start", "--started-file", str(started))
    assert r.returncode == 0, r.stderr
    assert started.read_text() == "" and "reused" in r.stderr
    assert _services(ROOT, "status").returncode == 0


def test_a_start_records_the_servers_it_started_and_stop_stops_only_those(tmp_path) -> None:
    """A pair of servers of its own (other ports, a copy of the script in a scratch checkout):
    both recorded as started; `stop redis` leaves PostgreSQL up; `stop postgres` ends it."""
    import shutil

    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "services.sh", tmp_path / "scripts" / "services.sh")
    env = {"ARBKIT_SERVICES_PG_PORT": str(_free_port()),
           "ARBKIT_SERVICES_REDIS_PORT": str(_free_port())}
    started = tmp_path / "started"
    try:
        r = _services(tmp_path, "start", "--started-file", str(started), env=env)
        assert r.returncode == 0, r.stderr
        assert started.read_text().split() == ["postgres", "redis"]
        again = tmp_path / "again"
        assert _services(tmp_path, "start", "--started-file", str(again), env=env).returncode == 0
        assert again.read_text() == ""  # reused
        assert _services(tmp_path, "stop", "redis", env=env).returncode == 0
        st = _services(tmp_path, "status", env=env).stdout
        assert "postgres: up" in st and "redis: down" in st
        assert _services(tmp_path, "stop", "postgres", env=env).returncode == 0
        st = _services(tmp_path, "status", env=env).stdout
        assert "postgres: down" in st and "redis: down" in st
        bad = _services(tmp_path, "stop", "mysql", env=env)
        assert bad.returncode == 1 and "unknown server 'mysql'" in bad.stderr
    finally:
        _services(tmp_path, "stop", env=env)
        pg = (tmp_path / ".services" / "pg").resolve()
        if pg != tmp_path / ".services" / "pg":  # the cluster moved to /var/tmp (see script)
            shutil.rmtree(pg.parent, ignore_errors=True)


def test_test_sh_stops_only_what_its_services_step_started() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert 'bash scripts/services.sh start --started-file "$reports/started"' in text
    assert "trap stop_started EXIT" in text
    assert 'bash scripts/services.sh stop $names' in text
    assert text.index("trap stop_started EXIT") < text.index("services.sh start")
