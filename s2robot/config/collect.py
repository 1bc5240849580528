"""configs/collect_demos.yaml: scripted-expert demonstrations into a Zarr store (``s2robot-collect``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.env import EnvSchema, validate_env
from s2robot.config.train import validate_demo_seeds


@dataclass
class ExpertSchema:
    noise: float = MISSING


@dataclass
class CollectDemosSchema:
    env: EnvSchema = field(default_factory=EnvSchema)
    n_episodes: int = MISSING
    seed_start: int = MISSING
    store: str = MISSING
    expert: ExpertSchema = field(default_factory=ExpertSchema)
    keep_failures: bool = MISSING


def validate_collect_demos(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    validate_env(cfg.env)
    validate_demo_seeds(cfg, "n_episodes")
    checks.require(bool(cfg.store), "store", cfg.store, "a path for the Zarr store, e.g. data/cube_pick_224.zarr")
    checks.number(cfg.expert, "noise", 0, prefix="expert.")
