"""The execution journal: every order intent and what became of it, in Redis, durable.

An intent is written here, and made durable, **before** its order is sent (``RUNTIME.md`` §4):
after a crash the journal knows every order that may be at the venue, with the client order
ids it was sent under and when, so a restart looks them up instead of sending again.

Durability: on Redis >= 7.2 ``WAITAOF 1 0`` waits until the write is fsynced to the local AOF.
Older servers (Debian's 7.0 here) have no WAITAOF: the journal then requires the server to run
with ``appendonly yes`` and ``appendfsync always`` (every write is fsynced before the reply)
and refuses to start otherwise, naming the fix.

Keys under ``arbkit:exec:<session>:`` — ``orders`` (hash: order number -> JSON record),
``reports`` (list: every report given to the kernel, in order; its 1-based position is the
report's sequence number), ``meta`` (hash: the venue balances at the session's first start).
Nothing secret is ever written here.

A Redis that stops answering (restarted, loading its AOF) is waited for: every call is tried
again with backoff until the server answers or ``outage_s`` (``$ARBKIT_REDIS_OUTAGE_S``, 30 s)
have passed since the outage began — the clock is shared with the session store
(``store.redis.Outage``) — then one ``StorageError``. Meanwhile nothing is sent: ``put(...,
durable=True)`` returns only once the intent is on disk. Every call is safe to run twice: a
record replaces itself, and a report carries a token so that a retried append whose first
reply was lost is not appended again (``last_report`` in ``meta``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from arbkit.errors import ConfigError, StorageError
from arbkit.store.redis import OUTAGE_ENV, RETRYABLE, Outage, has_keys, outage, outage_bound_s

PREFIX = "arbkit:exec:"  # + <session>:<name>; a live session's clients: <session>.<venue>
WAITAOF_MIN = (7, 2)
WAITAOF_TIMEOUT_MS = 2000
DURABILITY = ("auto", "waitaof", "fsync_always")
# order states: planned (journaled, not sent) -> sending (durable, send in flight) -> acked |
# unknown (the send's outcome is unclear) -> done (a final report was given)
STATES = ("sending", "acked", "unknown", "done")
# KEYS orders, reports, meta; ARGV oid, record, report, token -> the report's sequence. The
# token of the last report appended is kept: the same append tried again (its reply lost in
# a cut connection) returns that report's sequence instead of appending it twice. One
# flush at a time per journal (execution.py's lock), so only the last one can be in doubt.
_REPORT_LUA = """
local last = redis.call('HGET', KEYS[3], 'last_report')
if last then
  local sep = string.find(last, ' ', 1, true)
  if sep and string.sub(last, 1, sep - 1) == ARGV[4] then
    return tonumber(string.sub(last, sep + 1))
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], 'last_report', ARGV[4] .. ' ' .. n)
return n
"""


def any_journal(url: str, session_prefix: str) -> bool:
    """Whether Redis at ``url`` holds a journal whose session starts with ``session_prefix``
    (``<live session>.``: any venue's)."""
    return has_keys(url, PREFIX + session_prefix)


@dataclass
class Attempt:
    """One send of an order: its client id, when it was signed (wall ms) and its window."""

    cid: str
    sent_ms: int
    recv_window_ms: int


@dataclass
class OrderRecord:
    """What the journal holds about one order (one kernel intent)."""

    oid: int
    inst: str
    symbol: str
    side: int
    qty: str  # rounded to the venue's lot, as sent
    px: str  # rounded to the venue's tick, as sent
    intent: dict
    state: str = "sending"
    attempts: list[Attempt] = field(default_factory=list)
    venue_order_id: str | None = None
    venue_status: str | None = None  # ccxt's status once terminal: closed | canceled | expired
    venue_filled: float | None = None  # the venue's executed quantity (with venue_status)
    # venue trade id -> [qty, price, fee, fee asset]: each applied (reported) exactly once
    trades: dict[str, list] = field(default_factory=dict)
    final_status: int | None = None
    reason: int = 0
    updated_ms: int = 0

    @property
    def filled(self) -> float:
        return sum(float(t[0]) for t in self.trades.values())

    @property
    def cids(self) -> list[str]:
        return [a.cid for a in self.attempts]

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | bytes) -> OrderRecord:
        raw = json.loads(text)
        raw["attempts"] = [Attempt(**a) for a in raw.get("attempts", [])]
        return cls(**raw)


