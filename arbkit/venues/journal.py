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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from arbkit.errors import ConfigError, StorageError

WAITAOF_MIN = (7, 2)
WAITAOF_TIMEOUT_MS = 2000
DURABILITY = ("auto", "waitaof", "fsync_always")
# order states: planned (journaled, not sent) -> sending (durable, send in flight) -> acked |
# unknown (the send's outcome is unclear) -> done (a final report was given)
STATES = ("sending", "acked", "unknown", "done")


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

    def __init__(self, redis: Any, session: str, *, durability: str = "auto") -> None:
        if durability not in DURABILITY:
            raise ConfigError(f"journal: durability={durability!r}; use one of "
                              f"{', '.join(DURABILITY)}")
        self.redis = redis
        self.prefix = f"arbkit:exec:{session}:"
        self.durability = durability
        self.mode: str | None = None  # the mode in use, once checked

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
        if self.mode == "waitaof":
            local, _ = await self.redis.execute_command("WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS)
            if int(local) < 1:
                raise StorageError("journal: WAITAOF timed out: the intent is not known to be "
                                   "on disk; the order was not sent")
        elif self.mode is None:
            raise StorageError("journal: check_durable() was not called")

    # ---- orders ---------------------------------------------------------------------------
    async def put(self, rec: OrderRecord, *, durable: bool = False) -> None:
        await self.redis.hset(self.key("orders"), str(rec.oid), rec.dumps())
        if durable:
            await self.wait_durable()

    async def put_with_report(self, rec: OrderRecord, report: tuple) -> int:
        """Save the record and append its report in one transaction; the report's sequence."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key("orders"), str(rec.oid), rec.dumps())
        pipe.rpush(self.key("reports"), json.dumps(list(report)))
        _, seq = await pipe.execute()
        return int(seq)

    async def get(self, oid: int) -> OrderRecord | None:
        text = await self.redis.hget(self.key("orders"), str(oid))
        return None if text is None else OrderRecord.loads(text)

    async def all(self) -> dict[int, OrderRecord]:
        rows = await self.redis.hgetall(self.key("orders"))
        return {int(k): OrderRecord.loads(v) for k, v in rows.items()}

    async def reports_after(self, seq: int) -> list[tuple[int, tuple]]:
        """Reports with sequence > ``seq`` (1-based), for a consumer that restarts."""
        rows = await self.redis.lrange(self.key("reports"), seq, -1)
        return [(seq + i + 1, tuple(json.loads(r))) for i, r in enumerate(rows)]

    # ---- balances baseline ----------------------------------------------------------------
    async def baseline(self) -> dict[str, str] | None:
        text = await self.redis.hget(self.key("meta"), "baseline")
        return None if text is None else json.loads(text)

    async def set_baseline(self, balances: Mapping[str, str]) -> None:
        await self.redis.hset(self.key("meta"), "baseline", json.dumps(dict(balances)))
        await self.wait_durable()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
