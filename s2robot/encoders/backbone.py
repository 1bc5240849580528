"""The bare ViT of a registered spec (timm's VisionTransformer with timm-style parameter names)."""

from __future__ import annotations

from functools import partial

import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

from s2robot.encoders.registry import EncoderSpec


def build_backbone(spec: EncoderSpec) -> nn.Module:
    """The bare ViT (timm-style parameter names, no classifier), randomly initialised."""
    return VisionTransformer(
        img_size=spec.img_size,
        patch_size=spec.patch_size,
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_classes=0,
        global_pool="",
    )
