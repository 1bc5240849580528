"""Scripted cube-picking expert for CubePick-v0: a function of the current state only.

``label(obs, info)`` reads the proprio (eef position and quaternion, finger joints) and the
privileged cube pose in ``info``, and infers what to do from them; it keeps no phase, counter or
target between calls. So it can label ANY state, one a learned policy visited included (DAgger),
and labelling the states of its own trajectory gives back its own actions.

The phase is read from where the cube sits relative to the fingers and how far they are open:
- cube between the fingers and the fingers stopped on it (gap about the cube's width): lift;
- cube between the fingers, fingers open or closing: close (hold still, no yaw);
- otherwise open the gripper and go for the cube: hover above it, turned onto a face and pointing
  straight down, then descend through a funnel (the target height falls as the xy and yaw errors
  shrink, so a drift raises the hand again rather than pushing the cube). Fingers not open yet
  (a grasp that closed on nothing, or the half-open start) keep the hand at hover height while
  they open, which is the "reopen and rise" recovery; a hand low beside the cube rises first.
Actions are OSC_POSE deltas in world axes: +-1 = +-5 cm and +-0.5 rad per step.

Finger gaps measured in CubePick-v0 (sum of the two finger joints): 0.042 at reset, 0.079 fully
open, 0.040-0.044 stopped on the cube (4.0-4.4 cm wide), 0.002 closed on nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_POS_SCALE = 0.05  # m per unit action (robosuite OSC_POSE default output range)
_ROT_SCALE = 0.5  # rad per unit action
OPEN_GAP = 0.075  # fingers (nearly) fully open: free to descend over the cube
HELD_GAP = 0.047  # fingers stopped on the cube (widest cube 0.044 + margin)
EMPTY_GAP = 0.03  # closed past any cube: nothing between the fingers


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


def _ramp(x: float, start: float, width: float) -> float:
    """0 below ``start``, 1 above ``start + width``, linear between."""
    return float(np.clip((x - start) / width, 0.0, 1.0))


class ScriptedExpert:
    """``label(obs, info)``: the clean expert action of a state. ``act`` is ``label`` plus the optional
    label noise (``noise``: std of Gaussian noise on the arm part of the recorded action, drawn from
    a generator ``reset(seed)`` re-seeds; the gripper command stays clean). DART's noise on the
    executed action only is the collector's job (s2robot.data.collect), not the expert's."""

    def __init__(
        self,
        noise: float = 0.0,
        seed: int | None = None,
        hover_height: float = 0.08,
        grasp_offset: float = -0.005,
        lift_height: float = 0.15,
        table_z: float = 0.8,
        kp: float = 12.0,
        kr: float = 2.0,
    ):
        self.noise = float(noise)
        self.hover_height = hover_height
        self.grasp_offset = grasp_offset
        self.lift_height = lift_height
        self.table_z = table_z  # robosuite Lift's table top: lifting aims at a height above it
        self.kp = kp
        self.kr = kr
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: only re-seeds the label noise (the expert has no other state)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> np.ndarray:
        action = self.label(obs, info)
        if self.noise > 0:
            action[:6] += self.rng.normal(0.0, self.noise, 6)  # the gripper command stays clean
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def phase(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> str:
        """What the expert does in this state: lift, close or reach (for tests and debugging)."""
        return self._decide(obs, info)[0]

    def label(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> np.ndarray:
        """The clean expert action (float32, 7) for this state."""
        _, target, gripper, d_yaw, eef, eef_quat = self._decide(obs, info)
        action = np.zeros(7)
        action[:3] = np.clip(self.kp * (target - eef), -1.0, 1.0)
        # OSC holds the current orientation: without this, roll/pitch noise would accumulate.
        rotation = tilt_error(eef_quat)
        rotation[2] += d_yaw
        action[3:6] = np.clip(self.kr * rotation, -1.0, 1.0)
        action[6] = gripper
        return action.astype(np.float32)

    def _decide(self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any]):
        proprio = np.asarray(obs["proprio"], dtype=np.float64)
        eef, eef_quat = proprio[:3], proprio[3:7]
        gap = float(proprio[7] - proprio[8])
        cube = np.asarray(info["cube_pos"], dtype=np.float64)
        d_yaw = yaw_error(eef_quat, info["cube_quat"])
        xy_err = float(np.linalg.norm(cube[:2] - eef[:2]))
        above_grasp = float(eef[2] - (cube[2] + self.grasp_offset))  # eef height over its grasp height

        # Cube between the pads: tight before the fingers start closing (the hand must be down and
        # centred), looser once they are closing or holding (the grip and any noise shift it a little).
        # The open fingers straddle the 4 cm cube with 2 cm to spare: 2 cm off centre still grasps it.
        if gap >= OPEN_GAP:
            between = xy_err < 0.02 and above_grasp < 0.012 and abs(d_yaw) < 0.3
        else:
            between = xy_err < 0.03 and -0.02 < above_grasp < 0.025 and abs(d_yaw) < 0.35
        if between and EMPTY_GAP < gap < HELD_GAP:
            # aim the cube (not the hand) at lift_height above the table: the grip offset stays as it is
            lift_z = eef[2] + (self.table_z + self.lift_height - cube[2])
            return "lift", np.array([eef[0], eef[1], lift_z]), 1.0, 0.0, eef, eef_quat
        if between and gap >= HELD_GAP:
            # centre on the cube while the fingers close: holding still lets the arm drift off it
            return "close", np.array([cube[0], cube[1], eef[2]]), 1.0, 0.0, eef, eef_quat

        hover = cube[2] + self.hover_height
        # Descend only with open fingers, centred and turned onto a face; the target height rises
        # smoothly with the errors, so there is no switching back and forth at a threshold.
        raise_by = max(_ramp(xy_err, 0.015, 0.015), _ramp(abs(d_yaw), 0.15, 0.15), float(gap < OPEN_GAP))
        z = cube[2] + self.grasp_offset + raise_by * (self.hover_height - self.grasp_offset)
        if xy_err > 0.035 and eef[2] < hover - 0.03:
            # low beside the cube (pushed it, or dropped it): rise before moving over, not through it
            return "reach", np.array([eef[0], eef[1], hover]), -1.0, d_yaw, eef, eef_quat
        return "reach", np.array([cube[0], cube[1], z]), -1.0, d_yaw, eef, eef_quat
