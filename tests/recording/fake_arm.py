"""A numpy robot that is not CubePick: 4-dim joint-position-like actions in [-2, 3], one 40 px
camera named ``front``, 3 proprio values, 10 Hz; described as a plain dict, as an adapter with only
the client package would. Hard-coded CubePick assumptions (7 actions, [-1, 1], a gripper last,
``agentview``, 224 px, 20 Hz) cannot pass through it unnoticed."""

from __future__ import annotations

import numpy as np

SIZE = 40
LOW, HIGH = [-2.0] * 4, [3.0] * 4


def description(size: int = SIZE) -> dict:
    return {
        "name": "fake 4-joint arm",
        "action_dim": 4,
        "action_low": LOW,
        "action_high": HIGH,
        "action_kind": "joint_position",
        "control_hz": 10.0,
        "cameras": {"front": [size, size]},
        "proprio_dim": 3,
        "proprio_names": ["j0", "j1", "j2"],
        "units": {"action": "rad", "proprio": "rad"},
        "gripper_index": None,
    }


class FakeArm:
    horizon = 12

    def __init__(self, metadata=None):
        self.metadata = metadata
        self.applied: list[np.ndarray] = []
        self.stopped = 0
        self.frame_size = SIZE  # tests change it mid-episode
        self.reset(0)

    def description(self) -> dict:
        return description()

    def reset(self, seed: int) -> None:
        self.state = np.random.default_rng(seed).uniform(-1, 1, 3).astype(np.float32)
        self.t, self.done, self.success = 0, False, False

    def get_observation(self) -> dict:
        frame = np.zeros((self.frame_size, self.frame_size, 3), dtype=np.uint8)
        frame[..., 0] = np.uint8(100 + 40 * self.state[0])
        frame[: self.frame_size // 2, :, 1] = np.uint8(100 + 40 * self.state[1])
        return {"front": frame, "proprio": self.state.copy()}

    def apply_action(self, action) -> None:
        a = np.asarray(action, dtype=np.float32)
        assert a.shape == (4,) and np.all(a >= -2) and np.all(a <= 3), a
        self.applied.append(a)
        self.state = (0.7 * self.state + 0.3 * np.clip(a[:3], -1, 1)).astype(np.float32)
        self.t += 1
        self.success = bool(abs(self.state[0] - 0.5) < 0.2)
        self.done = self.t >= self.horizon

    def stop(self) -> None:
        self.stopped += 1


def demo_actions(n: int = FakeArm.horizon) -> np.ndarray:
    """A trajectory inside [-2, 3] that uses the whole range (values above 1 and below -1)."""
    t = np.linspace(0, 1, n, dtype=np.float32)[:, None]
    return np.concatenate([0.5 + 0 * t, -1.5 + 3 * t, 2.5 - 4 * t, 2.9 * t], axis=1).astype(np.float32)


class ResizingArm(FakeArm):
    """Its camera switches to another resolution at step 5 of its second episode."""

    def __init__(self, metadata=None):
        super().__init__(metadata)
        self.episodes = 0  # reset() in __init__ is no episode

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.frame_size = SIZE
        self.episodes = getattr(self, "episodes", 0) + 1

    def apply_action(self, action) -> None:
        super().apply_action(action)
        if self.episodes == 2 and self.t == 5:
            self.frame_size = 48


class FiveJointArm(FakeArm):
    """Another robot: 5 actions, so its episodes do not belong in FakeArm's store."""

    def description(self) -> dict:
        return {
            **description(),
            "name": "fake 5-joint arm",
            "action_dim": 5,
            "action_low": [-2.0] * 5,
            "action_high": [3.0] * 5,
        }
