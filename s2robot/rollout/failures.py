"""Why an evaluation episode failed: a few measures kept per step while it runs (``EpisodeTrace``,
written into each eval.json record) and the category they put the episode in (``classify``).

Categories, first match wins (a later one is only a cause if the earlier ones did not happen):

- ``success``: the cube was lifted (the env's success).
- ``grasp_slip``: it held the cube and lost it: lifted it by more than ``LIFT_MIN``, or closed within
  reach of it with the yaw right and did not lift it.
- ``wrong_yaw``: closed within reach of the cube with the gripper turned more than ``YAW_TOL_DEG`` off
  the nearest cube face.
- ``pushed``: moved the cube more than ``PUSH_MIN`` in xy without lifting it, and never closed on it.
- ``missed_position``: never closed within reach of the cube: it never came within ``XY_REACH`` in xy,
  or it closed beside or above the cube.
- ``wandering``: came within reach but never closed, and left the cube where it was: a timeout.

Reach is ``XY_REACH`` in xy and ``Z_REACH`` in height between the grip site (between the fingertips)
and the cube's centre. The gripper counts as closing when the policy commands it (action[6] > 0,
the env's close direction), at the step the command turns from open to close; of several closings
(retries), the one that started nearest the cube counts.

Imports numpy only: ``scripts/classify_failures.py`` reclassifies any eval.json without torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from s2robot.errors import UserError

CATEGORIES = ("success", "grasp_slip", "wrong_yaw", "pushed", "missed_position", "wandering")

# Where a closing starts, measured on the 147 successes of the privileged policy (3 seeds x 50 episodes,
# runs/diag in docs/RESULTS.md): 91% start within 1.5 cm of the cube in xy (median 0.65 cm: the policy
# closes while still converging), 99% within 2 cm in height, 98% within 15 deg of a cube face (median
# 1.4 deg). So a closing outside these is one a success almost never starts from.
XY_REACH = 0.015  # also 1.5x the expert's own tolerance before it descends (1 cm, envs/expert.py)
Z_REACH = 0.02  # also the cube's half-height (2-2.2 cm): farther, the fingers close over or under it
YAW_TOL_DEG = 15.0  # also 3x the expert's alignment before it descends (0.08 rad = 4.6 deg)
# Tipping the cube onto an edge raises its centre by at most 0.83 cm (2 cm half-size x (sqrt 2 - 1)),
# its bounce after the drop at reset by 0.24 cm (measured); a rise beyond 1 cm means the fingers
# carried it. Success is a 2 cm rise (centre 4 cm above the table).
LIFT_MIN = 0.01
# The cube's half-width. Nothing but contact moves a resting cube (measured: 0 mm in episodes where
# the gripper stayed 8 cm away); closing fingers nudge it 0.4 cm (median of successful grasps, 1.1 cm
# at their 90th percentile), so 2 cm without a lift is a push.
PUSH_MIN = 0.02


def _yaw_error_deg(eef_quat: np.ndarray, cube_quat: np.ndarray) -> float:
    # the expert's own measure (gripper to nearest cube face); imported here: envs/ loads gymnasium
    from envs.expert import yaw_error

    return abs(float(np.rad2deg(yaw_error(eef_quat, cube_quat))))


class EpisodeTrace:
    """Per-step bookkeeping of one episode from the observation's proprio (eef pos [0:3], quat xyzw
    [3:7]), the env's ``info`` (cube_pos, cube_quat, cube_height) and the executed action."""

    def __init__(self, info: Mapping[str, Any]):
        self.start_xy = np.asarray(info["cube_pos"], dtype=np.float64)[:2].copy()
        # The env drops the cube from ~1 cm above the table at reset (measured: centre 3.0 cm, at rest
        # 2.0 cm): a lift is a rise above the lowest the cube has been so far, not above its start.
        self.low = float(info["cube_height"])
        self.max_lift, self.peak_height = 0.0, None
        self.max_push = 0.0
        self.min_xy, self.min_xy_step, self.yaw_at_closest = np.inf, 0, None
        self.closed = False  # the last command
        self.n_closings = 0
        self.best_close: tuple[float, float, float, int] | None = None  # (3-D dist, xy, z offset, step)
        self.yaw_at_close: float | None = None
        self.final_dist = None
        self.steps = 0

    def step(self, proprio: np.ndarray, info: Mapping[str, Any], action: np.ndarray) -> None:
        self.steps += 1
        eef = np.asarray(proprio[:3], dtype=np.float64)
        cube = np.asarray(info["cube_pos"], dtype=np.float64)
        xy = float(np.linalg.norm(cube[:2] - eef[:2]))
        dz = float(eef[2] - cube[2])
        height = float(info["cube_height"])
        self.low = min(self.low, height)
        if height - self.low >= self.max_lift:  # ties too: with no rise at all, the height at rest
            self.max_lift, self.peak_height = height - self.low, height
        self.max_push = max(self.max_push, float(np.linalg.norm(cube[:2] - self.start_xy)))
        if xy < self.min_xy:
            self.min_xy, self.min_xy_step = xy, self.steps
            self.yaw_at_closest = _yaw_error_deg(proprio[3:7], info["cube_quat"])
        closing = float(action[6]) > 0
        if closing and not self.closed:
            self.n_closings += 1
            dist = float(np.hypot(xy, dz))
            if self.best_close is None or dist < self.best_close[0]:
                self.best_close = (dist, xy, dz, self.steps)
                self.yaw_at_close = _yaw_error_deg(proprio[3:7], info["cube_quat"])
        self.closed = closing
        self.final_dist = float(np.hypot(xy, dz))

    def record(self) -> dict:
        """The episode's fields in eval.json (metres and degrees; None where it never happened)."""
        r = lambda v, n=5: None if v is None else round(float(v), n)  # noqa: E731
        close = self.best_close
        out = {
            "min_xy_dist_m": r(self.min_xy) if self.steps else None,
            "min_xy_step": self.min_xy_step,
            "yaw_err_at_closest_deg": r(self.yaw_at_closest, 2),
            "n_closings": self.n_closings,
            # the closing (open -> close command) nearest the cube
            "close_step": close[3] if close else None,
            "close_xy_dist_m": r(close[1]) if close else None,
            "close_z_offset_m": r(close[2]) if close else None,  # grip site above (+) the cube centre
            "yaw_err_at_close_deg": r(self.yaw_at_close, 2),
            "max_cube_height": r(self.peak_height),  # at the highest rise (after the drop at reset)
            "max_cube_lift_m": r(self.max_lift),
            "cube_displacement_m": r(self.max_push),
            "final_gripper_cube_dist_m": r(self.final_dist),
        }
        out["closed_near"] = closed_near(out)
        return out


