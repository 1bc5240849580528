"""Frozen vision encoders: the registry of names, weights loading, and the S²-wrapped frozen model.

``build_encoder(name, weights=..., scales=...)`` is the one way to get any registered encoder,
wrapped with S² and frozen.
"""

from __future__ import annotations

from pathlib import Path

import torch

from s2robot.encoders.backbone import build_backbone
from s2robot.encoders.frozen import FEATURES, FrozenS2Encoder
from s2robot.encoders.registry import (ENCODERS, IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD,
                                       EncoderSpec, UnknownEncoderError, get_spec, register, resolve_spec)
from s2robot.encoders.weights import WeightsError, load_weights

__all__ = ["ENCODERS", "FEATURES", "IMAGENET_MEAN", "IMAGENET_STD", "INCEPTION_MEAN", "INCEPTION_STD", "EncoderSpec",
           "FrozenS2Encoder", "UnknownEncoderError", "WeightsError", "build_backbone", "build_encoder", "get_spec",
           "register", "resolve_spec"]


def build_encoder(
    name: str,
    *,
    weights: str | Path,
    scales=(1,),
    feature: str = "cls",
    output_grid: str = "native",
    img_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_batch: int | None = None,
    cache_dir: str | Path | None = None,
    allow_family_mismatch: bool = False,
):
    """A frozen S²-wrapped encoder from a registered name.

    ``weights``: a local checkpoint path; ``"auto"`` (weights cache, then the published
    address); or ``"random"`` (explicit, for tests and pipeline checks only; seeded by
    ``seed``).
    """
    spec = resolve_spec(name, img_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(spec)
    weights_id = load_weights(backbone, spec, weights, seed=seed, cache_dir=cache_dir,
                              allow_family_mismatch=allow_family_mismatch)
    enc = FrozenS2Encoder(spec, backbone, scales=scales, feature=feature, output_grid=output_grid,
                          weights_id=weights_id, max_batch=max_batch)
    return enc.to(device=device, dtype=dtype)
