"""What a policy observes, in plain numpy: proprioception and camera frames from the robot, and
for the baselines the privileged cube state a perfect perception system would give.

Evaluation, the simulated robot and training all build policy inputs here, so a policy sees the
same thing in every place it runs. No simulator import: the server and the client-side sim share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Privileged state (never in the env's observation): baselines and the linear probe read it; the
# scripted expert uses the raw pose in ``info``.
PRIVILEGED_KEYS = ("cube_pos", "cube_yaw")


def cube_yaw_features(cube_quat: np.ndarray) -> np.ndarray:
    """``[sin 4θ, cos 4θ]`` of the cube's yaw θ from xyzw quaternions (``... x 4``): continuous,
    and equal for the four yaws a cube cannot be told apart at (it repeats every 90 deg)."""
    x, y, z, w = np.moveaxis(np.asarray(cube_quat, dtype=np.float64), -1, 0)
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.stack([np.sin(4 * yaw), np.cos(4 * yaw)], axis=-1).astype(np.float32)


def privileged_obs(info: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The privileged inputs of one step, from the env's ``info``."""
    return {
        "cube_pos": np.asarray(info["cube_pos"], dtype=np.float32),
        "cube_yaw": cube_yaw_features(info["cube_quat"]),
    }


def policy_obs(obs: Mapping[str, np.ndarray], info: Mapping[str, Any], keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The policy's inputs ``keys`` from one env step: observation entries, plus privileged ones from ``info``."""
    out = {k: obs[k] for k in keys if k in obs}
    if any(k in PRIVILEGED_KEYS for k in keys):
        out.update({k: v for k, v in privileged_obs(info).items() if k in keys})
    return out
