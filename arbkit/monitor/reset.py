"""``arbkit reset``: stop a session, back up its Redis keys (journal, snapshot, audit log,
controls, meta), clear its Redis namespace; the results store and the recording are never
touched (nothing here opens them).

A running session is asked to shut down through the control layer (``shutdown``: it
checkpoints and ends, as after Ctrl-C); reset waits until its heartbeat is gone. A session
that does not answer within ``wait_s`` is left as it is (``force`` clears it anyway: a
session that is still running would then write into a fresh namespace).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbkit.errors import ConfigError
from arbkit.monitor.control import send_control


@dataclass
class ResetResult:
    session: str
    was_running: bool
    stopped: bool
    keys_cleared: int
    backup: Path | None
    audit_backup: Path | None


def reset_session(store: Any, *, backup_dir: Path, by: str, wait_s: float = 30.0,
                  force: bool = False, poll_s: float = 0.2) -> ResetResult:
    """Stop (if running), back up and clear the session of ``store`` (a ``SessionStore``).

    Examples
    --------
    >>> reset_session(SessionStore(url, "paper-best"), backup_dir=Path("logs/session-backups"),
    ...               by="ana")                                         # doctest: +SKIP
    ResetResult(session='paper-best', was_running=True, stopped=True, keys_cleared=6, ...)
    """
    if store.meta() is None and store.status() is None:
        raise ConfigError(f"session {store.session!r}: not in Redis at {store.url}; nothing to "
                          "reset (`arbkit status` lists the sessions)")
    running = store.status() is not None
    stopped = not running
    if running:
        send_control(store, "shutdown", by=by, via="reset")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if store.status() is None:
                stopped = True
                break
            time.sleep(poll_s)
        if not stopped and not force:
            raise ConfigError(
                f"session {store.session!r} still sends heartbeats {wait_s:g} s after the "
                "shutdown request (was it started without the monitor, or is it stuck?); stop "
                "it with Ctrl-C / kill, or reset with --force; nothing was cleared")
    backup_dir = Path(backup_dir)
    audit = _audit_backup(store, backup_dir)
    n = store.clean(backup_dir, force=True)
    return ResetResult(store.session, running, stopped, n, store.last_backup, audit)


def _audit_backup(store: Any, folder: Path) -> Path | None:
    """The audit log as readable JSON lines next to the full backup (who did what, when)."""
    import json
    from datetime import UTC, datetime

    rows = store.audit_log(10_000)
    if not rows:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{store.session}-{stamp}.audit.jsonl"
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)
    return path
