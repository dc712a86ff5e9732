"""The one control layer of a session: what ``arbkit ctl``, ``arbkit reset`` and the dashboard
page all call, so every operator action is checked the same way and leaves the same audit
entry (who, what, when, through what).

Two kinds of control:

- **kernel controls** (``kill``, ``stop``, ``resume``, ``symbol_off:BASE``,
  ``symbol_on:BASE``) are queued in Redis (``SessionStore.push_control``); the session takes
  them at its next control poll (0.2 s) and feeds them to the kernel as control events, then
  audits ``applied`` (or ``refused``) with the same ``by``;
- **session controls** (``shutdown``: checkpoint and end the process, resumable with
  ``--resume``) are a request in the session's meta, honoured at the next status tick by the
  session's monitor (``arbkit.monitor.session.SessionMonitor``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arbkit.errors import ConfigError

KERNEL_CONTROLS = ("kill", "stop", "resume", "symbol_off", "symbol_on")
SESSION_CONTROLS = ("shutdown",)
VIAS = ("cli", "web", "reset", "api", "execution")


def normalize(control: str) -> str:
    """``control`` in its canonical spelling (``symbol_off:ETH``), or a ``ConfigError``.

    Examples
    --------
    >>> normalize(" symbol_off:eth ")
    'symbol_off:ETH'
    >>> normalize("STOP")
    'stop'
    """
    if not isinstance(control, str) or not control.strip():
        raise ConfigError("control: empty; one of kill, stop, resume, symbol_off:BASE, "
                          "symbol_on:BASE, shutdown")
    code, sep, arg = control.strip().partition(":")
    code = code.strip().lower()
    if code not in KERNEL_CONTROLS + SESSION_CONTROLS:
        raise ConfigError(f"control {control!r}: unknown; one of kill, stop, resume, "
                          "symbol_off:BASE, symbol_on:BASE, shutdown")
    if code.startswith("symbol_"):
        arg = arg.strip().upper()
        if not arg or not arg.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"control {control!r}: name a base asset, e.g. {code}:ETH")
        return f"{code}:{arg}"
    if sep:
        raise ConfigError(f"control {control!r}: {code} takes no argument")
    return code


def symbols_of(store: Any) -> list[str]:
    """The base assets of a running session's routes (from its last status), [] if unknown."""
    st = store.status() or {}
    return sorted({r["symbol"] for r in st.get("routes", []) if r.get("symbol")})


def send_control(store: Any, control: str, *, by: str, via: str) -> dict[str, Any]:
    """Send ``control`` to the session of ``store`` (a ``SessionStore``) and audit it.

    Parameters
    ----------
    store : the session's ``arbkit.store.redis.SessionStore``.
    control : ``kill``, ``stop``, ``resume``, ``symbol_off:BASE``, ``symbol_on:BASE`` or
        ``shutdown``.
    by : who asked (a user name, ``web@127.0.0.1``); never a secret.
    via : ``cli``, ``web``, ``reset``, ``api`` or ``execution`` (a live session halting itself).

    Returns the audit entry written. A symbol the running session does not trade is refused
    here (a ``ConfigError`` naming the symbols it has); a session that is not running still
    gets kernel controls queued (applied when it resumes).

    Examples
    --------
    >>> send_control(store, "symbol_off:eth", by="ana", via="cli")  # doctest: +SKIP
    {'control': 'symbol_off:ETH', 'by': 'ana', 'via': 'cli', 'requested': True, 'ts': '...'}
    """
    name = normalize(control)
    if via not in VIAS:
        raise ConfigError(f"control via {via!r}: one of {', '.join(VIAS)}")
    by = " ".join(str(by or "?").split())[:80] or "?"
    if name.startswith("symbol_"):
        have = symbols_of(store)
        if have and name.split(":", 1)[1] not in have:
            raise ConfigError(f"control {name}: session {store.session!r} trades "
                              f"{', '.join(have)}; name one of them")
    entry = {"control": name, "by": by, "via": via, "requested": True,
             "ts": datetime.now(UTC).isoformat()}
    if name in SESSION_CONTROLS:
        meta = store.meta()
        if meta is None:
            raise ConfigError(f"session {store.session!r}: not in Redis; nothing to {name}")
        meta[name] = {"at": entry["ts"], "by": by, "via": via}
        store.set_meta(meta)
    else:
        store.push_control({"control": name, "by": by, "via": via})
    store.audit(entry)
    return entry


def shutdown_requested(meta: dict | None, since: datetime) -> dict | None:
    """The ``shutdown`` request in ``meta`` made after ``since`` (an aware datetime), else None."""
    req = (meta or {}).get("shutdown")
    if not isinstance(req, dict):
        return None
    try:
        at = datetime.fromisoformat(str(req.get("at")))
    except ValueError:
        return None
    return req if at > since else None
