"""The training command's pre-flight: every check a user can fail, before demos are collected or an
encoder is run."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from s2robot.config.cameras import camera_options, policy_cameras
from s2robot.config.checks import show
from s2robot.config.train import validate_train_policy
from s2robot.data.replay_buffer import ReplayBuffer, StoreError
from s2robot.encoders import get_spec
from s2robot.encoders.weights import resolve_weights
from s2robot.errors import ConfigError


def validate(cfg: DictConfig) -> None:
    """Every check a user can fail, before demos are collected or an encoder is run: the config's
    keys, ranges and names (s2robot.config.train), then what it points at: weights and store."""
    validate_train_policy(cfg)
    inputs = list(cfg.inputs)
    if "vision" in inputs:
        used = {(o.encoder["name"], o.encoder["weights"]): None for o in camera_options(cfg).values()}
        for name, weights in used:
            resolve_weights(get_spec(name), weights)  # auto may download; offline: the how-to
    store = Path(cfg.data.store)
    cameras = policy_cameras(cfg) if "vision" in inputs else []
    need = list(cameras)
    need += [k for k in ("proprio", "cube_pos") if k in inputs] + ["action"]
    need += ["cube_quat"] if "cube_yaw" in inputs else []
    if store.exists():
        ReplayBuffer.open(store, required_keys=tuple(need))
    elif not cfg.data.collect_if_missing:
        raise StoreError(
            f"{store}: no demonstration store; collect one with scripts/collect_demos.py or set "
            f"data.collect_if_missing=true"
        )
    elif missing := [c for c in cameras if c not in cfg.env.cameras]:
        raise ConfigError(
            f"data.cameras={show(cameras)}: {show(missing)} not among env.cameras="
            f"{show(list(cfg.env.cameras))}, so the store collected for {store} would lack "
            f"{'it' if len(missing) == 1 else 'them'}; add them, e.g. env.cameras={show(cameras)}"
        )
