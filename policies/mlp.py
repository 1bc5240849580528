"""The default head: MVP's behaviour-cloning shape — each input projected, concatenated,
an MLP to a chunk of actions. Memoryless (looks at the current step only)."""

from __future__ import annotations

import torch
import torch.nn as nn

from policies.base import BCPolicy
from policies.obs_encoder import ObsEncoder


class MLPPolicy(BCPolicy):
    def __init__(
        self,
        input_shapes,
        action_dim: int,
        horizon: int = 8,
        hidden: int = 256,
        depth: int = 3,
        visual_pool: str = "none",
        dropout: float = 0.0,
        n_obs_steps: int = 1,
        visual_pools: dict[str, str] | None = None,
    ):
        if n_obs_steps != 1:
            raise ValueError("the mlp head is memoryless: use policy.n_obs_steps=1 or policy=transformer")
        super().__init__(input_shapes, action_dim, n_obs_steps=1, horizon=horizon)
        self.obs_encoder = ObsEncoder(self.input_shapes, hidden, visual_pool, visual_pools)
        layers, width = [], self.obs_encoder.out_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, horizon * action_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        last = {k: v[:, -1] for k, v in obs.items()}
        return self.mlp(self.obs_encoder(last)).view(-1, self.horizon, self.action_dim)
