"""The one description of a frozen encoder as a run uses it: registry name, weights argument,
S² scales, feature form, grid, native size, init seed. Built from a Hydra ``encoder`` group plus
``scales``, written into checkpoints, read back from them, and turned into the encoder itself.

Checkpoints store ``EncoderConfig.to_checkpoint(encoder)``: these fields (``encoder`` for the
name, ``weights_arg`` for the weights argument) plus the built encoder's ``weights`` identity
(file MD5 or ``random:seedN``), so a policy refuses other weights than the ones it trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EncoderConfig:
    name: str
    weights: str
    scales: tuple[int, ...] = (1,)
    feature: str = "cls"
    output_grid: str = "native"
    img_size: int | None = None
    seed: int = 0
    # an MVP/MAE-format file into a timm ViT is refused (other normalisation, other heads) unless asked
    allow_family_mismatch: bool = False

    @classmethod
    def from_cfg(cls, encoder_cfg: Mapping[str, Any], scales) -> EncoderConfig:
        """From a composed ``encoder`` config group and the run's ``scales``."""
        return cls(
            name=str(encoder_cfg["name"]),
            weights=str(encoder_cfg["weights"]),
            scales=tuple(int(s) for s in scales),
            feature=str(encoder_cfg.get("feature", "cls")),
            output_grid=str(encoder_cfg.get("output_grid", "native")),
            img_size=encoder_cfg.get("img_size"),
            seed=int(encoder_cfg.get("seed") or 0),
            allow_family_mismatch=bool(encoder_cfg.get("allow_family_mismatch") or False),
        )

    @classmethod
    def from_checkpoint(cls, info: Mapping[str, Any]) -> EncoderConfig:
        """From a checkpoint's ``encoder`` entry (any checkpoint version 1 wrote)."""
        return cls(
            name=str(info["encoder"]),
            weights=str(info["weights_arg"]),
            scales=tuple(int(s) for s in info["scales"]),
            feature=str(info.get("feature", "cls")),
            output_grid=str(info.get("output_grid", "native")),
            img_size=info.get("img_size"),
            seed=int(info.get("seed") or 0),
            allow_family_mismatch=bool(info.get("allow_family_mismatch") or False),
        )

    def build(self, device="cpu", weights: str | None = None, **kw):
        """The frozen S² encoder; ``weights`` replaces the stored argument (a file that moved)."""
        from s2robot.encoders import build_encoder

        return build_encoder(
            self.name,
            weights=weights or self.weights,
            scales=list(self.scales),
            feature=self.feature,
            output_grid=self.output_grid,
            img_size=self.img_size,
            seed=self.seed,
            device=device,
            allow_family_mismatch=self.allow_family_mismatch,
            **kw,
        )

    def to_checkpoint(self, encoder, **extra: Any) -> dict:
        """The checkpoint's ``encoder`` entry: what the built encoder describes, and how to rebuild it."""
        return {
            **encoder.describe(),
            "weights_arg": self.weights,
            "seed": self.seed,
            "allow_family_mismatch": self.allow_family_mismatch,
            **extra,
        }
