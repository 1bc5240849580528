"""configs/train_policy.yaml: behaviour cloning on frozen S² features (``s2robot-train``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.cameras import validate_camera_encoders, validate_cameras
from s2robot.config.encoder import DTYPES, EncoderSchema, check_pretrained_encoder, validate_encoder
from s2robot.config.env import EnvSchema, validate_env
from s2robot.config.policy import validate_policy

# s2robot.training.train.INPUTS: vision, proprio and s2robot.observations.PRIVILEGED_KEYS
INPUTS = ("vision", "proprio", "cube_pos", "cube_yaw")
DEMO_SEEDS_END = 100_000  # envs.seeds.EVAL_SEED_START: demos stay below it


@dataclass
class DataSchema:
    store: str = MISSING
    camera: str = MISSING
    cameras: list[str] = MISSING
    collect_if_missing: bool = MISSING
    n_episodes: int = MISSING
    seed_start: int = MISSING
    expert_noise: float = MISSING
    val_fraction: float = MISSING


@dataclass
class TrainLoopSchema:
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_steps: int = MISSING
    grad_clip: float | None = MISSING
    save_every: int = MISSING
    resume: bool = MISSING
    progress: bool = MISSING
    torch_threads: int | None = MISSING


@dataclass
class TrainEvalSchema:
    enabled: bool = MISSING
    n_episodes: int = MISSING
    n_workers: int | None = MISSING
    n_videos: int = MISSING
    dtype: str = MISSING
    compile: bool | None = MISSING


@dataclass
class TrainPolicySchema:
    env: EnvSchema = field(default_factory=EnvSchema)
    encoder: EncoderSchema = field(default_factory=EncoderSchema)
    policy: Any = MISSING  # MLPPolicySchema or TransformerPolicySchema, from the chosen group yaml
    scales: list[int] = MISSING
    camera_encoders: dict[str, Any] = field(default_factory=dict)
    seed: int = MISSING
    device: str = MISSING
    inputs: list[str] = MISSING
    data: DataSchema = field(default_factory=DataSchema)
    train: TrainLoopSchema = field(default_factory=TrainLoopSchema)
    eval: TrainEvalSchema = field(default_factory=TrainEvalSchema)


def validate_demo_seeds(node: Any, n_key: str, prefix: str = "") -> None:
    checks.number(node, "seed_start", 0, prefix=prefix)
    checks.number(node, n_key, 1, prefix=prefix)
    end = node.seed_start + node[n_key]
    checks.require(
        end <= DEMO_SEEDS_END,
        prefix + "seed_start",
        node.seed_start,
        f"demo seeds [{node.seed_start}, {end}) must stay below the evaluation seeds ({DEMO_SEEDS_END})",
    )


def validate_train_policy(cfg: Any) -> None:
    """Every key known, every value in range, every name known: before demos are collected or an
    encoder is built. (What the names point at, the store and the weights, is checked by
    s2robot.training.preflight.validate.)"""
    checks.check_known_keys(cfg)
    inputs = list(cfg.inputs)
    checks.require(
        len(inputs) > 0 and all(i in INPUTS for i in inputs),
        "inputs",
        inputs,
        f"each must be one of {', '.join(INPUTS)}, e.g. inputs=[vision,proprio]",
    )
    checks.require(len(set(inputs)) == len(inputs), "inputs", inputs, "each input at most once")
    vision = "vision" in inputs
    # With per-camera options each camera's pool is checked against its own features (below).
    validate_policy(cfg.policy, cfg.encoder.feature if vision and not cfg.camera_encoders else None)
    validate_env(cfg.env)
    checks.number(cfg, "seed", 0)
    checks.device(cfg)
    d = cfg.data
    checks.require(
        bool(d.store), "data.store", d.store, "a path to the demonstration store, e.g. data/cube_pick_224.zarr"
    )
    validate_cameras(cfg)
    checks.number(d, "n_episodes", 2, prefix="data.", hint="training needs a train and a validation episode")
    validate_demo_seeds(d, "n_episodes", prefix="data.")
    checks.number(d, "expert_noise", 0, prefix="data.")
    checks.number(d, "val_fraction", 0, 1, high_open=True, prefix="data.")
    t = cfg.train
    checks.number(t, "epochs", 1, prefix="train.")
    checks.number(t, "batch_size", 1, prefix="train.")
    checks.number(t, "lr", 0, low_open=True, prefix="train.")
    checks.number(t, "weight_decay", 0, prefix="train.")
    checks.number(t, "warmup_steps", 0, prefix="train.")
    checks.number(t, "grad_clip", 0, optional=True, prefix="train.", hint="0 or null: no clipping")
    checks.number(t, "save_every", 1, prefix="train.")
    checks.number(t, "torch_threads", 1, optional=True, prefix="train.")
    e = cfg.eval
    checks.number(e, "n_episodes", 1, prefix="eval.")
    checks.number(e, "n_workers", 1, optional=True, prefix="eval.", hint="null: one per CPU core")
    checks.number(e, "n_videos", 0, prefix="eval.")
    checks.choice(e, "dtype", DTYPES, prefix="eval.")
    if vision:  # last: the encoder registry loads torch (s2robot.encoders imports it)
        validate_encoder(cfg.encoder, cfg.scales)
        check_pretrained_encoder(cfg.encoder)
        validate_camera_encoders(cfg)
