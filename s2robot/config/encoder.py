"""The ``encoder`` group (configs/encoder/*.yaml: one per registered encoder) and the run's S² ``scales``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.errors import ConfigError

# s2robot.encoders.frozen.FEATURES (a test keeps them equal; importing it here would load torch)
FEATURES = ("cls", "mean", "tokens")
OUTPUT_GRIDS = ("native", "largest")
# s2robot.encoders.fast.DTYPE_CHOICES (a test keeps them equal; importing it would load torch)
DTYPES = ("auto", "fp32", "bf16")


@dataclass
class EncoderSchema:
    name: str = MISSING
    weights: str | None = MISSING  # a path, auto or random
    img_size: int | None = MISSING
    feature: str = MISSING
    output_grid: str = MISSING
    batch_size: int = MISSING
    dtype: str = MISSING  # the weights' dtype when caching features: fp32 | bf16 | auto (bf16 on CUDA)
    seed: int = MISSING
    allow_family_mismatch: bool = MISSING  # s2robot.encoders.weights.check_family's override


def validate_scales(scales: Any, key: str = "scales", *, from_one: bool = False) -> None:
    values = list(scales)
    checks.require(len(values) > 0, key, values, "scales is empty: give at least one scale, e.g. [1] or [1,2]")
    checks.require(all(s >= 1 for s in values), key, values, "each scale must be a positive integer, e.g. [1] or [1,2]")
    checks.require(len(set(values)) == len(values), key, values, "each scale at most once, e.g. [1,2]")
    if from_one:
        checks.require(
            values == sorted(values) and values[0] == 1, key, values, "must start at 1 and increase, e.g. [1] or [1,2]"
        )


def validate_encoder(encoder: Any, scales: Any, prefix: str = "encoder.") -> None:
    """Names, sizes and scales; the weights file is checked where it is used (weights=auto may download)."""
    from s2robot.encoders.registry import get_spec  # UnknownEncoderError lists the known encoders

    spec = get_spec(encoder.name)
    if encoder.img_size is not None:
        checks.require(
            encoder.img_size > 0 and encoder.img_size % spec.patch_size == 0,
            prefix + "img_size",
            encoder.img_size,
            f"must be a positive multiple of {spec.name}'s patch size {spec.patch_size} "
            f"or null (native {spec.img_size} px)",
        )
    checks.choice(encoder, "feature", FEATURES, prefix=prefix)
    checks.choice(encoder, "output_grid", OUTPUT_GRIDS, prefix=prefix)
    checks.number(encoder, "batch_size", 1, prefix=prefix)
    checks.choice(encoder, "dtype", DTYPES, prefix=prefix)
    validate_scales(scales)


def check_pretrained_encoder(encoder: Any) -> None:
    """A missing ``<run dir>/encoder.pt`` is a pre-training run that has not been made yet: say which
    command makes it (the CPU demo's ``runs/pretrain/demo/encoder.pt`` is the usual one)."""
    weights = encoder.weights
    if weights in (None, "auto", "random") or Path(weights).name != "encoder.pt" or Path(weights).is_file():
        return
    run_dir = Path(weights).parent
    pick = "" if encoder.name == "vit_t" else f" encoder={encoder.name}"
    makes = {
        "runs/pretrain/demo": "`make demo` makes it, or ",
        "runs/pretrain/cpu": "`make pretrain-cpu` makes it, or ",
    }
    make = next((m for d, m in makes.items() if run_dir.as_posix().endswith(d)), "")
    minutes = " (~4 min on 2 cores)" if encoder.name == "vit_t" else ""
    raise ConfigError(
        f"encoder.weights={weights}: no such file, the encoder of an MAE pre-training run that has not "
        f"been made here. {make}pre-train it first: python scripts/pretrain_mae.py +pretrain=cpu{pick} "
        f"scales=[1] train.steps=1000 hydra.run.dir={run_dir}{minutes}; "
        f"or pass encoder.weights=random for a pipeline check"
    )
