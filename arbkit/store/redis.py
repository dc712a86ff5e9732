"""Redis session store: what a paper or live session needs to survive a kill -9.

One session owns every key under ``arbkit:session:<name>:`` (docs/storage.md lists them):

============  ======  ==========================================================
key           type    holds
============  ======  ==========================================================
``meta``      string  session metadata (JSON): config hash, preset, mode, started_at
``snapshot``  hash    the latest kernel snapshot: ``blob`` and the journal ``seq`` it follows
``journal``   stream  one entry per ``seq``, stream id ``<seq>-1``, payload in field ``p``
``controls``  list    operator controls (JSON), FIFO
``audit``     list    who did what when (JSON), the newest ``AUDIT_MAX`` kept
``heartbeat`` string  the last status (JSON), expiring after the heartbeat's ttl
``orders``    hash    live orders by ``client_order_id`` (JSON)
============  ======  ==========================================================

Contract (tests/integration/test_session_store.py runs it against a real server):

- The journal is ordered by ``seq`` and only moves forward: an entry whose ``seq`` is at or
  below the highest one ever journaled (even if trimmed since) is taken as already journaled
  and ignored, so a replay that appends again is harmless. The first payload of a seq wins.
- ``durable=True``: ``append``, ``append_many``, ``save_snapshot``, ``set_meta`` and
  ``orders_put`` return only once the write is in the server's fsynced append-only file
  (``WAITAOF 1 0`` on Redis >= 7.2; before that the server must run ``appendonly yes`` and
  ``appendfsync always``, checked when the store opens: a ``ConfigError`` otherwise).
- ``pop_controls`` takes every pending control in one transaction: two poppers never both
  get one control, and each gets its controls in the order they were pushed.
- ``clean`` touches only this session's keys (SCAN + UNLINK; never KEYS, never FLUSHDB),
  writes its backup completely before deleting anything, and refuses a session whose
  heartbeat is alive unless forced.
- Secrets are never stored: values under secret-looking keys (password, secret, token,
  api_key, signature, ...) are replaced by ``***`` and URL passwords masked before any JSON
  is written; URLs in messages are masked. Every redis-py error becomes one
  ``StorageError`` line naming the (masked) URL and the fix.
- A server that stops answering (restarted, loading its AOF, a cut connection): with
  ``outage_s > 0`` every session call (not ``clean``, ``sessions`` or opening the store) tries
  again with backoff (50 ms doubling to 1 s) until the server answers or ``outage_s`` have
  passed since the outage began (one clock per server and process, shared with
  ``venues.journal``), then raises its ``StorageError``. Each call is safe to run twice:
  journal appends are ignored at or below the top seq, the other writes replace a value; only
  ``audit`` and ``push_control`` may be doubled (and ``pop_controls`` lose what it took) when a
  reply is lost. ``outage_s = 0`` (the default: ``status``, ``ctl``, ``clean``) fails at once; a
  running session (``runtime.node``) uses ``ARBKIT_REDIS_OUTAGE_S`` (default 30 s).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from arbkit.atomic import discard, publish, staged
from arbkit.errors import ConfigError, StorageError
from arbkit.store import mask_url
from arbkit.store.base import to_json

__all__ = ["AUDIT_MAX", "OUTAGE_ENV", "OUTAGE_S", "PAGE", "PREFIX", "Outage", "SessionStore",
           "outage", "outage_bound_s"]
_T = TypeVar("_T")

PREFIX = "arbkit:session:"
KEYS = ("meta", "snapshot", "journal", "controls", "audit", "heartbeat", "orders")
AUDIT_MAX = 10_000  # audit entries kept per session (the oldest go first)
PAGE = 1_000  # journal entries per XRANGE; commands per pipeline in append_many / clean
WAITAOF_TIMEOUT_MS = 5_000
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SECRET_RE = re.compile(r"secret|passw|passphrase|api_?key|apikey|token|signature|private_?key",
                        re.IGNORECASE)
BATCH_BYTES = 8 << 20  # payload bytes per append_many script call
# ARGV: seq, payload, seq, payload, ... An XADD at or below the stream's top (its last id
# ever, trimmed or not) fails with "equal or smaller": that entry was journaled already.
_APPEND_LUA = """
local n = 0
for i = 1, #ARGV, 2 do
  local r = redis.pcall('XADD', KEYS[1], ARGV[i] .. '-1', 'p', ARGV[i + 1])
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'equal or smaller', 1, true) then return r end
  else
    n = n + 1
  end
