"""Where recorded actions come from: a teleoperation device (s2robot.recording.teleop), or a script
(the simulator's expert, a replayed sequence).

A device is polled once per control tick for the action to apply and for events (keep, discard,
re-record, quit, success marks); once the episode has ended, ``decide`` asks what to do with it.
Human devices give an end-effector twist (6, in [-1, 1]) and a gripper command; `teleop_mapper`
turns them into the robot's actions: directly for a 7-dim delta-pose arm (CubePick's OSC_POSE),
else through the adapter's ``teleop_action(twist, gripper)``.
"""

from __future__ import annotations

import importlib
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


class ExpertDevice:
    """The simulator's scripted expert (``--robot sim`` only): demonstrations that need no human."""

    name = "expert"

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def start(self, robot: Any, description: Any) -> None:
        if not callable(getattr(robot, "expert_inputs", None)):
            raise DeviceError("--device expert drives only the simulator (--robot sim)")
        from envs.expert import ScriptedExpert

        self.robot, self.expert = robot, ScriptedExpert(noise=self.noise)

    def begin_episode(self, seed: int) -> None:
        self.expert.reset(seed=seed)

    def poll(self) -> Command:
        return Command(action=self.expert.act(*self.robot.expert_inputs()))

    def decide(self, success: bool | None) -> Command:
        return Command(event="keep", success=success)

    def close(self) -> None:
        pass


class ReplayDevice:
    """A fixed action sequence (T, action_dim) replayed every episode, then kept: for tests and for
    re-recording a trajectory on another arm. ``actions`` or a ``.npy`` file."""

    name = "replay"

    def __init__(self, actions: np.ndarray | str):
        self.actions = np.load(actions) if isinstance(actions, str) else np.asarray(actions, dtype=np.float32)
        if self.actions.ndim != 2:
            raise DeviceError(f"--device replay needs actions of shape (T, action_dim), got {self.actions.shape}")

    def start(self, robot: Any, description: Any) -> None:
        if self.actions.shape[1] != description.action_dim:
            raise DeviceError(
                f"--device replay: actions have {self.actions.shape[1]} elements, robot "
                f"{description.name!r} takes {description.action_dim}"
            )

    def begin_episode(self, seed: int) -> None:
        self.t = 0

    def poll(self) -> Command:
        if self.t >= len(self.actions):
            return Command(event="keep")
        self.t += 1
        return Command(action=self.actions[self.t - 1])

    def decide(self, success: bool | None) -> Command:
        return Command(event="keep", success=success)

    def close(self) -> None:
        pass


def make_device(spec: str) -> Device:
    """``keyboard``, ``spacemouse``, ``expert``, ``replay:<actions.npy>`` or ``module:Class``."""
    if spec in ("keyboard", "spacemouse"):
        from s2robot.recording.teleop import KeyboardDevice, SpaceMouseDevice

        return KeyboardDevice() if spec == "keyboard" else SpaceMouseDevice()
    if spec == "expert":
        return ExpertDevice()
    if spec.startswith("replay:"):
        try:
            return ReplayDevice(spec.removeprefix("replay:"))
        except OSError as e:
            raise DeviceError(f"--device {spec}: cannot read the actions ({e})") from None
    module, sep, name = spec.partition(":")
    if not sep:
        raise DeviceError(f"--device {spec!r}: use keyboard, spacemouse, expert, replay:<file.npy> or module:Class")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise DeviceError(f"--device {spec}: cannot load it ({e})") from None
    return cls()
