"""configs/probe_encoder.yaml: linear probe of a frozen encoder's features (``s2robot-probe``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.encoder import EncoderSchema, check_pretrained_encoder, validate_encoder


@dataclass
class ProbeEncoderSchema:
    encoder: EncoderSchema = field(default_factory=EncoderSchema)
    scales: list[int] = MISSING
    store: str = MISSING
    camera: str = MISSING
    n_folds: int = MISSING
    seed: int = MISSING
    device: str = MISSING
    output: str | None = MISSING


def validate_probe_encoder(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    checks.require(bool(cfg.store), "store", cfg.store, "a demonstration store, e.g. data/cube_pick_224.zarr")
    checks.camera(cfg, "camera")
    checks.number(cfg, "n_folds", 2, hint="held-out folds of the ridge regression")
    checks.number(cfg, "seed", 0)
    checks.device(cfg)
    validate_encoder(cfg.encoder, cfg.scales)  # last: the encoder registry loads torch
    check_pretrained_encoder(cfg.encoder)
