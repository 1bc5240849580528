"""What the held-out episodes say during training: the loss on their windows every epoch, and the
mean absolute action error (in the robot's units) that stands in for rollouts when a store has no
simulator behind it."""

from __future__ import annotations

import torch

from s2robot.training.windows import WindowData


@torch.no_grad()
def val_action_error(policy, data: WindowData, batch_size: int, device) -> float:
    """Mean absolute error of the predicted action chunks on held-out episodes, in the robot's
    units: what a store without a simulator (recorded on an arm) can tell instead of rollouts."""
    if len(data) == 0:
        return float("nan")
    policy.eval()
    total, count = 0.0, 0
    for rows in torch.arange(len(data)).split(batch_size):
        obs, act = data.batch(rows, device)
        total += (policy.predict(obs) - act).abs().sum().item()
        count += act.numel()
    policy.train()
    return total / count


@torch.no_grad()
def val_loss(policy, data: WindowData, batch_size: int, device) -> float:
    if len(data) == 0:
        return float("nan")
    policy.eval()
    total = 0.0
    for rows in torch.arange(len(data)).split(batch_size):
        obs, act = data.batch(rows, device)
        total += policy.compute_loss(obs, act).item() * len(rows)
    policy.train()
    return total / len(data)
