"""configs/dagger.yaml: DAgger rounds with the scripted expert (``s2robot-dagger``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks

STORE_MODES = ("copy", "extend")
DAGGER_SEEDS_PER_ROUND = 10_000  # envs.seeds.DAGGER_SEEDS_PER_ROUND (not imported: configs load no env code)


@dataclass
class DaggerSchema:
    run: str | None = MISSING
    rounds: int = MISSING
    episodes_per_round: int = MISSING
    beta: float = MISSING
    store_mode: str = MISSING
    train_overrides: list[str] = field(default_factory=list)
    n_workers: int | None = MISSING
    device: str = MISSING
    eval_episodes: int = MISSING
    progress: bool = MISSING


def validate_dagger(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    checks.require(
        cfg.run is None or bool(str(cfg.run).strip()),
        "run",
        cfg.run,
        "a trained run directory (or its checkpoint.pt), or null to train the first policy here",
    )
    checks.number(cfg, "rounds", 1, hint="each round rolls the policy out, relabels and retrains")
    checks.number(
        cfg,
        "episodes_per_round",
        1,
        DAGGER_SEEDS_PER_ROUND,
        hint=f"a round has {DAGGER_SEEDS_PER_ROUND} seeds of its own",
    )
    checks.number(cfg, "beta", 0, 1, hint="the probability of executing the expert's action instead of the policy's")
    checks.choice(cfg, "store_mode", STORE_MODES)
    checks.number(cfg, "n_workers", 1, optional=True, hint="null: one per CPU core")
    checks.device(cfg)
    checks.number(cfg, "eval_episodes", 0, hint="0: no evaluation of the retrained policies")
