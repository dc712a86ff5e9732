"""Built event arrays kept on disk, so a study reads and merges its data once.

An entry is the output of :func:`arbkit.engine.backtest.prepare` for one set of inputs: the
event and depth arrays (``.npy``) and what else the run needs (``meta.json``: instrument keys,
timelines, clock offsets, source kinds, notes). It lives beside the data::

    <catalog root>/.cache/events/<key>/        (a catalog)
    <folder of the file>/.cache/events/<key>/  (a Parquet file or folder)

The key is a SHA-256 over everything the arrays depend on: each input file's path (relative
to the data root), size, modification time (ns) and inode — the market data the config's
instruments can read, their FX series and funding — and the config's part that shapes the
events (instruments, routes, FX series, bar settings, timeline, reference currency), the
day range, and the event layout. Any input file rewritten, added or removed changes the key,
so a changed catalog is read again (and the stale entry is deleted the next time an entry is
written). A file rewritten in place with the same size and the same modification time to the
nanosecond is not noticed (``touch`` it, or delete ``.cache``).

Entries are written to a temporary folder and renamed into place (atomic: a reader sees a
whole entry or none; two writers of one key write the same bytes). Reading maps the files
copy-on-write (``mmap_mode="c"``): nothing is read until the loop touches it, and pages come
from the OS page cache, shared between processes (tuning workers). Entries beyond
``ARBKIT_EVENT_CACHE_MB`` (default 4096) in all are removed oldest first (the newest is
always kept). ``ARBKIT_EVENT_CACHE=off`` turns the cache off everywhere, ``on`` also for
``arbkit.backtest`` (off by default there: a one-off run gains nothing from writing it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arbkit.config import Config
from arbkit.core import types as T
from arbkit.data.events import EventArrays

FORMAT = 1  # bump when the entry layout or the event building changes
ENV = "ARBKIT_EVENT_CACHE"
ENV_MB = "ARBKIT_EVENT_CACHE_MB"
DEFAULT_MB = 4096
_MARKET_KINDS = ("quotes", "quote_bars", "bars")


def enabled(requested: bool | None) -> bool:
    """Whether to use the cache: ``ARBKIT_EVENT_CACHE=off|0`` wins, ``on|1`` turns it on
    for every caller, else what the caller asked for (default off)."""
    env = os.environ.get(ENV, "").strip().lower()
    if env in ("off", "0", "false", "no"):
        return False
    if env in ("on", "1", "true", "yes"):
        return True
    return bool(requested)


@dataclass
class Cached:
    """What an entry holds: :class:`~arbkit.engine.backtest.Prepared`'s fields."""

    arrays: EventArrays
    crossed_rows: int
    kinds: dict[str, str]
    notes: list[str]
    extra_meta: dict[str, Any] = field(default_factory=dict)


