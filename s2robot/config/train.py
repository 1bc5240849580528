"""configs/train_policy.yaml: behaviour cloning on frozen S² features (``s2robot-train``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from s2robot.config import checks
from s2robot.config.encoder import DTYPES, EncoderSchema, check_pretrained_encoder, validate_encoder, validate_scales
from s2robot.config.env import EnvSchema, validate_env
from s2robot.config.policy import VISUAL_POOLS, validate_policy

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


# The ``encoder`` group's keys a camera may set for itself in ``camera_encoders.<camera>`` (beside
# its S² ``scales`` and the head's ``visual_pool`` over its features).
CAMERA_ENCODER_KEYS = ("name", "weights", "img_size", "feature", "output_grid", "seed", "allow_family_mismatch")


@dataclass
class CameraEncoderSchema:
    """The types of ``camera_encoders.<camera>``. That map is typed ``dict[str, Any]`` in the schema
    because Hydra cannot add ``+camera_encoders.<camera>.<key>=...`` to a map of dataclasses; each
    entry is checked against this in validate_cameras instead. A key not given takes the shared
    value (``encoder.<key>``, ``scales``, ``policy.visual_pool``); null is a value here
    (``img_size: null`` is the encoder's native size)."""

    name: str = MISSING
    weights: str | None = MISSING
    img_size: int | None = MISSING
    feature: str = MISSING
    output_grid: str = MISSING
    seed: int = MISSING
    allow_family_mismatch: bool = MISSING
    scales: list[int] = MISSING
    visual_pool: str = MISSING


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


# -- several cameras ------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraOptions:
    """One camera's encoder (the ``encoder`` group's keys), S² scales and head pool, after its
    ``camera_encoders`` overrides; ``overridden``: the keys that camera set itself."""

    encoder: dict
    scales: tuple[int, ...]
    visual_pool: str
    overridden: frozenset[str]


def policy_cameras(cfg: Any) -> list[str]:
    """The cameras the policy sees, in order: ``data.cameras`` (``[${data.camera}]`` by default, so
    ``data.camera=X`` is the single-camera spelling of ``data.cameras=[X]``)."""
    return [str(c) for c in cfg.data.cameras]


def camera_options(cfg: Any) -> dict[str, CameraOptions]:
    """``camera -> CameraOptions`` for every policy camera: the shared ``encoder``, ``scales`` and
    ``policy.visual_pool`` with what ``camera_encoders.<camera>`` sets."""
    shared = OmegaConf.to_container(cfg.encoder, resolve=True)
    out = {}
    for cam in policy_cameras(cfg):
        node = cfg.camera_encoders.get(cam)
        given = OmegaConf.to_container(node, resolve=True) if node is not None else {}
        out[cam] = CameraOptions(
            encoder={**shared, **{k: v for k, v in given.items() if k in CAMERA_ENCODER_KEYS}},
            scales=tuple(int(s) for s in given.get("scales", cfg.scales)),
            visual_pool=str(given.get("visual_pool", cfg.policy.visual_pool)),
            overridden=frozenset(given),
        )
    return out


def recorded_store(path: Any) -> bool:
    """A store recorded on (or imported from) a robot without the simulator: its cameras are the
    robot's, named by its description, not robosuite's. Read from the root's JSON, zarr unloaded."""
    try:
        with open(os.path.join(str(path), "zarr.json")) as f:
            attrs = json.load(f).get("attributes", {})
    except (OSError, ValueError):
        return False
    return "robot" in attrs and "env" not in attrs


def validate_cameras(cfg: Any) -> None:
    """The policy's camera list: known names, each once, options only for cameras in it. A recorded
    store's cameras are checked against the store itself, by train's validate()."""
    d = cfg.data
    recorded = recorded_store(d.store)
    if not recorded:
        checks.camera(d, "camera", prefix="data.")  # first: named as typed when data.cameras comes from it
    cams = list(d.cameras)
    checks.require(
        len(cams) > 0,
        "data.cameras",
        cams,
        "give at least one camera, e.g. data.cameras=[agentview,robot0_eye_in_hand]",
    )
    if not recorded:
        checks.cameras(cams, "data.cameras")
    checks.require(
        len(set(cams)) == len(cams),
        "data.cameras",
        cams,
        "each camera at most once: a camera listed twice would feed the head the same view twice",
    )
    fields = CameraEncoderSchema.__dataclass_fields__
    for cam, node in cfg.camera_encoders.items():
        key = f"camera_encoders.{cam}"
        checks.require(
            cam in cams,
            key,
            node,
            f"options for a camera the policy does not see (data.cameras={checks.show(cams)})"
            f"{checks.did_you_mean(cam, cams)}; add {cam} to data.cameras or drop {key}",
        )
        checks.require(
            isinstance(node, DictConfig),
            key,
            node,
            f"must be a map of options, e.g. +{key}.scales=[1,2,3]; keys: {', '.join(fields)}",
        )
        for name in node:
            checks.require(
                name in fields,
                f"{key}.{name}",
                node[name],
                f"not a per-camera option{checks.did_you_mean(name, fields)}; keys: {', '.join(fields)}",
            )
        try:
            OmegaConf.merge(OmegaConf.structured(CameraEncoderSchema), node)
        except Exception as e:  # omegaconf's ValidationError: a value of the wrong type
            name = getattr(e, "full_key", None)
            raise checks.fail(
                f"{key}.{name}" if name else key, node[name] if name in node else node, str(e).splitlines()[0]
            ) from None


def validate_camera_encoders(cfg: Any) -> None:
    """Each camera's own encoder options, and its head pool against its features (what
    validate_policy checks for the shared pool and feature)."""
    if not cfg.camera_encoders:
        return  # every camera uses the shared encoder, scales and pool: already checked
    for cam, opts in camera_options(cfg).items():
        p = f"camera_encoders.{cam}."
        if "scales" in opts.overridden:
            validate_scales(opts.scales, p + "scales")
        if opts.overridden - {"scales", "visual_pool"}:
            enc = OmegaConf.create(opts.encoder)
            validate_encoder(enc, opts.scales, prefix=p)
            check_pretrained_encoder(enc)
        pool_key = p + "visual_pool" if "visual_pool" in opts.overridden else "policy.visual_pool"
        pool, feature = opts.visual_pool, opts.encoder["feature"]
        checks.require(pool in VISUAL_POOLS, pool_key, pool, f"must be one of {', '.join(VISUAL_POOLS)}")
        if feature == "tokens":
            checks.require(
                pool != "none",
                pool_key,
                pool,
                f"camera {cam}'s features are tokens: pool them with attn or keypoints (or set {p}feature=cls)",
            )
        else:
            checks.require(
                pool == "none",
                pool_key,
                pool,
                f"pools over the token grid, and camera {cam}'s features are {feature}: set "
                f"{p}feature=tokens or {pool_key}=none",
            )
        if pool == "attn":  # policies.obs_encoder.AttentionPool: 4 heads over policy.hidden
            checks.require(
                cfg.policy.hidden % 4 == 0,
                "policy.hidden",
                cfg.policy.hidden,
                f"must be a multiple of 4 with attn pooling (camera {cam})",
            )
