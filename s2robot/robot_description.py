"""What a robot is, as far as a policy is concerned: its action space (dimension, bounds, kind),
control rate, cameras (name -> native height, width), proprioception layout and units.

One description travels with the data: a store keeps it in its ``robot`` attrs (recorded from the
arm, imported from a dataset, or, for stores collected before it existed, derived from CubePick's
env config), training copies it into the checkpoint, and the server announces it in its metadata,
so nothing downstream assumes CubePick's 7-dim action in [-1, 1]. Numpy and the standard library
only: the robot side may use it without torch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from s2robot.errors import UserError


class RobotDescriptionError(UserError, ValueError):
    """A robot description that is malformed, or data that disagrees with it."""


@dataclass(frozen=True)
class RobotDescription:
    name: str
    action_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    action_kind: str = "unspecified"  # e.g. "osc_pose_delta", "joint_position"
    control_hz: float = 20.0
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    proprio_dim: int = 0
    proprio_names: tuple[str, ...] = ()  # one per proprio element, or empty when unnamed
    units: dict[str, str] = field(default_factory=dict)  # e.g. {"action": "normalised", "proprio": "m, rad"}
    gripper_index: int | None = None  # the action element that commands the gripper, if any

    def __post_init__(self) -> None:
        where = f"robot description {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise RobotDescriptionError("robot description: name must be a non-empty string")
        if not isinstance(self.action_dim, int) or isinstance(self.action_dim, bool) or self.action_dim < 1:
            raise RobotDescriptionError(f"{where}: action_dim={self.action_dim!r} must be a whole number >= 1")
        low, high = np.asarray(self.action_low, dtype=float), np.asarray(self.action_high, dtype=float)
        if low.shape != (self.action_dim,) or high.shape != (self.action_dim,):
            raise RobotDescriptionError(
                f"{where}: action_low and action_high need {self.action_dim} values each "
                f"(got {low.size} and {high.size})"
            )
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
            raise RobotDescriptionError(f"{where}: action bounds must be finite with low < high in every element")
        if not (isinstance(self.control_hz, (int, float)) and math.isfinite(self.control_hz) and self.control_hz > 0):
            raise RobotDescriptionError(f"{where}: control_hz={self.control_hz!r} must be > 0")
        for cam, hw in self.cameras.items():
            if len(tuple(hw)) != 2 or not all(isinstance(v, int) and v > 0 for v in hw):
                raise RobotDescriptionError(f"{where}: camera {cam!r} needs (height, width) in pixels, got {hw!r}")
        if not isinstance(self.proprio_dim, int) or self.proprio_dim < 0:
            raise RobotDescriptionError(f"{where}: proprio_dim={self.proprio_dim!r} must be a whole number >= 0")
        if self.proprio_names and len(self.proprio_names) != self.proprio_dim:
            raise RobotDescriptionError(
                f"{where}: {len(self.proprio_names)} proprio_names for proprio_dim={self.proprio_dim}"
            )
        if self.gripper_index is not None and not 0 <= self.gripper_index < self.action_dim:
            raise RobotDescriptionError(f"{where}: gripper_index={self.gripper_index} outside the action")

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.action_low, dtype=np.float32)

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.action_high, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (store attrs, checkpoint, server metadata)."""
        d = asdict(self)
        d["action_low"] = [float(v) for v in self.action_low]
        d["action_high"] = [float(v) for v in self.action_high]
        d["cameras"] = {cam: [int(h), int(w)] for cam, (h, w) in self.cameras.items()}
        d["proprio_names"] = list(self.proprio_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RobotDescription:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise RobotDescriptionError(f"robot description: unknown keys {unknown}; allowed: {sorted(known)}")
        missing = [k for k in ("name", "action_dim", "action_low", "action_high") if k not in d]
        if missing:
            raise RobotDescriptionError(f"robot description: missing {missing}")
        d = dict(d)
        d["action_low"] = tuple(float(v) for v in d["action_low"])
        d["action_high"] = tuple(float(v) for v in d["action_high"])
        d["cameras"] = {str(c): tuple(int(v) for v in hw) for c, hw in dict(d.get("cameras", {})).items()}
        d["proprio_names"] = tuple(d.get("proprio_names", ()))
        d["units"] = dict(d.get("units", {}))
        return cls(**d)

    def check_action(self, action: Sequence[float] | np.ndarray, tol: float = 1e-6) -> None:
        """Raise (one line) when an action has the wrong size, is not finite, or leaves the bounds."""
        a = np.asarray(action, dtype=float)
        if a.shape != (self.action_dim,):
            raise RobotDescriptionError(f"{self.name}: action of shape {a.shape}, expected ({self.action_dim},)")
        if not np.isfinite(a).all():
            raise RobotDescriptionError(f"{self.name}: action is not finite: {a.tolist()}")
        bad = np.flatnonzero((a < self.low - tol) | (a > self.high + tol))
        if bad.size:
            i = int(bad[0])
            raise RobotDescriptionError(
                f"{self.name}: action[{i}]={a[i]:.4g} outside the declared bounds "
                f"[{self.action_low[i]:g}, {self.action_high[i]:g}]"
            )

    def check_frame(self, camera: str, frame: np.ndarray) -> None:
        """Raise (one line) for a camera the robot does not have or a frame of another resolution."""
        if camera not in self.cameras:
            raise RobotDescriptionError(f"{self.name}: no camera {camera!r}; it has {sorted(self.cameras)}")
        want = (*self.cameras[camera], 3)
        if tuple(frame.shape) != want or frame.dtype != np.uint8:
            raise RobotDescriptionError(
                f"{self.name}: camera {camera!r} sent a {frame.dtype} frame of shape {tuple(frame.shape)}, "
                f"expected uint8 {want}"
            )

    def check_matches(self, other: RobotDescription, what: str = "the store") -> None:
        """Raise (one line) when ``other`` (e.g. a store's description) disagrees with this one on
        what a policy depends on: action space, cameras, proprio size."""
        for key in ("action_dim", "action_low", "action_high", "cameras", "proprio_dim"):
            mine, theirs = getattr(self, key), getattr(other, key)
            if key in ("action_low", "action_high"):
                same = np.allclose(mine, theirs, rtol=0, atol=1e-6) if len(mine) == len(theirs) else False
            else:
                same = mine == theirs
            if not same:
                raise RobotDescriptionError(
                    f"robot {self.name!r} disagrees with {what} ({other.name!r}) on {key}: {mine!r} vs {theirs!r}; "
                    f"record into a new store or fix the robot description"
                )


# CubePick-v0 (robosuite Lift, Panda, OSC_POSE): 6 end-effector deltas + gripper, all in [-1, 1];
# proprio = eef position (3) + quaternion xyzw (4) + finger joints (2).
CUBE_PICK_PROPRIO = ("eef_x", "eef_y", "eef_z", "eef_qx", "eef_qy", "eef_qz", "eef_qw", "finger_l", "finger_r")


def cube_pick(cameras: Sequence[str] = ("agentview",), image_size: int = 224, control_hz: float = 20.0):
    """The description of the simulator's arm, as the env config sets it up."""
    return RobotDescription(
        name="CubePick-v0 (robosuite Lift, Panda, OSC_POSE)",
        action_dim=7,
        action_low=(-1.0,) * 7,
        action_high=(1.0,) * 7,
        action_kind="osc_pose_delta",
        control_hz=float(control_hz),
        cameras={str(c): (int(image_size), int(image_size)) for c in cameras},
        proprio_dim=len(CUBE_PICK_PROPRIO),
        proprio_names=CUBE_PICK_PROPRIO,
        units={"action": "normalised OSC deltas in [-1, 1], gripper -1 open / 1 closed", "proprio": "m, quaternion, m"},
        gripper_index=6,
    )


def from_store_attrs(attrs: Mapping[str, Any]) -> RobotDescription:
    """A store's description: its ``robot`` attrs, or, for stores made by the simulator's
    collection before descriptions existed, CubePick's as its ``env`` attrs set it up."""
    if "robot" in attrs:
        return RobotDescription.from_dict(attrs["robot"])
    env = attrs.get("env")
    if not isinstance(env, Mapping):
        raise RobotDescriptionError(
            "the store has neither a robot description nor the simulator's env config; "
            "it was not written by s2robot's collection, recording or import"
        )
    return cube_pick(
        cameras=env.get("cameras", ("agentview",)),
        image_size=env.get("image_size", 224),
        control_hz=env.get("control_freq", 20),
    )