class EventCache:
    """One entry: ``folder/<key>``, with the input files it was keyed on."""

    def __init__(self, folder: Path, key: str, inputs: dict[str, list[int]]) -> None:
        self.folder = folder
        self.key = key
        self.inputs = inputs  # relative path -> [size, mtime_ns, inode]
        self.path = folder / key

    # ---- keys ------------------------------------------------------------------------------
    @classmethod
    def for_catalog(cls, root: str | Path, cfg: Config, start: Any = None,
                    end: Any = None) -> EventCache:
        """The entry of a catalog read (``CatalogEvents(root, cfg, start=, end=)``, carry
        on): keyed on every file of the config's instruments (all three market kinds, all
        days: a new day changes the key even outside the range), its FX series and the
        funding of its perpetuals."""
        from arbkit.data.catalog import Catalog, Selection

        root = Path(root)
        cat = Catalog(root)
        wanted = {(i.venue, i.symbol) for i in cfg.instruments}
        fx = {(f.venue, f.symbol) for f in cfg.fx}
        files = []
        for kind in (*_MARKET_KINDS, "funding", "fx"):
            names = fx if kind == "fx" else wanted
            files += [p.path for p in cat.partitions(Selection(kind))
                      if (p.venue, p.symbol) in names]
        extra = {"start": str(start), "end": str(end)}
        return cls._make(root / ".cache" / "events", root, files, cfg, extra)

    @classmethod
    def for_files(cls, data: str | Path, cfg: Config, fx: Any = None,
                  funding: Any = None) -> EventCache:
        """The entry of a Parquet file or folder read (with ``--fx`` / ``--funding`` files)."""
        from arbkit.data.load import parquet_files

        data = Path(data)
        base = data.parent if data.is_file() else data
        files = list(parquet_files(data))
        for extra_src in (fx, funding):
            if extra_src is not None:
                files += parquet_files(extra_src)
        # an input outside ``base`` is named by its absolute path
        return cls._make(base / ".cache" / "events", base, files, cfg,
                         {"fx": str(fx), "funding": str(funding)})

    @classmethod
    def _make(cls, folder: Path, base: Path, files: list[Path], cfg: Config,
              extra: dict[str, str]) -> EventCache:
        inputs: dict[str, list[int]] = {}
        for f in sorted(set(files)):
            st = f.stat()
            inputs[_rel(f, base)] = [st.st_size, st.st_mtime_ns, st.st_ino]
        h = hashlib.sha256()
        h.update(json.dumps({"format": FORMAT, "dtype": str(T.EVENT_DTYPE.descr),
                             "config": config_part(cfg), "inputs": inputs, **extra},
                            sort_keys=True).encode())
        return cls(folder, h.hexdigest()[:24], inputs)

    # ---- reading and writing ------------------------------------------------------------
    def load(self) -> Cached | None:
        """The entry's arrays (memory-mapped copy-on-write), or None: absent, or unreadable
        (then it is removed)."""
        meta_file = self.path / "meta.json"
        if not meta_file.is_file():
            return None
        try:
            meta = json.loads(meta_file.read_text())
            if meta.get("format") != FORMAT or meta.get("key") != self.key:
                raise ValueError("another format or key")
            ev = _mapped(self.path / "events.npy")
            if ev.dtype != T.EVENT_DTYPE or ev.shape[0] != meta["events"]:
                raise ValueError("events do not match meta.json")
            depth = (_mapped(self.path / "depth.npy") if meta["n_levels"] > 1
                     else np.zeros((0, 4, 0)))
        except (OSError, ValueError, KeyError, TypeError):
            self.remove()
            return None
        with contextlib.suppress(OSError):
            os.utime(meta_file)  # recently used: pruned last
        arrays = EventArrays(ev, depth, list(meta["inst_keys"]), int(meta["n_levels"]),
                             {k: bool(v) for k, v in meta["use_exch"].items()},
                             {k: list(v) for k, v in meta["clock_offset_ns"].items()},
                             int(meta["dropped_rows"]))
        return Cached(arrays, int(meta["crossed_rows"]), dict(meta["kinds"]),
                      list(meta["notes"]), dict(meta.get("extra_meta", {})))

    def store(self, c: Cached) -> bool:
        """Write the entry atomically; False (nothing left behind) when the folder cannot be
        written (a read-only catalog: the run goes on uncached)."""
        a = c.arrays
        meta = {"format": FORMAT, "key": self.key, "events": int(a.events.shape[0]),
                "inst_keys": a.inst_keys, "n_levels": a.n_levels, "use_exch": a.use_exch,
                "clock_offset_ns": a.clock_offset_ns, "dropped_rows": a.dropped_rows,
                "crossed_rows": c.crossed_rows, "kinds": c.kinds, "notes": c.notes,
                "extra_meta": c.extra_meta, "inputs": self.inputs,
                "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp: Path | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# arbkit's event cache (arbkit/data/cache.py)\n*\n")
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.key}-", dir=self.folder))
            np.save(tmp / "events.npy", np.ascontiguousarray(a.events), allow_pickle=False)
            if a.n_levels > 1:
                np.save(tmp / "depth.npy", np.ascontiguousarray(a.depth), allow_pickle=False)
            (tmp / "meta.json").write_text(json.dumps(meta, default=_plain, indent=1))
            try:
                os.rename(tmp, self.path)
            except OSError:  # another process wrote the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
            tmp = None
        except OSError:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return False
        prune(self.folder, keep=self.key)
        return True

    def remove(self, tidy: bool = False) -> None:
        """Delete the entry; ``tidy``: also the cache folders when nothing else is left in
        them (as if it had never been written)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if not tidy:
            return
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty
            top = self.folder.parent
            if [q.name for q in top.iterdir()] == [".gitignore"]:
                (top / ".gitignore").unlink()
                top.rmdir()


def config_part(cfg: Config) -> dict[str, Any]:
    """The config's fields the event arrays depend on (strategy and risk do not)."""
    d = cfg.to_dict()
    return {"instruments": [{k: i[k] for k in ("venue", "symbol", "base", "quote", "kind")}
                            for i in d["instruments"]],
            "routes": [[r["a"], r["b"]] for r in d["routes"]], "fx": d["fx"],
            "bars": d["bars"], "timeline": d["run"]["timeline"],
            "reference_ccy": d["run"]["reference_ccy"]}


def prune(folder: Path, keep: str | None = None, budget_mb: float | None = None) -> list[Path]:
    """Remove stale entries (an input file changed or is gone) and then the least recently
    used ones beyond the size budget; ``keep`` is never removed. Returns what was removed."""
    if budget_mb is None:
        text = os.environ.get(ENV_MB, "")
        budget_mb = float(text) if text.replace(".", "", 1).isdigit() else DEFAULT_MB
    removed: list[Path] = []
    entries = []
    for d in folder.glob("*/meta.json"):
        entry = d.parent
        try:
            meta = json.loads(d.read_text())
            stale = entry.name != keep and _stale(folder.parent.parent, meta.get("inputs", {}))
            size = sum(f.stat().st_size for f in entry.iterdir())
            used = d.stat().st_mtime
        except (OSError, ValueError):
            stale, size, used = entry.name != keep, 0, 0.0
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        else:
            entries.append((used, size, entry))
    total = sum(s for _, s, _ in entries)
    for _, size, entry in sorted(entries):  # oldest first
        if total <= budget_mb * 2**20:
            break
        if entry.name == keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        total -= size
    return removed


def _stale(base: Path, inputs: dict[str, list[int]]) -> bool:
    for rel, (size, mtime, ino) in inputs.items():
        f = Path(rel) if Path(rel).is_absolute() else base / rel
        try:
            st = f.stat()
        except OSError:
            return True
        if [st.st_size, st.st_mtime_ns, st.st_ino] != [size, mtime, ino]:
            return True
    return False


def _rel(f: Path, base: Path) -> str:
    try:
        return str(f.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(f.resolve())


def _mapped(path: Path) -> np.ndarray:
    """A ``.npy`` file mapped copy-on-write, as a plain (writable) ndarray: the loop's
    compiled signature is the same as for built arrays (a read-only or memmap-typed array
    would compile the kernel again)."""
    return np.asarray(np.load(path, mmap_mode="c", allow_pickle=False))


def _plain(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (set, tuple)):
        return list(x)
    return str(x)
