"""The quote source of a session on local emulators: the real ccxt feeds (``venues.feed``)
on the venues ``venues.emulator.multi.run_venues`` serves, until the emulators have replayed
their data (and ``tail_ns`` of data time more). Used by ``arbkit paper/live --emulator``,
``arbkit campaign`` and the soak."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


class EmulatedSource:
    """``tick``: an async call made every ``every_s`` while the data plays (a soak's fault
    schedule); ``end_ns``: the data time to stop at (default: the last row any venue serves)."""

    def __init__(self, venues: Any, queue: asyncio.Queue, *, end_ns: int | None = None,
                 tail_ns: int = 2_000_000_000, every_s: float = 0.2,
                 tick: Callable[[], Awaitable[None]] | None = None) -> None:
        from arbkit.venues.feed import FeedSet

        self.venues = venues
        self.feed = FeedSet(venues.specs, queue, venues.clock.now_ns)
        if end_ns is None:
            end_ns = getattr(venues, "end_ns", None) or max(
                t.server.span_ns[1] for t in venues.emulators.values())
        self.until = end_ns + tail_ns
        self.every_s, self.tick = every_s, tick

    async def run(self) -> None:
        if getattr(self.venues.clock, "paused", False):
            self.venues.clock.resume()  # (paper/live --emulator start them paused)
        task = asyncio.create_task(self.feed.run())
        while self.venues.clock.now_ns() < self.until and not task.done():
            if self.tick is not None:
                await self.tick()
            await asyncio.sleep(self.every_s)
        self.feed.stop()
        await asyncio.gather(task, return_exceptions=True)

    def stop(self) -> None:
        self.feed.stop()

    def stats(self) -> dict[str, dict]:
        return self.feed.stats()


# ---- emulators in another process (``arbkit emulator venues`` / ``arbkit live --venues``) --
# A session's rehearsal venues normally live in its own process (``--emulator DATA``); the
# crash suite (and an operator rehearsing a restart) needs venues that outlive the session:
# ``arbkit emulator venues`` serves them and writes a small JSON file (their addresses, the
# replay timeline, made-up keys), ``arbkit live --venues FILE`` trades on them.

VENUES_FILE_VERSION = 1


def rehearsal_accounts(cfg: Any, keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """``{venue: AccountConfig}`` of a config's rehearsal: the config's starting balances
    (per asset the largest any instrument of the venue names) and its taker fee, with the
    keys of ``keys[venue]``."""
    from arbkit.venues.emulator.config import AccountConfig

    balances: dict[str, dict[str, float]] = {}
    fees: dict[str, float] = {}
    for inst in cfg.instruments:
        bal = balances.setdefault(inst.venue, {})
        for asset, amount in ((inst.quote.upper(), inst.initial_quote),
                              (inst.base.upper(), inst.initial_base)):
            bal[asset] = max(bal.get(asset, 0.0), float(amount))
        fees.setdefault(inst.venue, inst.taker_fee_bps)
    return {v: AccountConfig(balances={a: format(x, "f") for a, x in bal.items()},
                             api_key=keys[v][0], api_secret=keys[v][1],
                             taker_fee_rate=format(fees[v] / 1e4, "f"))
            for v, bal in balances.items()}


class MirrorClock:
    """The replay timeline of emulators in another process, from the anchor they published
    (``ReplayClock.anchor``): CLOCK_MONOTONIC is shared by every process of the machine."""

    def __init__(self, data_ns: int, wall_ns: int, speed: float) -> None:
        self.data_ns, self.wall_ns, self.speed = int(data_ns), int(wall_ns), float(speed)

    def now_ns(self) -> int:
        return self.data_ns + int((time.monotonic_ns() - self.wall_ns) * self.speed)


class RemoteVenues(dict):
    """``{venue: url}`` of emulators another process serves, with ``specs`` (one feed per
    config instrument), ``clock`` (a :class:`MirrorClock`), ``end_ns`` (their last row),
    ``keys`` ({venue: (key, secret)} when they were made up) and ``pid``."""

    specs: list[Any]
    clock: MirrorClock
    end_ns: int
    keys: dict[str, tuple[str, str]]
    pid: int

    @classmethod
    def load(cls, path: Path, cfg: Any) -> RemoteVenues:
        from arbkit.errors import ConfigError
        from arbkit.venues.emulator.multi import plan
        from arbkit.venues.feed import StreamSpec

        try:
            doc = json.loads(Path(path).read_text())
            ok = doc.get("version") == VENUES_FILE_VERSION
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise ConfigError(f"--venues {path}: not a venues file of `arbkit emulator venues` "
                              "(start it first: arbkit emulator venues --config CFG --data DATA "
                              f"--out {path})")
        if doc["pid"] and not _alive(int(doc["pid"])):
            raise ConfigError(f"--venues {path}: its emulators (pid {doc['pid']}) are not "
                              "running; start `arbkit emulator venues` again")
        planned = plan(cfg)
        missing = sorted(set(planned) - set(doc["venues"]))
        if missing:
            raise ConfigError(f"--venues {path}: serves {', '.join(sorted(doc['venues']))}, "
                              f"not {', '.join(missing)} of the config; start the emulators "
                              "with the same --config")
        out = cls({v: doc["venues"][v] for v in planned})
        a = doc["clock"]
        out.clock = MirrorClock(a["data_ns"], a["wall_ns"], a["speed"])
        out.end_ns, out.pid = int(doc["end_ns"]), int(doc["pid"])
        out.keys = {v: tuple(k) for v, k in (doc.get("keys") or {}).items()}
        out.specs = [StreamSpec(i.key, "binance", i.ccxt_symbol, url=out[i.venue])
                     for insts in planned.values() for i in insts]
        return out


def write_venues_file(path: Path, venues: Any, keys: dict[str, tuple[str, str]]) -> None:
    """Publish running emulators (``run_venues``'s) for ``RemoteVenues.load``: staged, then
    renamed into place; readable by its owner only (it may hold made-up keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": VENUES_FILE_VERSION, "pid": os.getpid(), "venues": dict(venues),
           "clock": venues.clock.anchor(), "keys": keys,
           "end_ns": max(t.server.span_ns[1] for t in venues.emulators.values())}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
