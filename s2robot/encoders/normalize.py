"""An encoder's input normalisation (its spec's mean/std), in one place for the frozen encoder,
MAE pre-training and its pictures. Always float32: bf16 loses the small differences it makes."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def image_stats(mean: Sequence[float], std: Sequence[float], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 x 3 x 1 x 1`` float32 tensors, to broadcast over ``B x 3 x H x W`` images."""
    return (
        torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1),
        torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1),
    )


def normalize_images(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``B x 3 x H x W`` images in [0, 1] -> normalised, in float32."""
    m, s = image_stats(mean, std, x.device)
    return (x.float() - m) / s
