"""Per-key mean/std normalisation whose statistics live in the policy's state dict,
so a checkpoint always carries the normaliser its weights were trained with."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn as nn


class Normalizer(nn.Module):
    def __init__(self, shapes: Mapping[str, tuple[int, ...]]):
        super().__init__()
        self.keys = sorted(shapes)
        for k in self.keys:
            self.register_buffer(f"{k}_mean", torch.zeros(shapes[k]))
            self.register_buffer(f"{k}_std", torch.ones(shapes[k]))

    @torch.no_grad()
    def fit(self, data: Mapping[str, np.ndarray | torch.Tensor], min_std: float = 1e-2) -> None:
        """Statistics over the leading (time) axis of each array; tiny stds are floored so
        constant dimensions (e.g. a quaternion component) do not blow up."""
        for k in self.keys:
            x = torch.as_tensor(np.asarray(data[k]), dtype=torch.float64).reshape(-1, *getattr(self, f"{k}_mean").shape)
            getattr(self, f"{k}_mean").copy_(x.mean(0))
            getattr(self, f"{k}_std").copy_(x.std(0).clamp_min(min_std))

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{key}_mean")) / getattr(self, f"{key}_std")

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"{key}_std") + getattr(self, f"{key}_mean")
