"""Contract tests of the Redis session store (arbkit/store/redis.py) against real servers.

Most tests use the shared test server (``redis_url``) on database 13: ``clean_redis`` users
flush database 0, and these tests never flush anything, they each use a fresh session name.
The durability tests run their own throwaway ``redis-server`` (an AOF in ``tmp_path``), kill it
with SIGKILL and start it again on the same folder.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from arbkit.errors import ConfigError, StorageError
from arbkit.store import SessionStore
from arbkit.store import redis as R

pytestmark = pytest.mark.redis

DB = 13


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def url(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{DB}", parts.query, ""))


def _name(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(url: str) -> Iterator[SessionStore]:
    s = SessionStore(url, _name())
    try:
        yield s
    finally:
        s.clean(force=True)
        s.close()


def _raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


class ThrowawayRedis:
    """A redis-server of the test's own on a free loopback port, its files in ``folder``."""

    def __init__(self, binary: str, folder: Path, *args: str) -> None:
        self.binary, self.folder, self.args = binary, folder, args
        with socket.socket() as sock:  # a free port; redis sets SO_REUSEADDR for restarts
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ThrowawayRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--save", "", "--daemonize", "no", "--logfile",
             str(self.folder / "redis.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with {self.proc.returncode}: {log}")
            if _answers(self.port):
                return self
            time.sleep(0.02)
        pytest.fail(f"redis-server on port {self.port} did not answer within 10 s")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()


