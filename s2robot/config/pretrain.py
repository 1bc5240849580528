"""configs/pretrain_mae.yaml (and the +pretrain=cpu preset): MAE pre-training (``s2robot-pretrain``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.encoder import EncoderSchema, validate_encoder, validate_scales


@dataclass
class MAESchema:
    mask_ratio: float = MISSING
    decoder_dim: int = MISSING
    decoder_depth: int = MISSING
    decoder_heads: int = MISSING
    norm_pix_loss: bool = MISSING


@dataclass
class AugSchema:
    crop_scale: list[float] = MISSING
    crop_ratio: list[float] = MISSING
    hflip: bool = MISSING


@dataclass
class FramesSchema:
    stores: list[str] = MISSING
    camera: str = MISSING
    cameras: list[str] | None = None  # several cameras' frames; null = [camera]
    folders: list[str] = MISSING
    stride: int = MISSING
    frame_size: int | None = MISSING
    max_frames: int | None = MISSING
    aug: AugSchema = field(default_factory=AugSchema)


@dataclass
class PretrainLoopSchema:
    steps: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    min_lr: float = MISSING
    warmup_steps: int = MISSING
    weight_decay: float = MISSING
    betas: list[float] = MISSING
    grad_clip: float | None = MISSING
    log_every: int = MISSING
    save_every: int = MISSING
    time_limit_min: float | None = MISSING
    num_threads: int | None = MISSING
    progress: bool = MISSING


@dataclass
class VisSchema:
    n_images: int = MISSING


@dataclass
class PretrainMAESchema:
    encoder: EncoderSchema = field(default_factory=EncoderSchema)
    scales: list[int] = MISSING
    seed: int = MISSING
    device: str = MISSING
    resume: bool = MISSING
    mae: MAESchema = field(default_factory=MAESchema)
    data: FramesSchema = field(default_factory=FramesSchema)
    train: PretrainLoopSchema = field(default_factory=PretrainLoopSchema)
    vis: VisSchema = field(default_factory=VisSchema)


def _pair(node: Any, key: str, low: float, high: float | None, prefix: str) -> None:
    pair = list(node[key])
    ok = len(pair) == 2 and low < pair[0] <= pair[1] and (high is None or pair[1] <= high)
    bound = f"{low:g} < low <= high" + (f" <= {high:g}" if high is not None else "")
    checks.require(ok, prefix + key, pair, f"must be [low, high] with {bound}")


def validate_pretrain_mae(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    validate_scales(cfg.scales, from_one=True)
    checks.number(cfg, "seed", 0)
    checks.device(cfg)
    m = cfg.mae
    checks.number(m, "mask_ratio", 0, 1, low_open=True, high_open=True, prefix="mae.", hint="MAE uses 0.75")
    for key in ("decoder_dim", "decoder_depth", "decoder_heads"):
        checks.number(m, key, 1, prefix="mae.")
    checks.require(
        m.decoder_dim % m.decoder_heads == 0,
        "mae.decoder_heads",
        m.decoder_heads,
        f"must divide mae.decoder_dim={m.decoder_dim}",
    )
    d = cfg.data
    checks.camera(d, "camera", prefix="data.")
    if d.cameras is not None:
        checks.require(len(d.cameras) > 0, "data.cameras", list(d.cameras), "must name at least one camera, or be null")
        checks.cameras(list(d.cameras), "data.cameras")
    checks.number(d, "stride", 1, prefix="data.")
    checks.number(d, "frame_size", 1, optional=True, prefix="data.")
    checks.number(d, "max_frames", 1, optional=True, prefix="data.")
    _pair(d.aug, "crop_scale", 0, 1, "data.aug.")
    _pair(d.aug, "crop_ratio", 0, None, "data.aug.")
    t = cfg.train
    checks.number(t, "steps", 1, prefix="train.")
    checks.number(t, "batch_size", 1, prefix="train.")
    checks.number(t, "lr", 0, low_open=True, prefix="train.")
    checks.number(t, "min_lr", 0, t.lr, prefix="train.", hint=f"the floor of the cosine decay from train.lr={t.lr:g}")
    checks.number(t, "warmup_steps", 0, prefix="train.")
    checks.number(t, "weight_decay", 0, prefix="train.")
    betas = list(t.betas)
    checks.require(
        len(betas) == 2 and all(0 <= b < 1 for b in betas),
        "train.betas",
        betas,
        "must be two numbers in [0, 1), e.g. [0.9,0.95]",
    )
    checks.number(t, "grad_clip", 0, optional=True, prefix="train.", hint="0 or null: no clipping")
    checks.number(t, "log_every", 1, prefix="train.")
    checks.number(t, "save_every", 1, prefix="train.")
    checks.number(t, "time_limit_min", 0, low_open=True, optional=True, prefix="train.")
    checks.number(t, "num_threads", 1, optional=True, prefix="train.")
    checks.number(cfg.vis, "n_images", 1, prefix="vis.")
    validate_encoder(cfg.encoder, cfg.scales)  # last: the encoder registry loads torch
