"""The interface between a recorder and where its actions come from: the per-tick `Command`, the
`Device` protocol, the one-line `DeviceError`, and `teleop_mapper` (a human device's end-effector
twist -> the robot's action). Its own module so that the devices (devices.py, teleop.py) share it
without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from s2robot.errors import UserError

EVENTS = ("keep", "discard", "rerecord", "quit", "end")  # end: over, now decide


class DeviceError(UserError):
    """A device that is not connected, lacks its library, or cannot drive this robot."""


@dataclass
class Command:
    action: np.ndarray | None = None  # None: apply nothing this tick
    event: str | None = None  # one of EVENTS: ends the episode
    success: bool | None = None  # a success mark (None: no mark this tick)


class Device(Protocol):
    name: str

    def start(self, robot: Any, description: Any) -> None:
        """Connect; raise DeviceError (one line) when the device is not there."""

    def begin_episode(self, seed: int) -> None: ...

    def poll(self) -> Command:
        """This tick's action and events (called after the robot was observed)."""

    def decide(self, success: bool | None) -> Command:
        """The episode ended (robot done or step limit): keep, discard, re-record or quit."""

    def close(self) -> None: ...


def teleop_mapper(robot: Any, description: Any, device: str) -> Callable[[np.ndarray, float], np.ndarray]:
    """``(twist (6,), gripper -1 open / 1 close) -> robot action``."""
    own = getattr(robot, "teleop_action", None)
    if callable(own):
        return lambda twist, gripper: np.asarray(own(twist, gripper), dtype=np.float32)
    if description.action_kind == "osc_pose_delta" and description.action_dim == 7:
        low, high = description.low, description.high
        return lambda twist, gripper: np.clip(np.append(twist, gripper), low, high).astype(np.float32)
    raise DeviceError(
        f"--device {device} gives end-effector deltas, but robot {description.name!r} takes "
        f"{description.action_kind!r} actions of {description.action_dim}; give its adapter a "
        f"teleop_action(twist, gripper) method that maps them"
    )