def _answers(port: int) -> bool:
    """PING answered (``-NOAUTH`` counts: the server is up and done loading its files)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


MakeServer = Callable[..., "ThrowawayRedis"]


@pytest.fixture
def throwaway(redis_server_bin: str, tmp_path: Path) -> Iterator[MakeServer]:
    servers: list[ThrowawayRedis] = []

    def make(*args: str, folder: str = "redis") -> ThrowawayRedis:
        server = ThrowawayRedis(redis_server_bin, tmp_path / folder, *args)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


def _version(url: str) -> tuple[int, ...]:
    with _raw(url) as r:
        return tuple(int(p) for p in r.info("server")["redis_version"].split(".")[:3])


# --------------------------------------------------------------------------- contract


def test_a_new_session_is_empty(store: SessionStore) -> None:
    assert store.meta() is None and store.load_snapshot() is None
    assert store.last_seq() == -1 and list(store.journal(-1)) == []
    assert store.pop_controls() == [] and store.status() is None
    assert store.orders() == {} and store.audit_log() == []
    assert store.trim(10) == 0


def test_meta_round_trips_and_keeps_no_secret(url: str, store: SessionStore) -> None:
    meta = {"config_hash": "ab12", "preset": "best", "mode": "paper", "n": 3, "x": 1.5,
            "started_at": "2025-01-02T03:04:05+00:00", "api_key": "KEY123",
            "venues": [{"name": "binance", "secret": "S3CRET", "password": ""}],
            "storage": "postgresql://arbkit:pw123@db:5432/x", "edge": float("nan")}
    store.set_meta(meta)
    got = store.meta()
    assert {k: got[k] for k in ("config_hash", "preset", "mode", "n", "x", "started_at")} == \
        {k: meta[k] for k in ("config_hash", "preset", "mode", "n", "x", "started_at")}
    assert got["api_key"] == "***" and got["venues"] == [{"name": "binance", "secret": "***",
                                                          "password": ""}]
    assert got["storage"] == "postgresql://arbkit:***@db:5432/x" and got["edge"] is None
    with _raw(url) as r:
        text = b"".join(r.get(k) or b"" for k in r.scan_iter(match=store.prefix + "*"))
    assert b"KEY123" not in text and b"S3CRET" not in text and b"pw123" not in text
    store.set_meta({"preset": "other"})  # replaces, does not merge
    assert store.meta() == {"preset": "other"}


def test_journal_is_in_seq_order_and_a_repeated_seq_is_ignored(store: SessionStore) -> None:
    assert store.append(0, b"zero") is True
    assert store.append(1, b"one\x00\xff") is True
    assert store.append(1, b"other payload") is False  # the first payload of a seq wins
    assert store.append_many([(1, b"again"), (5, b"five"), (7, b"seven")]) == 2
    assert store.append(3, b"below the top") is False  # the journal only moves forward
    assert store.append_many([]) == 0
    assert list(store.journal(-1)) == [(0, b"zero"), (1, b"one\x00\xff"), (5, b"five"),
                                       (7, b"seven")]
    assert list(store.journal(1)) == [(5, b"five"), (7, b"seven")]
    assert list(store.journal(5)) == [(7, b"seven")] and list(store.journal(7)) == []
    assert store.last_seq() == 7
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(StorageError, match="seq"):
            store.append(bad, b"x")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="must be bytes"):
        store.append(8, "text")  # type: ignore[arg-type]
    assert store.append(8, bytearray(b"ba")) and store.append(9, memoryview(b"mv"))
    assert list(store.journal(7)) == [(8, b"ba"), (9, b"mv")]


def test_the_journal_streams_more_than_10000_entries_in_pages(
        store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 12_345
    items = [(i, f"event {i}".encode()) for i in range(n)]
    assert store.append_many(items) == n
    assert store.append_many(items[:5000]) == 0  # a replay of the start is harmless
    calls = []
    real = store._r.eval
    monkeypatch.setattr(store._r, "eval", lambda *a: calls.append(a) or real(*a))
    it = store.journal(-1)
    assert next(it) == (0, b"event 0") and len(calls) == 1  # lazy: one page so far
    rest = list(it)
    assert [(0, b"event 0"), *rest] == items
    assert len(calls) == n // R.PAGE + 1 and all(c[-1] == R.PAGE for c in calls)
    assert list(store.journal(12_000, page=100)) == items[12_001:]
    with pytest.raises(StorageError, match="page"):
        next(store.journal(0, page=0))
    assert store.last_seq() == n - 1


def test_trim_drops_entries_up_to_seq_and_keeps_the_last_seq(store: SessionStore) -> None:
    store.append_many([(i, bytes([i])) for i in range(10)])
    assert store.trim(4) == 5
    assert [s for s, _ in store.journal(-1)] == [5, 6, 7, 8, 9]
    assert store.trim(4) == 0 and store.last_seq() == 9
    assert store.append(2, b"trimmed seq") is False
    assert store.trim(100) == 5
    assert list(store.journal(-1)) == [] and store.last_seq() == 9  # the top survives
    assert store.append(10, b"ten") is True
    assert list(store.journal(9)) == [(10, b"ten")]


def test_a_snapshot_of_a_few_megabytes_round_trips(store: SessionStore) -> None:
    store.save_snapshot(b"before any event", -1)
    assert store.load_snapshot() == (b"before any event", -1)
    blob = os.urandom(4 * 1024 * 1024) + b"\x00" * 1000
    store.save_snapshot(blob, 41)
    got = store.load_snapshot()
    assert got is not None and got[1] == 41 and got[0] == blob
    store.save_snapshot(b"", 42)
    assert store.load_snapshot() == (b"", 42)


def _pop_until(store: SessionStore, done: threading.Event, out: list[list[dict]]) -> None:
    while True:
        finished = done.is_set()  # read before popping: nothing can arrive after the last pop
        got = store.pop_controls()
        if got:
            out.append(got)
        elif finished:
            return
        else:
            time.sleep(0.0005)  # let the pusher have the GIL


def test_controls_are_fifo_and_a_pop_is_atomic_under_two_poppers(url: str,
                                                                  store: SessionStore) -> None:
    n = 2000
    done = threading.Event()
    batches: list[list[list[dict]]] = [[], []]
    poppers = [SessionStore(url, store.session) for _ in range(2)]
    threads = [threading.Thread(target=_pop_until, args=(p, done, b))
               for p, b in zip(poppers, batches)]
    for t in threads:
        t.start()
    for i in range(n):
        store.push_control({"cmd": "symbol", "symbol": f"S{i}", "on": i % 2 == 0, "n": i})
    done.set()
    for t in threads:
        t.join(timeout=30)
    seen = [[c["n"] for batch in b for c in batch] for b in batches]
    assert sorted(seen[0] + seen[1]) == list(range(n))  # every control once, none twice
    for s in seen:
        assert s == sorted(s)  # each popper got its controls in push order
    assert all(batches), "both poppers should have taken some controls"
    assert all(len({c["n"] for c in batch}) == len(batch) for b in batches for batch in b)
    assert store.pop_controls() == []
    for p in poppers:
        p.close()


def test_the_heartbeat_expires_after_its_ttl(store: SessionStore) -> None:
    store.heartbeat({"state": "ACTIVE", "events": 10}, ttl_s=30)
    assert store.status() == {"state": "ACTIVE", "events": 10}
    store.heartbeat({"state": "ACTIVE", "events": 11}, ttl_s=30)
    assert store.status() == {"state": "ACTIVE", "events": 11}  # the newest replaces it
    store.heartbeat({"state": "ACTIVE", "events": 12}, ttl_s=0.15)
    assert 0 < store._r.pttl(store.prefix + "heartbeat") <= 150
    time.sleep(0.3)
    assert store.status() is None
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="ttl_s"):
            store.heartbeat({}, ttl_s=bad)


def test_the_audit_log_keeps_the_newest_entries_oldest_first(store: SessionStore) -> None:
    for i in range(120):
        store.audit({"who": "cli", "what": "symbol off", "i": i, "token": "T0K"})
    store.audit({"who": "web", "what": "kill", "ts": "2025-01-01T00:00:00+00:00"})
    log = store.audit_log()
    assert len(log) == 100 and [e.get("i") for e in log[:-1]] == list(range(21, 120))
    assert log[-1] == {"who": "web", "what": "kill", "ts": "2025-01-01T00:00:00+00:00"}
    assert log[0]["ts"].endswith("+00:00") and log[0]["token"] == "***"
    assert [e["i"] for e in store.audit_log(2)[:1]] == [119] and store.audit_log(0) == []
    assert len(store.audit_log(1000)) == 121


def test_orders_are_kept_by_client_order_id(store: SessionStore) -> None:
    store.orders_put("ak-s1-000001", {"state": "SENDING", "qty": 0.01, "venue": "binance"})
    store.orders_put("ak-s1-000002", {"state": "PLANNED"})
    store.orders_put("ak-s1-000001", {"state": "ACKED", "venue_order_id": "987"})
    assert store.orders() == {"ak-s1-000001": {"state": "ACKED", "venue_order_id": "987"},
                              "ak-s1-000002": {"state": "PLANNED"}}


def _fill(s: SessionStore) -> None:
    s.set_meta({"preset": "best"})
    s.save_snapshot(b"\x00\xffsnap", 2)
    s.append_many([(0, b"e0"), (1, "é1".encode()), (2, b"\x80")])
    s.push_control({"cmd": "stop"})
    s.audit({"who": "cli", "what": "start"})
    s.orders_put("c1", {"state": "ACKED"})
    s.heartbeat({"state": "ACTIVE"}, ttl_s=60)


def _clean_checks(mine: SessionStore, neighbours: list[SessionStore], tmp_path: Path) -> Path:
    with pytest.raises(StorageError, match="heartbeat that is alive"):
        mine.clean()
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="nothing was deleted") as err:
        mine.clean(tmp_path / "file" / "bak", force=True)  # a folder under a file
    _one_line(err)
    assert mine.meta() == {"preset": "best"} and mine.last_backup is None
    assert mine.clean(tmp_path / "bak", force=True) == len(R.KEYS)
    backup = mine.last_backup
    assert backup is not None and mine.meta() is None and mine.last_seq() == -1
    assert mine.clean(tmp_path / "bak") == 0 and mine.last_backup == backup  # no empty file
    for s in neighbours:
        assert s.meta() == {"preset": "best"} and s.last_seq() == 2
        assert s.orders() == {"c1": {"state": "ACKED"}}
    return backup


def test_clean_removes_only_its_namespace_and_writes_a_backup(url: str, tmp_path: Path) -> None:
    name = _name("clean")
    mine = SessionStore(url, name)
    neighbours = [SessionStore(url, f"{name}.b"), SessionStore(url, f"{name}-2")]
    outside = [f"arbkit:session:{name}", f"other:{name}:meta", f"{mine.prefix}"[:-1] + "x"]
    with _raw(url) as r:
        try:
            for s in (mine, *neighbours):
                _fill(s)
            for k in outside:
                r.set(k, b"keep me")
            backup = _clean_checks(mine, neighbours, tmp_path)
            assert all(r.get(k) == b"keep me" for k in outside)
        finally:
            for s in (mine, *neighbours):
                s.clean(force=True)
            r.delete(*outside)
    assert backup.parent == tmp_path / "bak"
    assert [p.name for p in backup.parent.iterdir()] == [backup.name]  # no staged leftover
    lines = {d["key"][len(mine.prefix):]: d for d in map(json.loads, backup.read_text()
                                                         .splitlines())}
    assert set(lines) == set(R.KEYS)
    assert {k: d["type"] for k, d in lines.items()} == {
        "meta": "string", "snapshot": "hash", "journal": "stream", "controls": "list",
        "audit": "list", "heartbeat": "string", "orders": "hash"}
    snap = lines["snapshot"]["value"]
    assert base64.b64decode(snap["blob"]["base64"]) == b"\x00\xffsnap" and snap["seq"] == "2"
    assert lines["journal"]["value"] == [["0-1", {"p": "e0"}], ["1-1", {"p": "é1"}],
                                         ["2-1", {"p": {"base64": "gA=="}}]]
    assert json.loads(lines["controls"]["value"][0]) == {"cmd": "stop"}
    assert 0 < lines["heartbeat"]["pttl"] <= 60_000 and lines["meta"]["pttl"] == -1


def test_sessions_lists_the_sessions_that_have_meta(url: str) -> None:
    a, b, c = (SessionStore(url, _name(t)) for t in ("list-a", "list-b", "list-c"))
    try:
        a.set_meta({"mode": "paper"})
        b.set_meta({"mode": "live"})
        c.append(0, b"journal only: not a session yet")
        names = SessionStore.sessions(url)
        assert {a.session, b.session} <= set(names) and c.session not in names
        assert names == sorted(names)
        a.clean()
        assert a.session not in SessionStore.sessions(url)
    finally:
        for s in (a, b, c):
            s.clean(force=True)


@pytest.mark.parametrize("bad", ["", "a:b", "a*", "x[1]", "../up", "-lead", "a b", "x" * 101])
def test_session_names_that_could_leak_into_another_namespace_are_refused(url: str,
                                                                          bad: str) -> None:
    with pytest.raises(ConfigError, match="session name"):
        SessionStore(url, bad)


# --------------------------------------------------------------------------- errors


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_an_unreachable_redis_is_one_storage_error_line_without_the_password() -> None:
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        SessionStore("redis://user:hunter2@127.0.0.1:1/0", "s")
    text = _one_line(err)
    assert "hunter2" not in text and "redis://user:***@127.0.0.1:1/0" in text
    assert "services.sh" in text and time.monotonic() - t0 < 3
    with pytest.raises(StorageError) as err:
        SessionStore.sessions("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in _one_line(err)
    with pytest.raises(StorageError, match="not understood") as err:
        SessionStore("http://u:hunter2@127.0.0.1:1/0", "s")
    assert "hunter2" not in _one_line(err)


def test_a_refusing_redis_is_one_storage_error_line(throwaway: MakeServer) -> None:
    server = throwaway("--requirepass", "hunter2")
    for bad in (server.url, server.url.replace("//", "//:wrong@")):
        with pytest.raises(StorageError, match="user/password") as err:
            SessionStore(bad, "s")
        assert "wrong" not in _one_line(err) and "hunter2" not in str(err.value)
    good = server.url.replace("//", "//:hunter2@")
    with SessionStore(good, "s") as s:
        s.append(0, b"x")
        assert "hunter2" not in repr(s) and list(s.journal(-1)) == [(0, b"x")]
        server.kill9()
        with pytest.raises(StorageError, match="services.sh") as err:
            s.append(1, b"y")
        assert "hunter2" not in _one_line(err)


def test_durable_is_refused_on_a_server_that_does_not_fsync_every_write(url: str) -> None:
    with _raw(url) as r:
        assert r.config_get("appendonly")["appendonly"] == "no"  # the shared test server
    with pytest.raises(ConfigError, match="appendonly yes") as err:
        SessionStore(url, _name(), durable=True)
    _one_line(err)


# --------------------------------------------------------------------------- durability


def _fsync_policy(url: str) -> str:
    """``always`` where the store needs it (< 7.2); ``everysec`` where WAITAOF does the work."""
    return "everysec" if _version(url) >= (7, 2) else "always"


def _writer(store: SessionStore, acked: list[int], snaps: list[int], stop: threading.Event,
            errors: list[BaseException]) -> None:
    seq = 0
    try:
        while not stop.is_set():
            if seq % 3 == 0:
                store.append(seq, f"entry {seq}".encode())
                acked.append(seq)
                seq += 1
            else:
                batch = [(s, f"entry {s}".encode()) for s in range(seq, seq + 5)]
                store.append_many(batch)
                acked.extend(s for s, _ in batch)
                seq += 5
            if seq % 50 < 6:
                store.save_snapshot(f"snapshot after {acked[-1]}".encode(), acked[-1])
                snaps.append(acked[-1])
    except StorageError as exc:
        errors.append(exc)


def test_acknowledged_durable_writes_survive_kill_9_of_the_server(throwaway: MakeServer,
                                                                   redis_url: str) -> None:
    policy = _fsync_policy(redis_url)
    server = throwaway("--appendonly", "yes", "--appendfsync", policy)
    store = SessionStore(server.url, "durable", durable=True)
    store.set_meta({"mode": "live"})
    acked: list[int] = []
    snaps: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(store, acked, snaps, stop, errors))
    writer.start()
    deadline = time.monotonic() + 5
    while len(acked) < 1500 and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill9()  # mid-write: the writer is blocked in a call or about to make one
    writer.join(timeout=10)
    stop.set()
    assert errors and not writer.is_alive(), "the writer should see the server die"
    assert len(acked) >= 200, f"only {len(acked)} appends in 5 s"
    server.start()  # the same port and folder: it loads the AOF
    got = dict(store.journal(-1))  # the same store object redials the restarted server
    assert all(got.get(s) == f"entry {s}".encode() for s in acked), "an acknowledged entry lost"
    assert sorted(got) == list(range(len(got))) and store.last_seq() >= acked[-1]
    snap = store.load_snapshot()
    assert snap is not None and snap[1] >= snaps[-1]
    assert snap[0] == f"snapshot after {snap[1]}".encode()
    assert store.meta() == {"mode": "live"}
    assert store.append(len(got), b"after restart") is True


def test_without_an_append_only_file_a_kill_9_loses_the_journal(throwaway: MakeServer) -> None:
    # the check above can fail: the same steps on a server that keeps nothing lose everything
    server = throwaway("--appendonly", "no")
    store = SessionStore(server.url, "volatile")
    assert store.append_many([(i, b"x") for i in range(100)]) == 100
    server.kill9()
    server.start()
    assert store.last_seq() == -1 and list(store.journal(-1)) == []


@pytest.mark.parametrize("args", [
    ("--appendfsync", "everysec"),
    ("--appendfsync", "always", "--no-appendfsync-on-rewrite", "yes"),
], ids=["everysec", "no-fsync-on-rewrite"])
def test_durable_needs_fsync_always_before_redis_7_2(throwaway: MakeServer,
                                                     args: tuple[str, ...]) -> None:
    server = throwaway("--appendonly", "yes", *args)
    if _version(server.url) >= (7, 2):  # WAITAOF waits for the fsync whatever the policy
        with SessionStore(server.url, "s", durable=True) as s:
            assert s.append(0, b"x") is True
        return
    with pytest.raises(ConfigError, match="`appendfsync always`") as err:
        SessionStore(server.url, "s", durable=True)
    assert "7.2" in _one_line(err) and f"{args[0][2:]}={args[1]}" in str(err.value)
