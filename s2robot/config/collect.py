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
    label_noise: float = MISSING
    dart_noise: float = MISSING
    dart_per_episode: bool = MISSING
    noise: float | None = None  # the older name of label_noise, still read


def label_noise(expert: Any) -> float:
    """expert.label_noise, or its older name expert.noise when that is set."""
    return float(expert.label_noise if expert.noise is None else expert.noise)


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
    expert = cfg.expert
    checks.number(expert, "noise", 0, optional=True, prefix="expert.", hint="the older name of expert.label_noise")
    checks.number(expert, "label_noise", 0, prefix="expert.")
    checks.require(
        expert.noise is None or not expert.label_noise or expert.noise == expert.label_noise,
        "expert.noise",
        expert.noise,
        f"is the older name of expert.label_noise={expert.label_noise}; set only expert.label_noise",
    )
    checks.number(expert, "dart_noise", 0, prefix="expert.")
