"""Shared pytest fixtures for the arbkit test suite.

Sections:
  1. Real-server helpers  (CI detection, "server missing" handling)
  2. PostgreSQL fixtures  (pg_url, clean_pg)
  3. Redis fixtures       (redis_url, clean_redis, redis_server_bin)

The real servers are started by ``bash scripts/services.sh`` (``bash scripts/test.sh`` does
that for you) and announced through ARBKIT_TEST_PG_URL / ARBKIT_TEST_REDIS_URL.
Outside CI a missing server skips the test; under CI=true it is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

# ---------------------------------------------------------------------------
# 1. Real-server helpers
# ---------------------------------------------------------------------------

SERVER_TIMEOUT_S = 2
_HOW_TO = "run `bash scripts/test.sh` (or `bash scripts/services.sh` and source .services/env)"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _server_missing(what: str, reason: str) -> NoReturn:
    """Fail under CI, skip otherwise. Never returns."""
    if _in_ci():
        pytest.fail(f"{what} is required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{what} unavailable ({reason}); {_HOW_TO}")


# ---------------------------------------------------------------------------
# 2. PostgreSQL
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the real test PostgreSQL server (checked to answer within 2 s)."""
    url = os.environ.get("ARBKIT_TEST_PG_URL", "")
    if not url:
        _server_missing("PostgreSQL", "ARBKIT_TEST_PG_URL is not set")
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=SERVER_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable server"
        _server_missing("PostgreSQL", f"cannot connect to {url}: {exc}")
    return url


@pytest.fixture
def clean_pg(pg_url: str) -> Iterator[Any]:
    """A psycopg connection whose search_path is a fresh, uniquely named schema.

    The schema is dropped (CASCADE) afterwards. The connection is a normal
    (non-autocommit) one; the search_path survives rollbacks.
    """
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex[:16]}"
    ident = sql.Identifier(schema)
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=SERVER_TIMEOUT_S) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        try:
            conn = psycopg.connect(
                pg_url, connect_timeout=SERVER_TIMEOUT_S, options=f"-c search_path={schema}"
            )
            try:
                yield conn
            finally:
                conn.close()
        finally:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))


# ---------------------------------------------------------------------------
# 3. Redis
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real test Redis server (checked to answer PING within 2 s)."""
    url = os.environ.get("ARBKIT_TEST_REDIS_URL", "")
    if not url:
        _server_missing("Redis", "ARBKIT_TEST_REDIS_URL is not set")
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=SERVER_TIMEOUT_S, socket_timeout=SERVER_TIMEOUT_S
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable server"
        _server_missing("Redis", f"cannot reach {url}: {exc}")
    return _worker_db(url)


def _worker_db(url: str) -> str:
    """Under pytest-xdist (scripts/test.sh runs 2 workers) each worker gets its own Redis
    database (gw0 -> 1, gw1 -> 2, ...), so one worker's ``flushdb`` never touches the other's
    keys."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    n = int(worker[2:]) + 1
    base, _, tail = url.rpartition("/")
    return f"{base}/{n}" if tail.isdigit() and "://" in base else f"{url.rstrip('/')}/{n}"


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[Any]:
    """A redis client (decode_responses=True) on the URL's db, flushed before and after."""
    import redis

    client = redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=SERVER_TIMEOUT_S,
        socket_timeout=SERVER_TIMEOUT_S,
        decode_responses=True,
    )
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def redis_server_bin() -> str:
    """Path of the redis-server binary, for tests that run a throwaway server of their own."""
    path = shutil.which("redis-server")
    if not path:
        _server_missing("redis-server", "the binary is not on PATH (apt-get install redis-server)")
    return path
