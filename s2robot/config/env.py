"""The ``env`` group (configs/env/cube_pick.yaml): CubePickEnv's constructor arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, OmegaConf

from s2robot.config import checks

ENV_IDS = ("CubePick-v0",)


@dataclass
class PlacementSchema:
    x_range: list[float] = MISSING
    y_range: list[float] = MISSING
    yaw_range: list[float] = MISSING


@dataclass
class EnvSchema:
    id: str = MISSING
    cameras: list[str] = MISSING
    image_size: int = MISSING
    horizon: int = MISSING
    terminate_on_success: bool = MISSING
    fast_render: bool = MISSING
    control_freq: int = MISSING
    init_noise: float = MISSING
    model_seed: int = MISSING
    placement: PlacementSchema = field(default_factory=PlacementSchema)


def _cameras(env: Any, p: str) -> None:
    checks.cameras(list(env.cameras), p + "cameras")
    checks.require(len(set(env.cameras)) == len(env.cameras), p + "cameras", env.cameras, "each camera at most once")


def _placement(env: Any, p: str) -> None:
    for name in env.placement:
        if OmegaConf.is_missing(env.placement, name):  # a partial override (eval's env) sets some ranges only
            continue
        lo_hi = list(env.placement[name])
        checks.require(
            len(lo_hi) == 2 and lo_hi[0] <= lo_hi[1],
            f"{p}placement.{name}",
            lo_hi,
            "must be [low, high] with low <= high",
        )


_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "id": lambda env, p: checks.choice(env, "id", ENV_IDS, prefix=p),
    "cameras": _cameras,
    "image_size": lambda env, p: checks.number(env, "image_size", 1, prefix=p, hint="square frames, e.g. 224"),
    "horizon": lambda env, p: checks.number(env, "horizon", 1, prefix=p),
    "control_freq": lambda env, p: checks.number(env, "control_freq", 1, prefix=p),
    "init_noise": lambda env, p: checks.number(env, "init_noise", 0, prefix=p),
    "placement": _placement,
}


def validate_env(env: Any, prefix: str = "env.", keys: Any = None) -> None:
    """Range checks of an env config; ``keys``: check only these (a partial override)."""
    for name, check in _CHECKS.items():
        if keys is None or name in keys:
            check(env, prefix)


def validate_env_overrides(overrides: Any, key: str = "env") -> dict:
    """A free-form dict of env overrides (eval's ``+env.horizon=200``, applied over a checkpoint's
    env): each key must be an env key, each value of its type and in range. Returns a plain dict."""
    plain = OmegaConf.to_container(overrides, resolve=True) if OmegaConf.is_config(overrides) else dict(overrides)
    fields = EnvSchema.__dataclass_fields__
    for name in plain:
        checks.require(
            name in fields,
            f"{key}.{name}",
            plain[name],
            f"not an env key{checks.did_you_mean(name, fields)}; env keys: {', '.join(fields)}",
        )
    try:
        typed = OmegaConf.merge(OmegaConf.structured(EnvSchema), plain)
    except Exception as e:  # omegaconf's ValidationError: a value of the wrong type
        full_key = getattr(e, "full_key", None)
        name = f"{key}.{full_key}" if full_key else key
        value = OmegaConf.select(OmegaConf.create(plain), full_key) if full_key else plain
        raise checks.fail(name, value, str(e).splitlines()[0]) from None
    validate_env(typed, prefix=key + ".", keys=set(plain))
    return plain
