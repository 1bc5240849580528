"""configs/eval_policy.yaml: roll a checkpoint out on the evaluation seeds (``s2robot-eval``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.encoder import DTYPES
from s2robot.config.env import validate_env_overrides
from s2robot.config.train import DEMO_SEEDS_END
from s2robot.errors import ConfigError

# s2robot/rollout/noise.py MODES and AXES (not imported: it loads numpy)
NOISE_MODES = ("per_episode", "per_step")
NOISE_AXES = ("xyz", "xy")


@dataclass
class EvalPolicySchema:
    checkpoint: str | None = MISSING
    n_episodes: int = MISSING
    n_workers: int | None = MISSING
    seed_start: int = MISSING
    n_videos: int = MISSING
    device: str = MISSING
    torch_threads: int | None = MISSING
    dtype: str = MISSING
    compile: bool | None = MISSING
    encoder_weights: str | None = MISSING
    out_dir: str | None = MISSING
    progress: bool = MISSING
    privileged_noise_cm: float = MISSING
    privileged_noise_axes: str = MISSING
    privileged_yaw_noise_deg: float = MISSING
    noise_mode: str = MISSING
    # Overrides over the checkpoint's own env config (+env.horizon=200): open, so `+` adds keys;
    # validate_eval_policy checks each one against the env schema.
    env: dict[str, Any] = field(default_factory=dict)


def validate_eval_policy(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    if not cfg.checkpoint:
        raise ConfigError(
            "checkpoint= is required: pass a run directory of train_policy.py or its "
            "checkpoint.pt, e.g. checkpoint=runs/2026-11-27_10-00-00_mvp_b"
        )
    checks.number(cfg, "n_episodes", 1)
    checks.number(cfg, "n_workers", 1, optional=True, hint="null: one per CPU core")
    checks.number(cfg, "seed_start", DEMO_SEEDS_END, hint="demonstrations use the seeds below it")
    checks.number(cfg, "n_videos", 0)
    checks.device(cfg)
    checks.number(cfg, "torch_threads", 1, optional=True)
    checks.choice(cfg, "dtype", DTYPES)
    # 100 cm: beyond the whole placement range (+-15 cm), surely a unit slip (the key is in cm)
    checks.number(cfg, "privileged_noise_cm", 0, 100, hint="std of the cube position error in cm")
    checks.number(cfg, "privileged_yaw_noise_deg", 0, 180)
    checks.choice(cfg, "noise_mode", NOISE_MODES)
    checks.choice(cfg, "privileged_noise_axes", NOISE_AXES)
    validate_env_overrides(cfg.env)
