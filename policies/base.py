"""What every behaviour-cloning head shares: the normaliser, the loss, un-normalised prediction."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from policies.normalizer import Normalizer


class BCPolicy(nn.Module):
    """Maps a window of ``n_obs_steps`` observations to a chunk of ``horizon`` actions.

    Inputs are a dict ``key -> B x n_obs_steps x *shape`` in raw units; the policy
    normalises them itself with statistics fitted on the training episodes.
    """

    def __init__(self, input_shapes: dict[str, tuple[int, ...]], action_dim: int, n_obs_steps: int, horizon: int):
        super().__init__()
        self.input_shapes = {k: tuple(v) for k, v in input_shapes.items()}
        self.action_dim = action_dim
        self.n_obs_steps = n_obs_steps
        self.horizon = horizon
        self.normalizer = Normalizer({**self.input_shapes, "action": (action_dim,)})

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised inputs -> normalised action chunk ``B x horizon x action_dim``."""
        raise NotImplementedError

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: self.normalizer.normalize(k, obs[k].float()) for k in self.input_shapes}

    def compute_loss(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        target = self.normalizer.normalize("action", actions)
        return F.mse_loss(self(self.normalize_obs(obs)), target)

    @torch.no_grad()
    def predict(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw inputs -> action chunk in the env's units, ``B x horizon x action_dim``."""
        return self.normalizer.unnormalize("action", self(self.normalize_obs(obs)))
