"""Scripted cube-picking expert for CubePick-v0, driven by the privileged cube pose in `info`.

Phases: approach (hover above the cube, gripper open, yaw aligned with a cube face,
gripper kept pointing straight down),
descend, close the gripper for `close_steps` steps, lift. If the cube is not rising while
lifting (missed grasp), it opens and starts over, so noisy demos show recoveries.
Actions are OSC_POSE deltas in world axes: +-1 = +-5 cm and +-0.5 rad per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_POS_SCALE = 0.05  # m per unit action (robosuite OSC_POSE default output range)
_ROT_SCALE = 0.5  # rad per unit action


def _quat_xyzw_to_mat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _yaw(rot: np.ndarray) -> float:
    """Heading of the frame's x axis in the world xy plane."""
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def tilt_error(eef_quat: np.ndarray) -> np.ndarray:
    """World-frame rotation vector that turns the gripper's approach axis (eef z) straight down."""
    z_axis = _quat_xyzw_to_mat(eef_quat)[:, 2]
    axis = np.cross(z_axis, [0.0, 0.0, -1.0])
    sin, cos = np.linalg.norm(axis), -z_axis[2]
    return axis / sin * np.arctan2(sin, cos) if sin > 1e-9 else np.zeros(3)


def yaw_error(eef_quat: np.ndarray, cube_quat: np.ndarray) -> float:
    """Yaw (rad) that turns the gripper onto the nearest cube face; a cube repeats every 90 deg."""
    err = _yaw(_quat_xyzw_to_mat(cube_quat)) - _yaw(_quat_xyzw_to_mat(eef_quat))
    return float((err + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class ScriptedExpert:
    def __init__(
        self,
        noise: float = 0.0,
        seed: int | None = None,
        hover_height: float = 0.08,
        grasp_offset: float = -0.005,
        close_steps: int = 10,
        lift_height: float = 0.15,
        kp: float = 12.0,
        kr: float = 2.0,
    ):
        self.noise = float(noise)
        self.hover_height = hover_height
        self.grasp_offset = grasp_offset
        self.close_steps = close_steps
        self.lift_height = lift_height
        self.kp = kp
        self.kr = kr
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode; a seed makes the action noise reproducible."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.phase = "approach"
        self._count = 0
        self._lift_z = 0.0

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> np.ndarray:
        proprio = np.asarray(obs["proprio"], dtype=np.float64)
        eef, eef_quat = proprio[:3], proprio[3:7]
        cube = np.asarray(info["cube_pos"], dtype=np.float64)
        d_yaw = yaw_error(eef_quat, info["cube_quat"])
        xy_err = np.linalg.norm(cube[:2] - eef[:2])
        gripper = -1.0

        if self.phase == "approach":
            target = cube + [0.0, 0.0, self.hover_height]
            if xy_err < 0.01 and abs(target[2] - eef[2]) < 0.03 and abs(d_yaw) < 0.08:
                self.phase = "descend"
        if self.phase == "descend":
            target = cube + [0.0, 0.0, self.grasp_offset]
            if xy_err > 0.03:  # pushed the cube or drifted: hover again
                self.phase = "approach"
                target = cube + [0.0, 0.0, self.hover_height]
            elif abs(target[2] - eef[2]) < 0.01:
                self.phase, self._count = "grasp", 0
        if self.phase == "grasp":
            target, gripper, d_yaw = eef.copy(), 1.0, 0.0
            self._count += 1
            if self._count >= self.close_steps:
                self.phase, self._lift_z = "lift", cube[2] + self.lift_height
        if self.phase == "lift":
            target, gripper, d_yaw = np.array([eef[0], eef[1], self._lift_z]), 1.0, 0.0
            if eef[2] - cube[2] > 0.04:  # the hand rose without the cube: missed grasp
                self.phase = "approach"
                target, gripper = eef + [0.0, 0.0, 0.05], -1.0

        action = np.zeros(7)
        action[:3] = np.clip(self.kp * (target - eef), -1.0, 1.0)
        # OSC holds the current orientation: without this, roll/pitch noise would accumulate.
        rotation = tilt_error(eef_quat)
        rotation[2] += d_yaw
        action[3:6] = np.clip(self.kr * rotation, -1.0, 1.0)
        if self.noise > 0:
            action[:6] += self.rng.normal(0.0, self.noise, 6)  # the gripper command stays clean
        action[6] = gripper
        return np.clip(action, -1.0, 1.0).astype(np.float32)
