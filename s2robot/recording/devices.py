"""Where recorded actions come from: a teleoperation device (s2robot.recording.teleop), or a script
(the simulator's expert, a replayed sequence).

A device is polled once per control tick for the action to apply and for events (keep, discard,
re-record, quit, success marks); once the episode has ended, ``decide`` asks what to do with it.
Human devices give an end-effector twist (6, in [-1, 1]) and a gripper command; `base.teleop_mapper`
turns them into the robot's actions: directly for a 7-dim delta-pose arm (CubePick's OSC_POSE),
else through the adapter's ``teleop_action(twist, gripper)``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from s2robot.recording.base import Command, Device, DeviceError


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
