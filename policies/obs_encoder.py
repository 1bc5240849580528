"""Turns one step's inputs (frozen visual features, proprioception, privileged state) into
one embedding; shared by the MLP and transformer heads."""

from __future__ import annotations

import torch
import torch.nn as nn

VISUAL_POOLS = ("none", "attn", "keypoints")


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


class SpatialSoftmaxPool(nn.Module):
    """Spatial softmax over the patch-token grid (robomimic's keypoint layer, on frozen tokens):
    each of ``num_kp`` learned maps is turned into the expected (x, y) of its softmax over the
    grid. Position is what the head must read (where the cube is relative to the gripper), and a
    soft argmax reads it at sub-token precision with few parameters, so it overfits less on few
    demos than pooling whole token vectors. The CLS token is projected alongside."""

    def __init__(self, num_tokens: int, dim: int, out_dim: int, num_kp: int = 32):
        super().__init__()
        grid = int(round((num_tokens - 1) ** 0.5))
        if grid * grid != num_tokens - 1:
            raise ValueError(f"keypoints need CLS + a square token grid, got {num_tokens} tokens")
        self.to_maps = nn.Linear(dim, num_kp)
        self.log_temp = nn.Parameter(torch.zeros(()))
        lin = torch.linspace(-1.0, 1.0, grid)
        ys, xs = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("coords", torch.stack([xs.flatten(), ys.flatten()], dim=-1), persistent=False)
        self.out = nn.Sequential(nn.Linear(2 * num_kp + dim, out_dim), nn.LayerNorm(out_dim))

    def keypoints(self, tokens: torch.Tensor) -> torch.Tensor:  # B x (1+G²) x D -> B x K x 2, in [-1, 1]
        maps = self.to_maps(tokens[:, 1:]) / self.log_temp.exp()  # B x G² x K
        return torch.einsum("bnk,nc->bkc", maps.softmax(dim=1), self.coords)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # B x (1+G²) x D -> B x out_dim
        return self.out(torch.cat([self.keypoints(tokens).flatten(1), tokens[:, 0]], dim=-1))


class ObsEncoder(nn.Module):
    """Each input projected on its own (MVP's BC shape), then concatenated. Each camera's
    features are their own input (``vision_<camera>``), so cameras are fused here too.

    ``visual_pool`` pools every token input; ``visual_pools`` (input key -> pool) overrides it for
    some, e.g. keypoints over the wrist camera's tokens beside a CLS vector of another camera."""

    def __init__(
        self,
        input_shapes: dict[str, tuple[int, ...]],
        hidden: int,
        visual_pool: str = "none",
        visual_pools: dict[str, str] | None = None,
    ):
        super().__init__()
        pools = dict(visual_pools or {})
        for key, pool in {"policy.visual_pool": visual_pool, **pools}.items():
            if pool not in VISUAL_POOLS:
                raise ValueError(f"the visual pool of {key} must be one of {VISUAL_POOLS}, got {pool!r}")
        if unknown := sorted(set(pools) - set(input_shapes)):
            raise ValueError(f"visual_pools names inputs {unknown} the head does not have ({sorted(input_shapes)})")
        self.keys = sorted(input_shapes)
        self.proj = nn.ModuleDict()
        for key in self.keys:
            shape = tuple(input_shapes[key])
            pool = pools.get(key, visual_pool)
            if len(shape) == 2:  # tokens
                if pool == "attn":
                    self.proj[key] = AttentionPool(shape[1], hidden)
                elif pool == "keypoints":
                    self.proj[key] = SpatialSoftmaxPool(shape[0], shape[1], hidden)
                else:
                    raise ValueError(
                        f"input {key!r} is tokens {shape}: set policy.visual_pool=attn|keypoints (or "
                        f"that camera's camera_encoders.<camera>.visual_pool) or use "
                        f"encoder.feature=cls|mean"
                    )
            elif len(shape) == 1:
                self.proj[key] = nn.Sequential(nn.Linear(shape[0], hidden), nn.LayerNorm(hidden))
            else:
                raise ValueError(f"input {key!r} has unsupported shape {shape}")
        self.out_dim = hidden * len(self.keys)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``obs[k]``: ``B x *shape`` (already normalised) -> ``B x out_dim``."""
        return torch.cat([self.proj[k](obs[k]) for k in self.keys], dim=-1)
