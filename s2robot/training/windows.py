"""Training samples from per-step arrays: windows of past observations and chunks of future
actions, never crossing an episode boundary (padded by repeating the edge step)."""

from __future__ import annotations

import numpy as np
import torch


def episode_bounds(episode_ends: np.ndarray) -> np.ndarray:
    """``E x 2`` array of [start, end) per episode."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    return np.stack([np.concatenate([[0], ends[:-1]]), ends], axis=1)


def split_episodes(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation split by whole episodes (frames of one episode are never on both sides)."""
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = int(round(n_episodes * val_fraction))
    if n_episodes >= 2 and val_fraction > 0:
        n_val = min(max(n_val, 1), n_episodes - 1)
    else:
        n_val = 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def window_indices(episode_ends: np.ndarray, episodes: np.ndarray, n_obs_steps: int, horizon: int):
    """For every step t of the chosen episodes: observation rows t-k+1..t and action rows
    t..t+H-1, clamped to the episode (``M x k`` and ``M x H`` int64)."""
    bounds = episode_bounds(episode_ends)[np.asarray(episodes, dtype=np.int64)]
    obs_idx, act_idx = [], []
    for start, end in bounds:
        t = np.arange(start, end)[:, None]
        obs_idx.append(np.clip(t + np.arange(-n_obs_steps + 1, 1), start, end - 1))
        act_idx.append(np.clip(t + np.arange(horizon), start, end - 1))
    if not obs_idx:
        return np.zeros((0, n_obs_steps), np.int64), np.zeros((0, horizon), np.int64)
    return np.concatenate(obs_idx), np.concatenate(act_idx)


class WindowData:
    """All samples of a split, gathered from in-memory tensors (no DataLoader workers:
    cached features are small enough, and indexing them is faster than any pipeline)."""

    def __init__(
        self,
        inputs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        episode_ends,
        episodes,
        n_obs_steps: int,
        horizon: int,
    ):
        self.inputs = inputs
        self.actions = actions
        obs_idx, act_idx = window_indices(episode_ends, episodes, n_obs_steps, horizon)
        self.obs_idx = torch.from_numpy(obs_idx)
        self.act_idx = torch.from_numpy(act_idx)

    def __len__(self) -> int:
        return len(self.obs_idx)

    def batch(self, rows: torch.Tensor, device: torch.device | str = "cpu"):
        """Samples ``rows`` -> (inputs ``key -> B x k x *shape`` float32, actions ``B x H x A``)."""
        oi, ai = self.obs_idx[rows], self.act_idx[rows]
        obs = {k: v[oi].to(device=device, dtype=torch.float32, non_blocking=True) for k, v in self.inputs.items()}
        return obs, self.actions[ai].to(device=device, dtype=torch.float32, non_blocking=True)