def closed_near(record: Mapping[str, Any]) -> bool:
    xy, dz = record.get("close_xy_dist_m"), record.get("close_z_offset_m")
    return xy is not None and xy < XY_REACH and abs(dz) < Z_REACH


def classify(record: Mapping[str, Any]) -> str:
    """The category of one eval.json episode record (see the module docstring for the order)."""
    if record["success"]:
        return "success"
    if "min_xy_dist_m" not in record:
        raise UserError(
            "this eval.json predates the failure measures (min_xy_dist_m, ...): evaluate the "
            "checkpoint again (s2robot-eval checkpoint=<run>) to record them"
        )
    if (record["max_cube_lift_m"] or 0.0) > LIFT_MIN:
        return "grasp_slip"
    if closed_near(record):
        return "wrong_yaw" if record["yaw_err_at_close_deg"] > YAW_TOL_DEG else "grasp_slip"
    if (record["cube_displacement_m"] or 0.0) > PUSH_MIN:
        return "pushed"
    if record["min_xy_dist_m"] is None or record["min_xy_dist_m"] >= XY_REACH or record["n_closings"] > 0:
        return "missed_position"
    return "wandering"


def summarize(records: Iterable[Mapping[str, Any]]) -> dict:
    """Counts per category (every category, zeros included) and each one's share of the failures."""
    cats = [classify(r) for r in records]
    counts = Counter(cats)
    n_fail = len(cats) - counts["success"]
    return {
        "n_episodes": len(cats),
        "n_failures": n_fail,
        "counts": {c: counts[c] for c in CATEGORIES},
        "share_of_failures": {c: (round(counts[c] / n_fail, 4) if n_fail else 0.0) for c in CATEGORIES[1:]},
        "thresholds": {
            "xy_reach_m": XY_REACH,
            "z_reach_m": Z_REACH,
            "yaw_tol_deg": YAW_TOL_DEG,
            "lift_min_m": LIFT_MIN,
            "push_min_m": PUSH_MIN,
        },
    }


def table_lines(summary: Mapping[str, Any]) -> list[str]:
    """A plain-text table of ``summarize``'s result."""
    n, n_fail = summary["n_episodes"], summary["n_failures"]
    lines = [f"{'category':<16} {'count':>6} {'of all':>8} {'of failures':>12}"]
    for c in CATEGORIES:
        k = summary["counts"][c]
        of_fail = f"{100 * k / n_fail:.1f}%" if c != "success" and n_fail else ""
        lines.append(f"{c:<16} {k:>6} {100 * k / max(n, 1):>7.1f}% {of_fail:>12}")
    lines.append(f"{'total':<16} {n:>6}   ({n_fail} failures)")
    return lines
