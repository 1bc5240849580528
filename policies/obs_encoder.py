"""Turns one step's inputs (frozen visual features, proprioception, privileged state) into
one embedding; shared by the MLP and transformer heads."""

from __future__ import annotations

import torch
import torch.nn as nn

VISUAL_POOLS = ("none", "attn")


class AttentionPool(nn.Module):
    """A learned query attends over the patch tokens: lets the head pick the spatial detail
    (where the cube is) that a CLS or mean vector may average away."""

    def __init__(self, dim: int, out_dim: int, num_heads: int = 4):
        super().__init__()
        self.proj = nn.Linear(dim, out_dim)
        self.query = nn.Parameter(torch.randn(1, 1, out_dim) * 0.02)
        self.attn = nn.MultiheadAttention(out_dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # B x N x D -> B x out_dim
        kv = self.proj(tokens)
        pooled, _ = self.attn(self.query.expand(tokens.shape[0], -1, -1), kv, kv)
        return self.norm(pooled[:, 0])


class ObsEncoder(nn.Module):
    """Each input projected on its own (MVP's BC shape), then concatenated."""

    def __init__(self, input_shapes: dict[str, tuple[int, ...]], hidden: int, visual_pool: str = "none"):
        super().__init__()
        if visual_pool not in VISUAL_POOLS:
            raise ValueError(f"policy.visual_pool must be one of {VISUAL_POOLS}, got {visual_pool!r}")
        self.keys = sorted(input_shapes)
        self.proj = nn.ModuleDict()
        for key in self.keys:
            shape = tuple(input_shapes[key])
            if len(shape) == 2:  # tokens
                if visual_pool != "attn":
                    raise ValueError(f"input {key!r} is tokens {shape}: set policy.visual_pool=attn "
                                     f"or use encoder.feature=cls|mean")
                self.proj[key] = AttentionPool(shape[1], hidden)
            elif len(shape) == 1:
                self.proj[key] = nn.Sequential(nn.Linear(shape[0], hidden), nn.LayerNorm(hidden))
            else:
                raise ValueError(f"input {key!r} has unsupported shape {shape}")
        self.out_dim = hidden * len(self.keys)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``obs[k]``: ``B x *shape`` (already normalised) -> ``B x out_dim``."""
        return torch.cat([self.proj[k](obs[k]) for k in self.keys], dim=-1)
