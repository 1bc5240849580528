"""A frozen backbone wrapped with S²: camera frames in, multi-scale features out.

The fast path (bf16, compiled, pinned uploads) is ``s2robot.encoders.fast.accelerate`` on top of this."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from s2robot.encoders.normalize import normalize_images
from s2robot.encoders.registry import EncoderSpec
from s2robot.s2 import S2Error, s2_forward, scale_sizes

FEATURES = ("cls", "mean", "tokens")


# Float frames resized with bicubic or antialiasing overshoot [0, 1] a little; frames in [0, 255]
# or already normalised ([-1, 1], ImageNet z-scores) are far outside it.
RANGE_TOLERANCE = 0.01


def _check_unit_range(x: torch.Tensor) -> None:
    if x.numel() == 0:
        return
    lo, hi = (v.item() for v in torch.aminmax(x))
    # aminmax propagates NaN, and every comparison with NaN is False: test finiteness directly.
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("float images hold NaN or inf; pass finite values in [0, 1] (or the uint8 frames)")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = (
            "they look like 0-255 pixel values: divide by 255 or pass the uint8 frames"
            if hi > 2
            else "the encoder normalises them itself, so pass them before any normalisation"
        )
        raise ValueError(f"float images must hold values in [0, 1], these range over [{lo:g}, {hi:g}]; {hint}")


class FrozenS2Encoder(nn.Module):
    """Frozen ViT + S². Takes uint8 ``[B x] H x W x 3`` frames (numpy or torch) or float
    ``B x 3 x H x W`` tensors in [0, 1]; applies the encoder's own normalisation.

    ``feature``: ``"cls"`` (CLS token after the final LayerNorm, MVP's embedding),
    ``"mean"`` (mean of patch tokens) or ``"tokens"`` (CLS + all patch tokens).
    """

    def __init__(
        self,
        spec: EncoderSpec,
        backbone: nn.Module,
        *,
        scales,
        feature: str = "cls",
        output_grid: str = "native",
        weights_id: str = "unknown",
        max_batch: int | None = None,
    ):
        super().__init__()
        if feature not in FEATURES:
            raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
        scales = list(scales) if scales is not None else []
        scale_sizes(scales, spec.img_size)  # fail at build time, not at the first frame
        if output_grid not in ("native", "largest"):
            raise S2Error(f"output_grid must be 'native' or 'largest', got {output_grid!r}")
        self.spec = spec
        self.backbone = backbone
        self.scales = scales
        self.feature = feature
        self.output_grid = output_grid
        self.weights_id = weights_id
        self.max_batch = max_batch
        # Set by s2robot.encoders.fast.accelerate: what this encoder runs as, its compiled features.
        self.inference = None
        self.compiled = None
        self._staging: dict = {}
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):  # frozen: stays in eval mode whatever a caller asks
        return self

    @property
    def feature_dim(self) -> int:
        return self.spec.embed_dim * len(self.scales)

    @property
    def num_tokens(self) -> int:
        grid = self.spec.grid * (max(self.scales) if self.output_grid == "largest" else 1)
        return 1 + grid * grid

    @property
    def feature_shape(self) -> tuple[int, ...]:
        if self.feature == "tokens":
            return (self.num_tokens, self.feature_dim)
        return (self.feature_dim,)

    def describe(self) -> dict:
        return {
            "encoder": self.spec.name,
            "weights": self.weights_id,
            "scales": list(self.scales),
            "feature": self.feature,
            "output_grid": self.output_grid,
            "img_size": self.spec.img_size,
        }

    def preprocess(self, images) -> torch.Tensor:
        """Frames -> normalised float32 ``B x 3 x H x W`` on the encoder's device (the backbone's
        dtype is applied to the tiles only: normalisation and S²'s resizes stay float32)."""
        x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a numpy array or torch tensor of images, got {type(images).__name__}")
        from_uint8 = x.dtype == torch.uint8
        device = self.backbone.pos_embed.device
        if from_uint8:
            if x.ndim == 3:
                x = x[None]
            if x.ndim != 4 or x.shape[-1] != 3:
                raise ValueError(f"uint8 frames must be [B x] H x W x 3, got shape {tuple(x.shape)}")
            # Upload the bytes (4x fewer than floats), then convert on the device.
            x = self._upload(x, device).permute(0, 3, 1, 2).float().div_(255.0)
        elif x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"float images must be B x 3 x H x W in [0, 1], got shape {tuple(x.shape)}")
        x = x.to(device=device, dtype=torch.float32)
        if not from_uint8:
            _check_unit_range(x)
        return normalize_images(x, self.spec.mean, self.spec.std)

    def _upload(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        if device.type != "cuda" or x.device.type != "cpu":
            return x.to(device)
        # A pinned staging buffer per frame shape makes the copy asynchronous; the event keeps the
        # next call from overwriting it while the previous upload is still in flight.
        buf, done = self._staging.get(tuple(x.shape), (None, None))
        if buf is None:
            buf, done = torch.empty(x.shape, dtype=x.dtype).pin_memory(), torch.cuda.Event()
            self._staging[tuple(x.shape)] = (buf, done)
        else:
            done.synchronize()
        buf.copy_(x)
        out = buf.to(device, non_blocking=True)
        done.record()
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 images -> features in the backbone's dtype (what the fast path compiles)."""
        dtype = self.backbone.pos_embed.dtype
        tokens = s2_forward(
            lambda tiles: self.backbone.forward_features(tiles.to(dtype)),
            x,
            self.scales,
            tile_size=self.spec.img_size,
            num_prefix_tokens=1,
            output_grid=self.output_grid,
            max_batch=self.max_batch,
        )
        if self.feature == "cls":
            return tokens[:, 0]
        if self.feature == "mean":
            return tokens[:, 1:].mean(dim=1)
        return tokens

    def forward(self, images) -> torch.Tensor:
        with torch.inference_mode():
            x = self.preprocess(images)
            out = (self.compiled or self.features)(x).float()
        # Inference tensors cannot enter autograd; a plain copy lets a trainable head use them.
        return out if torch.is_inference_mode_enabled() else out.clone()
