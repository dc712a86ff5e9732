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