end
return n
"""
# ARGV: first id, count -> id, payload, id, payload, ... (no per-entry field dicts to build)
_READ_LUA = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out = {}
for i, e in ipairs(rows) do
  out[2 * i - 1] = e[1]
  out[2 * i] = e[2][2]
end
return out
"""
OUTAGE_S = 30.0  # how long a running session waits for a Redis that stopped answering
OUTAGE_ENV = "ARBKIT_REDIS_OUTAGE_S"
MIN_OUTAGE_S = 0.1  # shorter: a stale connection redialled, not counted as an outage
RETRYABLE = (redis.ConnectionError, redis.TimeoutError)  # incl. BusyLoadingError (-LOADING)
_FIX = ("is it running? start it (redis-server; `bash scripts/services.sh` for arbkit's test "
        "server) or fix the URL")


class SessionStore:
    """The Redis keys of one paper/live session: meta, snapshot, journal, controls, audit,
    heartbeat and orders.

    Parameters
    ----------
    url : ``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) or ``unix:///path``.
    session : the session's name (letters, digits, ``_ . -``; at most 100 characters).
    durable : make every journal append, snapshot, meta and order write durable (fsynced on
        the server) before returning; see the module docstring.
    timeout_s : socket timeout of every call (a snapshot of a few MB takes milliseconds).

    Examples
    --------
    >>> store = SessionStore("redis://127.0.0.1:6379/0", "paper-best")  # doctest: +SKIP
    >>> store.append_many([(0, b"event 0"), (1, b"event 1")])            # doctest: +SKIP
    >>> store.save_snapshot(b"kernel state", seq=1); store.trim(1)       # doctest: +SKIP
    >>> list(store.journal(after=1)), store.last_seq()                   # doctest: +SKIP
    ([], 1)
    """

    def __init__(self, url: str, session: str, *, durable: bool = False,
                 timeout_s: float = 10.0) -> None:
        if not isinstance(session, str) or not _SESSION_RE.fullmatch(session):
            raise ConfigError(f"session name {session!r} is not allowed; use 1-100 letters, "
                              "digits, '_', '.' or '-' (starting with a letter or digit)")
        self.url = mask_url(url)  # safe to print
        self.session = session
        self.durable = durable
        self.prefix = f"{PREFIX}{session}:"
        self.last_backup: Path | None = None  # the file the last clean(backup_dir) wrote
        self._password = _password(url)
        self._r = _client(url, self.url, timeout_s)
        self.outage_s = 0.0  # > 0: ride through an outage this long (module doc)
        self.outage = outage(_address(url))
        self.server_version = self._version()
        if self.server_version < (6, 2):  # XTRIM MINID, exclusive XRANGE
            raise StorageError(f"Redis at {self.url} is version "
                               f"{'.'.join(map(str, self.server_version))}; the session store "
                               "needs Redis >= 6.2 (7.2+ for WAITAOF)")
        self._waitaof = False
        if durable:
            self._waitaof = self._check_durability()

    # ------------------------------------------------------------------ meta, snapshot

    def meta(self) -> dict | None:
        """The session's metadata, or None when the session does not exist."""
        raw = self._retry("read the session meta", lambda: self._r.get(self._k("meta")))
        return None if raw is None else self._json(raw, "meta")

    def set_meta(self, meta: dict) -> None:
        """Replace the session's metadata (JSON; secret-looking values are masked)."""
        cmds = [("SET", self._k("meta"), _dumps(meta))]
        self._retry("write the session meta", lambda: self._write(cmds))

    def save_snapshot(self, blob: bytes, seq: int) -> None:
        """Replace the kernel snapshot with ``blob``, taken after journal entry ``seq``.

        Blob and seq are one hash written by one command: a reader never sees a mix.
        """
        seq = _seq(seq, allow_minus_one=True)
        cmds = [("HSET", self._k("snapshot"), "blob", _bytes(blob, "snapshot"), "seq", seq)]
        self._retry("save the snapshot", lambda: self._write(cmds))

    def load_snapshot(self) -> tuple[bytes, int] | None:
        """The latest ``(blob, seq)``, or None when no snapshot was saved."""
        got = self._retry("load the snapshot", lambda: self._r.hgetall(self._k("snapshot")))
        if not got:
            return None
        return got[b"blob"], int(got[b"seq"])

    # ------------------------------------------------------------------ journal

    def append(self, seq: int, payload: bytes) -> bool:
        """Journal entry ``seq``; False when it was already journaled (ignored)."""
        return self.append_many([(seq, payload)]) == 1

    def append_many(self, items: list[tuple[int, bytes]]) -> int:
        """Journal several entries, in order; returns how many were new.

        One server-side script per ``PAGE`` entries (at most ``BATCH_BYTES`` of payload), ~3x
        faster than a pipeline of XADDs; each batch runs atomically (no reader sees half of it)
        and lands in the append-only file as one transaction.
        """
        added = 0
        for batch in _batches(items):  # each batch retried whole: a seq journaled twice is
            cmds = [("EVAL", _APPEND_LUA, 1, self._k("journal"), *batch)]  # ignored
            added += int(self._retry("append to the journal", lambda c=cmds: self._write(c))[0])
        return added

    def journal(self, after: int, *, page: int = PAGE) -> Iterator[tuple[int, bytes]]:
        """Entries with ``seq > after`` in seq order, read ``page`` at a time."""
        start = _seq(after, allow_minus_one=True) + 1
        if not (isinstance(page, int) and page >= 1):
            raise StorageError(f"journal page must be an integer >= 1, got {page!r}")
        while True:
            flat = self._retry("read the journal", lambda s=start: self._r.eval(
                _READ_LUA, 1, self._k("journal"), f"{s}-0", page))
            for i in range(0, len(flat), 2):
                yield _id_seq(flat[i]), flat[i + 1]
            if len(flat) < 2 * page:
                return
            start = _id_seq(flat[-2]) + 1

    def trim(self, upto: int) -> int:
        """Drop journal entries with ``seq <= upto``; returns how many went.

        ``last_seq`` is unchanged: the journal still refuses the trimmed seqs.
        """
        minid = f"{_seq(upto) + 1}-0"
        return int(self._retry("trim the journal", lambda: self._r.xtrim(
            self._k("journal"), minid=minid, approximate=False)))

    def last_seq(self) -> int:
        """The highest seq ever journaled (trimmed or not); -1 if none."""
        def info() -> Any:
            try:
                return self._r.xinfo_stream(self._k("journal"))
            except redis.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return None
                raise

        got = self._retry("read the journal's last seq", info)
        return -1 if got is None else _id_seq(got["last-generated-id"])

    # ------------------------------------------------------------------ controls, audit

    def push_control(self, control: dict) -> None:
        """Queue an operator control (symbol on/off, stop, kill, preset switch)."""
        text = _dumps(control)
        self._retry("queue a control", lambda: self._r.rpush(self._k("controls"), text))

    def pop_controls(self) -> list[dict]:
        """Take every pending control, oldest first, in one transaction."""
        def take() -> list[Any]:
            pipe = self._r.pipeline(transaction=True)
            pipe.lrange(self._k("controls"), 0, -1)
            pipe.delete(self._k("controls"))
            return pipe.execute()

        raw, _ = self._retry("take the pending controls", take)
        return [self._json(c, "controls") for c in raw]

    def audit(self, entry: dict) -> None:
        """Record who did what; ``ts`` (UTC, ISO 8601) is added when the entry has none."""
        entry = dict(entry)
        entry.setdefault("ts", datetime.now(UTC).isoformat())
        text = _dumps(entry)

        def write() -> None:
            pipe = self._r.pipeline(transaction=True)
            pipe.rpush(self._k("audit"), text)
            pipe.ltrim(self._k("audit"), -AUDIT_MAX, -1)
            pipe.execute()

        self._retry("write the audit log", write)

    def audit_log(self, n: int = 100) -> list[dict]:
        """The last ``n`` audit entries, oldest first."""
        if n <= 0:
            return []
        raw = self._retry("read the audit log", lambda: self._r.lrange(self._k("audit"), -n, -1))
        return [self._json(a, "audit") for a in raw]

    # ------------------------------------------------------------------ liveness, orders

    def heartbeat(self, status: dict, ttl_s: float) -> None:
        """Say the session is alive, with its status, for the next ``ttl_s`` seconds."""
        if not (ttl_s > 0 and math.isfinite(ttl_s)):
            raise ConfigError(f"heartbeat ttl_s must be > 0 seconds, got {ttl_s!r}")
        text, px = _dumps(status), max(1, round(ttl_s * 1000))
        self._retry("write the heartbeat", lambda: self._r.set(self._k("heartbeat"), text, px=px))

    def status(self) -> dict | None:
        """The last heartbeat's status while it is alive, else None."""
        raw = self._retry("read the heartbeat", lambda: self._r.get(self._k("heartbeat")))
        return None if raw is None else self._json(raw, "heartbeat")

    def orders_put(self, client_order_id: str, record: dict) -> None:
        """Insert or replace the record of one order (durable when the store is)."""
        cmds = [("HSET", self._k("orders"), str(client_order_id), _dumps(record))]
        self._retry("write an order", lambda: self._write(cmds))

    def orders(self) -> dict[str, dict]:
        """Every order record, by client order id."""
        raw = self._retry("read the orders", lambda: self._r.hgetall(self._k("orders")))
        return {k.decode(): self._json(v, "orders") for k, v in raw.items()}

    # ------------------------------------------------------------------ clean, sessions

    def clean(self, backup_dir: Path | None = None, *, force: bool = False) -> int:
        """Delete every key of this session; returns how many went.

        With ``backup_dir`` every key is first written to
        ``<backup_dir>/<session>-<UTC time>.jsonl`` (one JSON line per key; published only
        once complete; its path is kept in ``last_backup``). A session whose heartbeat is
        still alive is refused unless ``force``: it may be running elsewhere.
        """
        with self._errors("clean the session"):
            alive = self._r.pttl(self._k("heartbeat"))
            if alive > 0 and not force:
                raise StorageError(
                    f"session {self.session!r} on {self.url} sent a heartbeat that is alive for "
                    f"{alive / 1000:.1f} s more: stop it first, wait, or clean with force")
            keys = sorted(set(self._r.scan_iter(match=_glob(self.prefix) + "*", count=PAGE)))
            if backup_dir is not None and keys:
                self.last_backup = self._backup(Path(backup_dir), keys)
            removed = 0
            for start in range(0, len(keys), PAGE):
                removed += int(self._r.unlink(*keys[start:start + PAGE]))
        return removed

    @staticmethod
    def sessions(url: str) -> list[str]:
        """Names of the sessions on the server (those with a meta key), sorted."""
        masked = mask_url(url)
        client = _client(url, masked, 10.0)
        pattern = _glob(PREFIX) + "*:meta"
        try:
            with _mapped(masked, _password(url), "list sessions"):
                keys = set(client.scan_iter(match=pattern, count=PAGE))
        finally:
            client.close()
        names = (k.decode()[len(PREFIX):-len(":meta")] for k in keys)
        return sorted(n for n in names if _SESSION_RE.fullmatch(n))

    def close(self) -> None:
        """Release the connections."""
        self._r.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionStore({self.url!r}, {self.session!r}, durable={self.durable})"

    # ------------------------------------------------------------------ internals

    def _k(self, name: str) -> str:
        return self.prefix + name

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _mapped(self.url, self._password, what)

    def _retry(self, what: str, call: Callable[[], _T]) -> _T:
        """``call()``, tried again while the server does not answer (module doc), its errors
        mapped to one StorageError line."""
        while True:
            try:
                with self._errors(what):
                    result = call()
            except StorageError as exc:
                cause = exc.__cause__
                if not isinstance(cause, RETRYABLE) or isinstance(cause,
                                                                   redis.AuthenticationError):
                    raise
                pause = self.outage.failed(self.outage_s)
                if pause is None:
                    raise StorageError(f"{exc}; it has not answered for "
                                       f"{self.outage.down_s():.1f} s ({OUTAGE_ENV}="
                                       f"{self.outage_s:g}): once it is back, continue the "
                                       "session with --resume") from cause
                time.sleep(pause)
                continue
            self.outage.answered()
            return result

    def _json(self, raw: bytes, key: str) -> Any:
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"{self.prefix}{key} on {self.url} holds something that is not "
                               f"JSON ({exc}); was it written by arbkit?") from None

    def _write(self, cmds: list[tuple]) -> list[Any]:
        """Run ``cmds`` in one pipeline (one connection), then make them durable if asked."""
        pipe = self._r.pipeline(transaction=False)
        for cmd in cmds:
            pipe.execute_command(*cmd)
        if self._waitaof:  # on the connection that wrote: it waits for that client's offset
            pipe.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
        results = pipe.execute()
        if self._waitaof and int(results.pop()[0]) < 1:
            raise StorageError(f"Redis at {self.url} did not fsync its append-only file "
                               f"within {WAITAOF_TIMEOUT_MS} ms (WAITAOF); check its disk")
        return results

    def _version(self) -> tuple[int, ...]:
        with self._errors("connect"):
            text = self._r.info("server").get("redis_version", "0")
        return tuple(int(p) for p in re.findall(r"\d+", str(text))[:3])

    def _check_durability(self) -> bool:
        """True: use WAITAOF; False: the server fsyncs every write itself. Else ConfigError."""
        cfg = self._persistence_config()
        version = ".".join(map(str, self.server_version))
        head = f"durable session store: Redis {version} at {self.url}"
        if self.server_version >= (7, 2):
            if cfg is not None and cfg.get("appendonly") != "yes":
                raise ConfigError(f"{head} runs appendonly=no; WAITAOF needs `appendonly yes` "
                                  "(redis.conf or CONFIG SET appendonly yes)")
            return True
        if cfg is None:
            raise ConfigError(f"{head} refuses CONFIG GET and has no WAITAOF (< 7.2), so its "
                              "fsync policy is unknown; allow CONFIG GET or use Redis >= 7.2")
        # no-appendfsync-on-rewrite yes skips the fsync while a rewrite or save runs
        want = {"appendonly": "yes", "appendfsync": "always", "no-appendfsync-on-rewrite": "no"}
        if any(cfg.get(k) != v for k, v in want.items()):
            seen = " ".join(f"{k}={cfg.get(k)}" for k in want)
            raise ConfigError(f"{head} runs {seen} and has no WAITAOF (< 7.2); set "
                              f"{', '.join(f'`{k} {v}`' for k, v in want.items())} "
                              "(redis.conf or CONFIG SET), or use Redis >= 7.2")
        return False

    def _persistence_config(self) -> dict[str, str] | None:
        """appendonly, appendfsync, no-appendfsync-on-rewrite; None if CONFIG is refused."""
        with self._errors("read its persistence settings"):
            try:
                cfg = {**self._r.config_get("append*"),
                       **self._r.config_get("no-appendfsync-on-rewrite")}
            except redis.ResponseError:  # CONFIG renamed or not allowed to this user
                return None
        return {_str(k): _str(v) for k, v in cfg.items()}

    def _backup(self, folder: Path, keys: list[bytes]) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{self.session}-{stamp}.jsonl"
        tmp = staged(target)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                for key in keys:
                    fh.write(json.dumps(self._dump_key(key)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            publish([(tmp, target)])
        except BaseException as exc:
            with contextlib.suppress(OSError):
                discard([tmp])
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write the backup {target} ({exc.strerror or exc}); "
                                   "nothing was deleted: choose another backup folder") from exc
            raise
        return target

    def _dump_key(self, key: bytes) -> dict[str, Any]:
        """One key as a JSON-able line: name, type, ttl in ms (-1: none), value."""
        kind = _str(self._r.type(key))
        value: Any
        if kind == "string":
            value = _enc(self._r.get(key))
        elif kind == "hash":
            value = {_str(f): _enc(v) for f, v in self._r.hgetall(key).items()}
        elif kind == "list":
            value = [_enc(v) for v in self._r.lrange(key, 0, -1)]
        elif kind == "stream":
            value = [[_str(i), {_str(f): _enc(v) for f, v in fields.items()}]
                     for i, fields in _stream_pages(self._r, key)]
        elif kind == "set":
            value = sorted(_enc(v) for v in self._r.smembers(key))
        elif kind == "zset":
            value = [[_enc(m), s] for m, s in self._r.zrange(key, 0, -1, withscores=True)]
        else:
            value = None
        return {"key": _str(key), "type": kind, "pttl": self._r.pttl(key), "value": value}


def has_keys(url: str, prefix: str) -> bool:
    """Whether the server at ``url`` holds any key starting with ``prefix`` (one SCAN)."""
    masked = mask_url(url)
    client = _client(url, masked, 10.0)
    try:
        with _mapped(masked, _password(url), "look for keys"):
            return any(True for _ in client.scan_iter(match=_glob(prefix) + "*", count=PAGE))
    finally:
        client.close()


# ---------------------------------------------------------------------- outages


@dataclass
class Outage:
    """A Redis server that stopped answering, as this process sees it: one per server
    address, shared by the session store and the execution journal, so both give up at the
    same moment (``since`` + their bound) and a session stops with one line.

    ``count``/``longest_s`` are what a status shows afterwards (outages ridden through; a
    connection that went stale and is redialled at once is not one)."""

    address: str
    since: float | None = None  # monotonic seconds of the first failure, None while answering
    count: int = 0
    longest_s: float = 0.0
    pause_s: float = 0.05

    def failed(self, bound_s: float) -> float | None:
        """A call failed: the pause before trying again, or None once ``bound_s`` passed."""
        now = time.monotonic()
        if self.since is None:
            self.since, self.pause_s = now, 0.05
        left = self.since + bound_s - now
        if left <= 0:
            return None
        pause = min(self.pause_s, left)
        self.pause_s = min(self.pause_s * 2, 1.0)
        return pause

    def answered(self) -> None:
        if self.since is not None:
            took = time.monotonic() - self.since
            self.count += took >= MIN_OUTAGE_S
            self.longest_s = max(self.longest_s, took)
            self.since = None

    def down_s(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def stats(self) -> dict[str, Any]:
        return {"down": self.since is not None, "down_s": round(self.down_s(), 3),
                "outages": self.count, "longest_outage_s": round(self.longest_s, 3)}


_OUTAGES: dict[str, Outage] = {}


def outage(address: str) -> Outage:
    """The process's ``Outage`` record of the server at ``address`` (``host:port`` or a
    socket path)."""
    return _OUTAGES.setdefault(address, Outage(address))


def outage_bound_s(env: dict[str, str] | None = None) -> float:
    """How long a running session waits for Redis: ``$ARBKIT_REDIS_OUTAGE_S`` or 30 s."""
    text = (os.environ if env is None else env).get(OUTAGE_ENV, "").strip()
    if not text:
        return OUTAGE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{OUTAGE_ENV}={text!r}: must be a number of seconds >= 0 (how long "
                          f"a session waits for a Redis that stopped answering; default "
                          f"{OUTAGE_S:g})")
    return value


def _address(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return url


# ---------------------------------------------------------------------- helpers


def _client(url: str, masked: str, timeout_s: float) -> redis.Redis:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise StorageError(f"Redis URL {masked!r} is not understood; use "
                           "redis://[user:password@]host:port/db, rediss://… or unix:///path")
    try:
        return redis.Redis.from_url(
            url, socket_connect_timeout=min(5.0, timeout_s), socket_timeout=timeout_s,
            # a down server fails within ~0.1 s, a restarted one is redialled
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2))
    except ValueError as exc:
        raise StorageError(f"Redis URL {masked!r} is not understood: {exc}") from None


@contextlib.contextmanager
def _mapped(url: str, password: str, what: str) -> Iterator[None]:
    """redis-py errors as one StorageError line (password never in it)."""
    try:
        yield
    except redis.RedisError as exc:
        text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        if password:
            text = text.replace(password, "***")
        if isinstance(exc, redis.AuthenticationError) or text.startswith(
                ("NOAUTH", "WRONGPASS", "invalid username-password", "invalid password")):
            fix = "fix the user/password in the URL"
        elif isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            fix = _FIX
        elif text.startswith("NOPERM"):
            fix = "grant this user the command (ACL) or use another user"
        else:
            fix = "see the server's log"
        raise StorageError(f"Redis at {url}: cannot {what}: {text}; {fix}") from exc


def _batches(items: list[tuple[int, bytes]]) -> Iterator[list[int | bytes]]:
    """Flat ``[seq, payload, ...]`` lists of at most PAGE entries and ~BATCH_BYTES each."""
    batch: list[int | bytes] = []
    size = 0
    for seq, payload in items:
        data = _bytes(payload, "journal payload")
        if batch and (len(batch) >= 2 * PAGE or size + len(data) > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch += [_seq(seq), data]
        size += len(data)
    if batch:
        yield batch


def _stream_pages(r: redis.Redis, key: bytes) -> Iterator[tuple[bytes, dict]]:
    start: bytes | str = "-"
    while True:
        rows = r.xrange(key, min=start, count=PAGE)
        yield from rows
        if len(rows) < PAGE:
            return
        start = b"(" + rows[-1][0]


def _seq(seq: int, *, allow_minus_one: bool = False) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int | np.integer):
        raise StorageError(f"journal seq must be an integer, got {seq!r}")
    seq = int(seq)
    if seq < (-1 if allow_minus_one else 0):
        raise StorageError(f"journal seq must be >= {-1 if allow_minus_one else 0}, got {seq}")
    return seq


def _password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def _bytes(data: Any, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StorageError(f"a {what} must be bytes, got {type(data).__name__}")
    return bytes(data)


def _id_seq(entry_id: bytes | str) -> int:
    return int(_str(entry_id).split("-", 1)[0])


def _str(b: bytes | str) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


def _enc(b: bytes | str | None) -> Any:
    """Text when it is UTF-8, else ``{"base64": …}``: the backup keeps every byte."""
    if b is None or isinstance(b, str):
        return b
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode("ascii")}


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v)


def _glob(text: str) -> str:
    """``text`` with SCAN MATCH's special characters escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _dumps(obj: Any) -> str:
    return to_json(_scrub(obj))


def _scrub(obj: Any) -> Any:
    """A copy with secret-looking values as ``***`` and URL passwords masked."""
    if isinstance(obj, dict):
        return {k: "***" if _SECRET_RE.search(str(k)) and not _blank(v) else _scrub(v)
                for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v) for v in obj]
    if isinstance(obj, str) and "://" in obj and "@" in obj:
        return mask_url(obj)
    return obj

