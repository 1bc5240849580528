"""Frozen vision encoders: the registry of names, weights loading, and the S²-wrapped frozen model.

``build_encoder(name, weights=..., scales=...)`` is the one way to get any registered encoder,
wrapped with S² and frozen. The registry is imported eagerly (it imports nothing, not even
torch); the model-side names load on first use, so reading the registry (config validation, the
serving metadata) does not pull in torch and timm.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from s2robot.encoders.registry import (
    ENCODERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    EncoderSpec,
    UnknownEncoderError,
    get_spec,
    register,
    resolve_spec,
)

_LAZY = {
    "build_backbone": "s2robot.encoders.backbone",
    "FEATURES": "s2robot.encoders.frozen",
    "FrozenS2Encoder": "s2robot.encoders.frozen",
    "WeightsError": "s2robot.encoders.weights",
    "load_weights": "s2robot.encoders.weights",
}

__all__ = [
    "ENCODERS",
    "FEATURES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_STD",
    "EncoderSpec",
    "FrozenS2Encoder",
    "UnknownEncoderError",
    "WeightsError",
    "build_backbone",
    "build_encoder",
    "get_spec",
    "register",
    "resolve_spec",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_encoder(
    name: str,
    *,
    weights: str | Path,
    scales=(1,),
    feature: str = "cls",
    output_grid: str = "native",
    img_size: int | None = None,
    seed: int = 0,
    device="cpu",
    dtype=None,
    max_batch: int | None = None,
    cache_dir: str | Path | None = None,
    allow_family_mismatch: bool = False,
):
    """A frozen S²-wrapped encoder from a registered name.

    ``weights``: a local checkpoint path; ``"auto"`` (weights cache, then the published
    address); or ``"random"`` (explicit, for tests and pipeline checks only; seeded by
    ``seed``). ``dtype``: the backbone's (default float32; normalisation stays float32).
    """
    import torch

    from s2robot.encoders.backbone import build_backbone
    from s2robot.encoders.frozen import FrozenS2Encoder
    from s2robot.encoders.weights import load_weights

    spec = resolve_spec(name, img_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(spec)
    weights_id = load_weights(
        backbone, spec, weights, seed=seed, cache_dir=cache_dir, allow_family_mismatch=allow_family_mismatch
    )
    enc = FrozenS2Encoder(
        spec,
        backbone,
        scales=scales,
        feature=feature,
        output_grid=output_grid,
        weights_id=weights_id,
        max_batch=max_batch,
    )
    return enc.to(device=device, dtype=dtype or torch.float32)
