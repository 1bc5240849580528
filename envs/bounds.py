"""CubePick-v0's limits: the proprio observation's bounds, read from the MuJoCo model, and the
check every action passes before it reaches the simulator.

Kept apart from `envs/cube_pick.py` so the env stays a thin gymnasium shell over robosuite."""

from __future__ import annotations

import numpy as np

# MuJoCo joint limits are soft: a finger pressed against the cube goes a little past its range.
FINGER_MARGIN = 0.01  # m
# Room beyond the arm's geometric reach bound, for contact penetration and float rounding.
REACH_MARGIN = 0.05  # m


class NonFiniteActionError(ValueError):
    """An action with NaN or infinite entries. MuJoCo would zero the motors for every later step
    (the arm falls, with only a line on stderr), so the env refuses it before touching the sim."""


def check_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """The action as float64 clipped to [-1, 1]; refuses a wrong shape or non-finite entries."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape}, got {a.shape}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise NonFiniteActionError(
            f"action has non-finite entries at index {bad.tolist()} (values {a[bad].tolist()}); "
            f"CubePick-v0 takes finite values in [-1, 1]. The step was not applied: the env state is unchanged"
        )
    # np.clip keeps NaN; only finite actions reach here.
    return np.clip(a, -1.0, 1.0)


def _reach(model, base_body: int, site: int) -> float:
    """An upper bound on the distance from the base to the eef site in any joint configuration:
    the sum of the fixed offsets along the kinematic chain (hinge joints rotate, never stretch)."""
    total = float(np.linalg.norm(model.site_pos[site]))
    body = int(model.site_bodyid[site])
    while body != base_body:
        if body == 0:
            raise RuntimeError("the eef site is not below the robot base in the kinematic tree")
        total += float(np.linalg.norm(model.body_pos[body]))
        body = int(model.body_parentid[body])
    return total


def proprio_bounds(rs) -> tuple[np.ndarray, np.ndarray]:
    """Low and high of proprio = eef position (a box around the fixed base, as wide as the arm's
    reach), eef quaternion ([-1, 1]) and the two finger joints (their MJCF ranges plus margin)."""
    sim = rs.sim
    robot = rs.robots[0]
    model = sim.model._model
    base = sim.model.body_name2id(robot.robot_model.root_body)
    site = robot.eef_site_id["right"]
    reach = _reach(model, base, site) + REACH_MARGIN
    center = np.array(sim.data.body_xpos[base], dtype=np.float64)
    finger_ranges = np.array([sim.model.jnt_range[sim.model.joint_name2id(j)] for j in robot.gripper["right"].joints])
    low = np.concatenate([center - reach, -np.ones(4), finger_ranges[:, 0] - FINGER_MARGIN])
    high = np.concatenate([center + reach, np.ones(4), finger_ranges[:, 1] + FINGER_MARGIN])
    return low.astype(np.float32), high.astype(np.float32)
