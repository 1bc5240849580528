"""What MAE pre-training sees of a frame: a random resized crop (with an optional flip), and with
S² that crop at every scale, cut into native-size tiles as the frozen encoder will see it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from s2robot.s2 import resize_to, scale_sizes, split_chessboard


def s2_views(x: torch.Tensor, scales: Sequence[float], tile_size: int) -> list[torch.Tensor]:
    """One tile batch per scale: ``x`` resized to ``s * tile_size`` and cut into ``s*s`` tiles.

    ``x`` may be larger than the native size (a crop of a high-resolution frame): each scale
    is then built from its pixels, not from the scale-1 view.
    """
    return [split_chessboard(resize_to(x, size), size // tile_size) for size in scale_sizes(scales, tile_size)]


def random_resized_crop(
    frames: torch.Tensor,
    out_size: int,
    *,
    scale=(0.5, 1.0),
    ratio=(3 / 4, 4 / 3),
    hflip: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 ``B x H x W x 3`` frames -> float ``B x 3 x out x out`` in [0, 1], one random crop each.

    ``scale`` is the crop's fraction of the frame area, ``ratio`` its aspect ratio (log-uniform);
    ``scale=(1, 1), ratio=(1, 1)`` is the whole frame.
    """
    b = frames.shape[0]
    x = frames.permute(0, 3, 1, 2).float().div_(255.0)
    u = torch.rand(b, 5, generator=generator, dtype=torch.float64)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (2 * u[:, 2] - 1) * (1 - w)  # crop centre in [-1, 1] frame coordinates, crop inside the frame
    cy = (2 * u[:, 3] - 1) * (1 - h)
    flip = torch.where((u[:, 4] < 0.5) & hflip, -1.0, 1.0).to(torch.float64)
    zero = torch.zeros_like(w)
    theta = torch.stack([torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)
    theta = theta.to(device=x.device, dtype=torch.float32)
    if frames.shape[1] == frames.shape[2] == out_size and scale == (1, 1) and ratio == (1, 1):
        return x
    grid = F.affine_grid(theta, [b, 3, out_size, out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp_(0, 1)
