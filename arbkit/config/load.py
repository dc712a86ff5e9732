"""TOML in, TOML out: parse a config (unknown keys rejected, types strict), dump one back."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from arbkit.config.check import _check
from arbkit.config.model import (
    AUTO,
    OFF,
    BarsConfig,
    Config,
    FxConfig,
    InstrumentConfig,
    RiskConfig,
    RouteConfig,
    RunConfig,
    StrategyConfig,
    TransferConfig,
    WalletConfig,
)
from arbkit.errors import ConfigError

# the words a number-or-word key accepts ("off" unless listed here)
WORDS = {"max_gap_s": (AUTO, OFF)}


def _build(cls: type, raw: Any, where: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, got {type(raw).__name__}")
    allowed = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {where}.{unknown[0]} = {raw[unknown[0]]!r}; "
            f"allowed keys: {', '.join(sorted(allowed))}"
        )
    missing = [
        n for n, f in allowed.items()
        if n not in raw and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"{source}: missing required key {where}.{missing[0]}; add it to [{where}]")
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(cls, allowed[name], value, f"{where}.{name}", source)
    return cls(**kwargs)


def _coerce(cls: type, f: dataclasses.Field, value: Any, where: str, source: str) -> Any:
    ann = str(f.type)
    if ann.startswith("dict[str, float]"):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} = {value!r}; expected a table of currency = "
                              "amount, e.g. { USDT = 100000.0, BTC = 2.0 }")
        return {k: _number(v, f"{where}.{k}", source) for k, v in value.items()}
    if "str" in ann and "float" in ann:
        if isinstance(value, str):
            words = WORDS.get(f.name, (OFF,))
            if value not in words:
                raise ConfigError(f'{source}: {where} = {value!r}; use a number or '
                                  + " or ".join(f'"{w}"' for w in words))
            return value
        return _number(value, where, source)
    if ann == "float":
        return _number(value, where, source)
    if ann == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where} = {value!r}; expected a whole number")
        return value
    if ann == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where} = {value!r}; expected true or false")
        return value
    if ann == "str" and not isinstance(value, str):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a string")
    return value


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a number")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{source}: {where} = {value!r}; expected a finite number")
    return float(value)


def from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Build and validate a Config from a plain dict (as parsed from TOML)."""
    allowed = {"run", "instruments", "route", "routes", "strategy", "bars", "fx", "risk",
               "wallets", "transfers"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{unknown[0]}]; allowed: {', '.join(sorted(allowed))}"
        )
    for sec in ("instruments", "strategy"):
        if sec not in raw:
            raise ConfigError(f"{source}: missing section [{sec}]")
    if ("route" in raw) == ("routes" in raw):
        raise ConfigError(f"{source}: give either one [route] or a list of [[routes]]"
                          + (" (not both)" if "route" in raw else ""))
    insts = raw["instruments"]
    if not isinstance(insts, (list, tuple)) or len(insts) < 2:
        raise ConfigError(f"{source}: [[instruments]] needs at least two entries")
    cfg = Config(
        run=_build(RunConfig, raw.get("run", {}), "run", source),
        instruments=tuple(
            _build(InstrumentConfig, d, f"instruments[{i}]", source) for i, d in enumerate(insts)
        ),
        routes=_routes(raw, source),
        strategy=_build(StrategyConfig, raw["strategy"], "strategy", source),
        bars=_build(BarsConfig, raw.get("bars", {}), "bars", source),
        fx=tuple(_build(FxConfig, d, f"fx[{k}]", source) for k, d in enumerate(raw.get("fx", []))),
        risk=_build(RiskConfig, raw.get("risk", {}), "risk", source),
        wallets=tuple(_build(WalletConfig, d, f"wallets[{k}]", source)
                      for k, d in enumerate(raw.get("wallets", []))),
        transfers=_build(TransferConfig, raw.get("transfers", {}), "transfers", source),
    )
    _check(cfg, source)
    return cfg


def _routes(raw: dict[str, Any], source: str) -> tuple[RouteConfig, ...]:
    if "route" in raw:
        return (_build(RouteConfig, raw["route"], "route", source),)
    items = raw["routes"]
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"{source}: [[routes]] must be a non-empty list of tables")
    out = []
    for r, item in enumerate(items):
        route = _build(RouteConfig, item, f"routes[{r}]", source)
        if not isinstance(route.strategy, dict):
            raise ConfigError(f"{source}: routes[{r}].strategy must be a table of overrides")
        if route.strategy:  # overrides are coerced like [strategy] keys
            allowed = {f.name: f for f in fields(StrategyConfig)}
            over = {}
            for k, v in route.strategy.items():
                if k not in allowed:
                    raise ConfigError(f"{source}: unknown key routes[{r}].strategy.{k} = {v!r}; "
                                      "allowed keys are those of [strategy]")
                over[k] = _coerce(StrategyConfig, allowed[k], v, f"routes[{r}].strategy.{k}",
                                  source)
            route = dataclasses.replace(route, strategy=over)
        out.append(route)
    return tuple(out)


def load_config_text(text: str, source: str = "<string>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc}); fix the syntax") from None
    return from_dict(raw, source)


def load_config(path: str | Path) -> Config:
    """Load and validate a TOML config file."""
    p = Path(path)
    if p.is_dir():
        inside = sorted(f.name for f in p.glob("*.toml"))
        hint = (f"pass the file, e.g. --config {p / inside[0]}" if inside
                else "it holds no .toml file; pass the config file itself")
        raise ConfigError(f"{p}: is a folder, not a config file; {hint}")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found (cwd {Path.cwd()}); pass an existing "
                          "--config path")
    # utf-8-sig: a byte-order mark some editors write is not a syntax error
    return load_config_text(p.read_text(encoding="utf-8-sig"), str(p))


def dump_config(cfg: Config) -> str:
    """TOML text for a config (round-trips through load_config_text)."""
    d = cfg.to_dict()
    out: list[str] = ["[run]"]
    out += [f"{k} = {_toml(v)}" for k, v in d["run"].items()]
    for inst in d["instruments"]:
        out += ["", "[[instruments]]"] + [f"{k} = {_toml(v)}" for k, v in inst.items()]
    for route in d["routes"]:
        out += ["", "[[routes]]"] + [f"{k} = {_toml(v)}" for k, v in route.items()
                                     if k != "strategy"]
        if route["strategy"]:
            out += ["[routes.strategy]"] + [f"{k} = {_toml(v)}"
                                            for k, v in route["strategy"].items()]
    out += ["", "[strategy]"] + [f"{k} = {_toml(v)}" for k, v in d["strategy"].items()]
    out += ["", "[bars]"] + [f"{k} = {_toml(v)}" for k, v in d["bars"].items()]
    for fx in d["fx"]:
        out += ["", "[[fx]]"] + [f"{k} = {_toml(v)}" for k, v in fx.items()]
    out += ["", "[risk]"] + [f"{k} = {_toml(v)}" for k, v in d["risk"].items()]
    for w in d["wallets"]:
        out += ["", "[[wallets]]"] + [f"{k} = {_toml(v)}" for k, v in w.items()]
    out += ["", "[transfers]"] + [f"{k} = {_toml(v)}" for k, v in d["transfers"].items()]
    return "\n".join(out) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)
