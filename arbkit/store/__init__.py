"""Results store: one schema (``schema.py``) on DuckDB (embedded default) and PostgreSQL.

>>> from arbkit.store import open_store
>>> with open_store() as store:  # results/arbkit.duckdb  # doctest: +SKIP
...     run_id = store.save_run(res, study="demo")
...     store.runs("demo")

See docs/storage.md for the tables, how the backend is chosen, and the concurrency rules.
A paper/live session keeps its journal, snapshots and controls in Redis instead:
``SessionStore(url, session)`` (``arbkit/store/redis.py``, imported on first use).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from arbkit.errors import StorageError
from arbkit.store.base import Store

if TYPE_CHECKING:
    from arbkit.store.redis import SessionStore

__all__ = ["ENV_VAR", "SessionStore", "Store", "mask_url", "open_store"]

ENV_VAR = "ARBKIT_STORAGE"
DEFAULT_PATH = "results/arbkit.duckdb"
_PG_SCHEMES = ("postgresql://", "postgres://")
_DUCK_SCHEME = "duckdb:///"


def open_store(url: str | None = None, path: str | Path = DEFAULT_PATH) -> Store:
    """Open (creating tables as needed) the results store.

    Parameters
    ----------
    url : ``postgresql://user:pw@host:port/db`` (or ``postgres://``) for PostgreSQL;
        ``duckdb:///relative/path.duckdb`` or ``duckdb:////absolute/path.duckdb`` (the
        SQLAlchemy / Optuna convention) for a DuckDB file. ``None``: the ``ARBKIT_STORAGE``
        environment variable if set, else the DuckDB file ``path``.
    path : the DuckDB file used when neither ``url`` nor ``ARBKIT_STORAGE`` is given.

    Examples
    --------
    >>> store = open_store("duckdb:///results/arbkit.duckdb")  # doctest: +SKIP
    >>> store = open_store("postgresql://arbkit@127.0.0.1:5432/arbkit")  # doctest: +SKIP
    """
    url = url or os.environ.get(ENV_VAR) or None
    if url is None:
        return _duck(path)
    if url.startswith(_PG_SCHEMES):
        from arbkit.store.pg import PgStore

        return PgStore(url)
    if url.startswith(_DUCK_SCHEME):
        rest = url[len(_DUCK_SCHEME):]
        if not rest or rest == ":memory:":
            raise StorageError(f"storage URL {url!r} names no file; an in-memory DuckDB would "
                               "lose every run (use duckdb:///results/arbkit.duckdb)")
        return _duck(rest)
    if "://" not in url and url.endswith(".duckdb"):
        return _duck(url)
    raise StorageError(f"storage URL {mask_url(url)!r} is not understood; use "
                       "postgresql://user@host:port/db or duckdb:///path/to/file.duckdb")


def _duck(path: str | Path) -> Store:
    from arbkit.store.duck import DuckStore

    return DuckStore(Path(path))


def mask_url(url: str) -> str:
    """The URL with its password (in the authority or a ``password=`` parameter) as ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        auth, host = netloc.rsplit("@", 1)
        if ":" in auth:
            auth = auth.split(":", 1)[0] + ":***"
        netloc = f"{auth}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                          safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def __getattr__(name: str) -> Any:
    if name == "SessionStore":  # redis-py is imported only by the sessions that use it
        from arbkit.store.redis import SessionStore

        return SessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
