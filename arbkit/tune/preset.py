"""Presets: a trial's effective config, written as TOML with where it came from.

``presets/<name>.toml`` is a normal backtest config (every key explicit, as the engine used
it) plus a ``[preset]`` table: study, trial, storage (no password), study file, data path,
FX/funding paths, the train windows (ns), data manifest hash, config hash, code version, and
the trial's train metrics. ``arbkit backtest --preset <name>`` runs the same config on the
same windows and checks that every metric equals the stored one, bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arbkit.config import Config
from arbkit.config.load import _toml, dump_config, from_dict
from arbkit.errors import ConfigError

PRESETS = Path("presets")


@dataclass
class Preset:
    name: str
    config: Config
    meta: dict[str, Any]
    path: Path


def promote(study_name: str, storage: Any, name: str, *, trial: int | None = None,
            folder: str | Path = PRESETS, force: bool = False) -> Path:
    """Write ``folder/<name>.toml`` from trial ``trial`` (default: the best) of a study;
    an existing preset of that name is replaced only with ``force``."""
    import optuna

    from arbkit.tune import best_trial

    if not name or any(c in name for c in "/\\ .\t"):
        raise ConfigError(f"--name {name!r}: use letters, digits, - or _ (no path, no dot)")
    try:
        study = optuna.load_study(study_name=study_name,
                                  storage=storage.optuna(create=False))
    except KeyError:
        raise ConfigError(f"no study {study_name!r} in {storage.masked}; run `arbkit tune` "
                          "first, or pass the same --storage") from None
    t = best_trial(study, trial)
    if (Path(folder) / f"{name}.toml").exists() and not force:
        raise ConfigError(f"preset {name!r} exists ({Path(folder) / (name + '.toml')}); pick "
                          "another --name, or pass --force to replace it")
    ua = t.user_attrs
    if "config" not in ua:
        raise ConfigError(f"trial {t.number} of {study_name!r} has no recorded config")
    cfg = from_dict(json.loads(ua["config"]), source=f"study {study_name} trial {t.number}")
    if cfg.config_hash() != ua.get("config_hash"):
        raise ConfigError(f"trial {t.number}: the stored config hashes to {cfg.config_hash()}, "
                          f"not the recorded {ua.get('config_hash')}; the config model changed "
                          "since the study ran: run the study again")
    spec = study.user_attrs.get("spec", {})
    meta = {
        "study": study_name, "trial": t.number, "storage": storage.masked,
        "study_file": portable(spec.get("source", "")), "data": portable(_data_path(spec)),
        "fx": portable(spec.get("fx") or ""), "funding": portable(spec.get("funding") or ""),
        "windows": ua.get("windows", {}).get("train", []),
        "data_hash": ua.get("data_hash", ""), "config_hash": ua["config_hash"],
        "code_version": ua.get("code_version", ""),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "params": {k: v for k, v in t.params.items()},
    }
    from arbkit.tune.study import trial_metrics

    metrics = trial_metrics(t)
    lines = [f"# preset {name}: study {study_name}, trial {t.number} "
             f"({', '.join(f'{k}={v}' for k, v in t.params.items())})",
             f"# reproduce: arbkit backtest --preset {name}", "", "[preset]"]
    for k, v in meta.items():
        if k == "params":
            continue
        lines.append(f"{k} = {_toml(v)}")
    lines.append("params = { " + ", ".join(f"{_toml(k)} = {_toml(v)}"
                                          for k, v in meta["params"].items()) + " }")
    lines += ["", "[preset.metrics]"] + [f"{_toml(k)} = {_toml(float(v))}"
                                         for k, v in sorted(metrics.items())]
    text = "\n".join(lines) + "\n\n" + dump_config(cfg)
    out = Path(folder) / f"{name}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out)
    load_preset(out)  # what was written loads back (and is the same config)
    return out


def _data_path(spec: dict[str, Any]) -> str:
    return str(spec.get("data", ""))


def portable(path: str) -> str:
    """A recorded path as the preset stores it: relative to the project root (the working
    folder, which holds ``presets/``) when it lies inside it, so a preset still works after
    the project is cloned or moved elsewhere; as it was otherwise (``synth:...``, elsewhere)."""
    if not path or path.startswith("synth:") or not Path(path).is_absolute():
        return path
    try:
        return Path(path).relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def _located(preset: Preset, path: str) -> str:
    """A relative path of the preset: from the working folder, else from the project root
    the preset lives in (``<root>/presets/<name>.toml``)."""
    if not path or path.startswith("synth:") or Path(path).is_absolute() or Path(path).exists():
        return path
    beside = preset.path.resolve().parent.parent / path
    return str(beside) if beside.exists() else path


def find_preset(name: str | Path, folder: str | Path = PRESETS) -> Path:
    p = Path(name)
    if p.suffix == ".toml" and p.is_file():
        return p
    q = Path(folder) / f"{name}.toml"
    if not q.is_file():
        have = sorted(x.stem for x in Path(folder).glob("*.toml")) if Path(folder).is_dir() \
            else []
        raise ConfigError(f"preset {str(name)!r} not found ({q}); presets: "
                          f"{', '.join(have) or 'none'} (write one with `arbkit preset promote`)")
    return q


def load_preset(name: str | Path, folder: str | Path = PRESETS) -> Preset:
    path = find_preset(name, folder)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    meta = raw.pop("preset", None)
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: no [preset] table; this is a plain config: use --config")
    _check_meta(path, meta)
    cfg = from_dict(raw, str(path))
    if meta.get("config_hash") and cfg.config_hash() != meta["config_hash"]:
        raise ConfigError(f"{path}: the config hashes to {cfg.config_hash()} but [preset] "
                          f"records {meta['config_hash']}: the file was edited; promote again "
                          "or use it as a plain --config")
    return Preset(path.stem, cfg, meta, path)


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    """The [preset] table's values have the types `promote` writes (an edited file fails
    here, in one line, not later with a wrong result)."""
    trial = meta.get("trial")
    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)
                              or trial < 0):
        raise ConfigError(f"{path}: [preset] trial = {trial!r}: a trial number (an integer "
                          ">= 0) is expected; promote the trial again")
    for key in ("study", "data", "fx", "funding", "data_hash", "config_hash"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ConfigError(f"{path}: [preset] {key} = {meta[key]!r}: text is expected; "
                              "promote the trial again")
    metrics = meta.get("metrics", {})
    bad = [k for k, v in metrics.items() if isinstance(v, bool)
           or not isinstance(v, (int, float))] if isinstance(metrics, dict) else ["metrics"]
    if bad:
        raise ConfigError(f"{path}: [preset.metrics] {bad[0]} is not a number; promote the "
                          "trial again")
    windows = meta.get("windows") or []
    ok = isinstance(windows, list) and all(
        isinstance(w, list) and len(w) == 2
        and all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in w)
        for w in windows)
    if not ok:
        raise ConfigError(f"{path}: [preset] windows = {windows!r}: a list of [start_ns, "
                          "end_ns] pairs is expected; promote the trial again")


def preset_source(preset: Preset, data: str | Path | None = None) -> str:
    """The path of the preset's data (``data`` overrides the recorded one; a
    ``synth:<scenario>`` is written on first use)."""
    src = str(data) if data is not None else _located(preset, preset.meta.get("data", ""))
    if src.startswith("synth:"):
        from arbkit.data.synth import write_scenario

        out = Path("out") / "synth" / src.split(":", 1)[1]
        if not (out / "quotes.parquet").is_file():
            write_scenario(src.split(":", 1)[1], out)
        src = str(out / "quotes.parquet")
    if not src or not Path(src).exists():
        raise ConfigError(f"{preset.path}: its data {src!r} is not here; pass --data")
    return src


def prepare_preset(preset: Preset, data: str | Path | None = None) -> Any:
    """The preset's data prepared for its config (``data`` overrides the recorded path);
    the event cache its study kept is read when it is there."""
    from arbkit.engine.backtest import prepare

    m = preset.meta
    fx = _located(preset, m.get("fx") or "") or None
    funding = _located(preset, m.get("funding") or "") or None
    return prepare(Path(preset_source(preset, data)), preset.config, fx=fx, funding=funding,
                   cache="read")  # the study's, if kept


def run_preset(preset: Preset, data: str | Path | None = None) -> tuple[list[Any], dict, list]:
    """Run the preset's config on its recorded windows. Returns (results per window, mean
    metrics, mismatches as (metric, stored, now)). ``data`` overrides the recorded path."""
    from arbkit.engine.backtest import run_prepared
    from arbkit.tune.evaluate import data_hash, mean_metrics

    m = preset.meta
    src = preset_source(preset, data)
    prep = prepare_preset(preset, src)
    h = data_hash(Path(src), prep)
    windows = m.get("windows") or [[None, None]]
    results = [run_prepared(preset.config, prep.window(a, b)) for a, b in windows]
    metrics = mean_metrics(results)
    stored = m.get("metrics", {})
    mismatches = []
    if m.get("data_hash") and h != m["data_hash"]:
        mismatches.append(("data_hash", m["data_hash"], h))
    for k, v in stored.items():
        now = metrics.get(k, math.nan)
        same = (math.isnan(v) and math.isnan(now)) or v == now
        if not same:
            mismatches.append((k, v, now))
    return results, metrics, mismatches
