"""The paper's robotic head: a small causal transformer over the last ``n_obs_steps`` steps
of (visual features, proprioception), predicting a chunk of future actions."""

from __future__ import annotations

import torch
import torch.nn as nn

from policies.base import BCPolicy
from policies.obs_encoder import ObsEncoder


class TransformerPolicy(BCPolicy):
    def __init__(
        self,
        input_shapes,
        action_dim: int,
        n_obs_steps: int = 4,
        horizon: int = 8,
        hidden: int = 256,
        depth: int = 3,
        num_heads: int = 4,
        visual_pool: str = "none",
        dropout: float = 0.1,
        visual_pools: dict[str, str] | None = None,
    ):
        super().__init__(input_shapes, action_dim, n_obs_steps=n_obs_steps, horizon=horizon)
        self.obs_encoder = ObsEncoder(self.input_shapes, hidden, visual_pool, visual_pools)
        self.embed = nn.Linear(self.obs_encoder.out_dim, hidden)
        self.pos = nn.Parameter(torch.zeros(1, n_obs_steps, hidden))
        layer = nn.TransformerEncoderLayer(hidden, num_heads, 4 * hidden, dropout, batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, horizon * action_dim)
        self.register_buffer(
            "causal_mask", nn.Transformer.generate_square_subsequent_mask(n_obs_steps), persistent=False
        )

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        b, t = next(iter(obs.values())).shape[:2]
        steps = self.obs_encoder({k: v.flatten(0, 1) for k, v in obs.items()}).view(b, t, -1)
        x = self.embed(steps) + self.pos[:, :t]
        x = self.transformer(x, mask=self.causal_mask[:t, :t], is_causal=True)
        return self.out(self.norm(x[:, -1])).view(b, self.horizon, self.action_dim)