def _version(info: Mapping[str, Any]) -> tuple[int, int]:
    major, minor, *_ = (str(info.get("redis_version", "0.0")) + ".0").split(".")
    return int(major), int(minor)


class ExecJournal:
    """One session's execution journal on a ``redis.asyncio`` client.

    Parameters
    ----------
    redis
        A ``redis.asyncio.Redis`` (``decode_responses`` either way).
    session
        The session id: the key prefix.
    durability
        ``auto`` (WAITAOF where the server has it, else require ``appendfsync always``),
        ``waitaof`` or ``fsync_always``.
    """

    def __init__(self, redis: Any, session: str, *, durability: str = "auto",
                 outage_s: float | None = None) -> None:
        if durability not in DURABILITY:
            raise ConfigError(f"journal: durability={durability!r}; use one of "
                              f"{', '.join(DURABILITY)}")
        self.redis = redis
        self.prefix = f"{PREFIX}{session}:"
        self.durability = durability
        self.mode: str | None = None  # the mode in use, once checked
        self.outage_s = outage_bound_s() if outage_s is None else float(outage_s)
        self.outage: Outage = outage(_address(redis))

    def key(self, name: str) -> str:
        return self.prefix + name

    async def check_durable(self) -> str:
        """Decide (and verify) how writes are made durable; raises ConfigError if they can't."""
        info = await self.redis.info("server")
        has_waitaof = _version(info) >= WAITAOF_MIN
        if self.durability in ("auto", "waitaof") and has_waitaof:
            self.mode = "waitaof"
            await self.wait_durable()
            return self.mode
        if self.durability == "waitaof":
            raise ConfigError(f"journal: Redis {info.get('redis_version')} has no WAITAOF "
                              "(needs >= 7.2); use durability='fsync_always' with a server "
                              "run as `redis-server --appendonly yes --appendfsync always`")
        cfg = {}
        for name in ("appendonly", "appendfsync"):
            got = await self.redis.config_get(name)
            cfg[name] = _text(got.get(name) if got else None)
        if cfg != {"appendonly": "yes", "appendfsync": "always"}:
            raise ConfigError(
                f"journal: Redis {info.get('redis_version')} has appendonly="
                f"{cfg['appendonly']}, appendfsync={cfg['appendfsync']}; an order intent must be "
                "on disk before the order is sent: run `redis-server --appendonly yes "
                "--appendfsync always` (or CONFIG SET both), or use Redis >= 7.2 (WAITAOF)")
        self.mode = "fsync_always"
        return self.mode

    async def wait_durable(self) -> None:
        """Return once every write so far is fsynced (WAITAOF), or at once (fsync always:
        the server fsynced before it answered)."""
        await self._retry("wait for the append-only file", self._wait_durable)

    async def _wait_durable(self) -> None:
        if self.mode == "waitaof":
            local, _ = await self.redis.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
            _waited(local)
        elif self.mode is None:
            raise StorageError("journal: check_durable() was not called")

    async def _write(self, *cmds: tuple, durable: bool) -> list[Any]:
        """``cmds`` on one connection, then (WAITAOF mode, ``durable``) WAITAOF on that same
        connection: it waits for what that connection wrote, so both go in one pipeline."""
        if self.mode is None and durable:
            raise StorageError("journal: check_durable() was not called")
        wait = durable and self.mode == "waitaof"
        pipe = self.redis.pipeline(transaction=False)
        for cmd in cmds:
            pipe.execute_command(*cmd)
        if wait:
            pipe.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
        out = await pipe.execute()
        if wait:
            _waited(out.pop()[0])
        return out

    # ---- orders ---------------------------------------------------------------------------
    async def put(self, rec: OrderRecord, *, durable: bool = False) -> None:
        """Save the record; ``durable``: return only once it is on disk (before a send)."""
        cmd = ("HSET", self.key("orders"), str(rec.oid), rec.dumps())
        await self._retry("save an order", lambda: self._write(cmd, durable=durable))

    async def put_with_report(self, rec: OrderRecord, report: tuple) -> int:
        """Save the record and append its report in one transaction; the report's sequence.
        Tried again after a cut connection without appending the report twice (module doc)."""
        cmd = ("EVAL", _REPORT_LUA, 3, self.key("orders"), self.key("reports"), self.key("meta"),
               str(rec.oid), rec.dumps(), json.dumps(list(report)), secrets.token_hex(8))
        out = await self._retry("append a report", lambda: self._write(cmd, durable=False))
        return int(out[0])

    async def get(self, oid: int) -> OrderRecord | None:
        text = await self._retry("read an order",
                                 lambda: self.redis.hget(self.key("orders"), str(oid)))
        return None if text is None else OrderRecord.loads(text)

    async def all(self) -> dict[int, OrderRecord]:
        rows = await self._retry("read the orders",
                                 lambda: self.redis.hgetall(self.key("orders")))
        return {int(k): OrderRecord.loads(v) for k, v in rows.items()}

    async def reports_after(self, seq: int) -> list[tuple[int, tuple]]:
        """Reports with sequence > ``seq`` (1-based), for a consumer that restarts."""
        rows = await self._retry("read the reports",
                                 lambda: self.redis.lrange(self.key("reports"), seq, -1))
        return [(seq + i + 1, tuple(json.loads(r))) for i, r in enumerate(rows)]

    # ---- balances baseline ----------------------------------------------------------------
    async def baseline(self) -> dict[str, str] | None:
        text = await self._retry("read the baseline",
                                 lambda: self.redis.hget(self.key("meta"), "baseline"))
        return None if text is None else json.loads(text)

    async def set_baseline(self, balances: Mapping[str, str]) -> None:
        cmd = ("HSET", self.key("meta"), "baseline", json.dumps(dict(balances)))
        await self._retry("save the baseline", lambda: self._write(cmd, durable=True))

    # ---- a server that stopped answering --------------------------------------------------
    async def _retry(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """``await call()``, tried again while Redis does not answer, for at most
        ``outage_s`` since the outage began; then one StorageError (nothing was sent)."""
        import redis as redis_lib

        while True:
            try:
                result = await call()
            except RETRYABLE as exc:
                if isinstance(exc, redis_lib.AuthenticationError):
                    raise StorageError(f"journal: cannot {what}: {_line(exc)}; fix the "
                                       "user/password in the Redis URL") from exc
                pause = self.outage.failed(self.outage_s)
                if pause is None:
                    raise StorageError(
                        f"journal: Redis at {self.outage.address} has not answered for "
                        f"{self.outage.down_s():.1f} s (cannot {what}: {_line(exc)}); no order "
                        f"is sent without its journal (waited {OUTAGE_ENV}={self.outage_s:g} "
                        "s): start Redis again, then resume the session with --resume"
                    ) from exc
                await asyncio.sleep(pause)
                continue
            except redis_lib.RedisError as exc:
                raise StorageError(f"journal: cannot {what}: {_line(exc)}; see the Redis "
                                   "server's log") from exc
            self.outage.answered()
            return result


def _waited(local: Any) -> None:
    if int(local) < 1:
        raise StorageError("journal: WAITAOF timed out: the intent is not known to be on disk; "
                           "the order was not sent")


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()).rstrip(".") or type(exc).__name__


def _address(client: Any) -> str:
    """``host:port`` (or the socket path) of a redis-py client: its ``Outage`` key."""
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    if kw.get("path"):
        return str(kw["path"])
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
