"""Parameters and multiply-accumulates of an encoder at a set of scales.

Counted with torch's FLOP counter on the meta device: no weights, no compute, so even
ViT-H costs well under a second. MACs = FLOPs / 2 (the paper's Table 10 unit).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from s2robot.encoders import build_backbone, resolve_spec
from s2robot.s2 import s2_forward


def encoder_costs(name: str, scales=(1,), img_size: int | None = None) -> dict:
    """``{"params": int, "gmacs": float}`` per image for encoder ``name`` wrapped with S² at ``scales``."""
    spec = resolve_spec(name, img_size)
    with torch.device("meta"):
        backbone = build_backbone(spec)
        x = torch.empty(1, 3, spec.img_size, spec.img_size)
    with FlopCounterMode(display=False) as counter:
        s2_forward(backbone.forward_features, x, list(scales), tile_size=spec.img_size, num_prefix_tokens=1)
    return {
        "params": sum(p.numel() for p in backbone.parameters()),
        "gmacs": counter.get_total_flops() / 2e9,
    }
