"""The pieces every schema's ``validate_*`` is made of: one-line ``ConfigError``s that name the key,
the bad value and what is allowed, and the check that no key outside the schema crept in.

Imports no torch, no simulator: a command validates its config before anything heavy loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from s2robot.errors import ConfigError

# robosuite's cameras in the Lift scene (the env asks robosuite for these by name; a misspelt one
# would otherwise surface as a KeyError deep inside the simulator).
CAMERAS = ("agentview", "robot0_eye_in_hand", "frontview", "birdview", "sideview", "robot0_robotview")
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def show(value: Any) -> str:
    """A value as the user would type it on the command line."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{show(v)}" for k, v in value.items()) + "}"
    return str(value)


def fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={show(value)}: {allowed}")


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise fail(key, value, allowed)


def _describe(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"{'<' if high_open else '<='} {high:g}"


def number(
    node: Any,
    key: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    prefix: str = "",
    hint: str = "",
) -> None:
    """``node[key]`` within the given bounds (``optional``: null is allowed too)."""
    value = node[key]
    if value is None and optional:
        return
    ok = value is not None
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        allowed = f"must be {_describe(low, high, low_open, high_open)}" + (" or null" if optional else "")
        raise fail(prefix + key, value, allowed + (f" ({hint})" if hint else ""))


def choice(node: Any, key: str, allowed: Iterable[str], *, prefix: str = "") -> None:
    allowed = tuple(allowed)
    value = node[key]
    if value not in allowed:
        raise fail(prefix + key, value, f"must be one of {', '.join(allowed)}{did_you_mean(value, allowed)}")


def camera(node: Any, key: str, *, prefix: str = "") -> None:
    cameras([node[key]], prefix + key, shown=node[key])


def device(node: Any, key: str = "device", *, prefix: str = "") -> None:
    value = node[key]
    require(
        isinstance(value, str) and _DEVICE.fullmatch(value) is not None,
        prefix + key,
        value,
        "must be auto, cpu, cuda or cuda:N",
    )


def cameras(values: Sequence[str], key: str, shown: Any = None) -> None:
    for cam in values:
        require(
            cam in CAMERAS,
            key,
            values if shown is None else shown,
            f"camera {cam!r} is not in robosuite's Lift scene{did_you_mean(cam, CAMERAS)}; cameras: "
            f"{', '.join(CAMERAS)}",
        )


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def schema_fields(node: DictConfig) -> tuple[str, ...] | None:
    kind = OmegaConf.get_type(node)
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None


def check_known_keys(cfg: DictConfig, prefix: str = "") -> None:
    """Raise on a key that is not in its node's schema. Hydra's ``+key=value`` adds keys even to a
    structured config (it opens the struct flag), so ``+train.epoch=1`` would otherwise be accepted
    and silently ignored."""
    fields = schema_fields(cfg)
    for key in cfg.keys():
        full = f"{prefix}{key}"
        if fields is not None and key not in fields:
            where = prefix.rstrip(".") or "the top level"
            raise ConfigError(
                f"{full}: no such key in {where}{did_you_mean(key, fields)}; known keys: {', '.join(fields)}"
            )
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_known_keys(child, full + ".")
        elif isinstance(child, ListConfig) and not child._is_missing() and not child._is_none():
            for i, item in enumerate(child):
                if isinstance(item, DictConfig):
                    check_known_keys(item, f"{full}[{i}].")
