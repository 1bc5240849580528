"""The cube-picking simulation behind the robot interface of `s2robot_client.robot.Robot`, so the
robot-side control loop (and its safety logic) runs unchanged against the simulator.

`get_observation()` returns what a real arm's adapter returns (camera frames uint8 RGB, top-left
origin; proprio float32), plus the privileged ``cube_pos``/``cube_yaw`` when the policy asks for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.cube_pick import make_env
from s2robot.observations import policy_obs


class SimRobot:
    def __init__(self, env_cfg: Mapping[str, Any], obs_keys: Sequence[str], **env_overrides: Any):
        self.env = make_env(env_cfg, **env_overrides)
        self.obs_keys = list(obs_keys)
        self.done = True  # until reset()
        self.success = False
        self.steps = 0
        self.stopped = False
        self._obs: dict[str, np.ndarray] = {}
        self._info: dict[str, Any] = {}

    def reset(self, seed: int) -> None:
        self._obs, self._info = self.env.reset(seed=seed)
        self.done = self.success = self.stopped = False
        self.steps = 0

    def get_observation(self) -> dict[str, np.ndarray]:
        return policy_obs(self._obs, self._info, self.obs_keys)

    def apply_action(self, action: np.ndarray) -> None:
        if self.done:
            raise RuntimeError("the episode is over: call reset(seed) first")
        self._obs, _, terminated, truncated, self._info = self.env.step(action)
        self.steps += 1
        self.success = self.success or bool(self._info["is_success"])
        self.done = terminated or truncated

    def stop(self) -> None:
        # A simulated arm does not move between steps: nothing to brake.
        self.stopped = True

    def close(self) -> None:
        self.env.close()


def sim_robot_for(metadata: Mapping[str, Any], env_cfg: Mapping[str, Any] | None = None, **overrides: Any) -> SimRobot:
    """A SimRobot matching the server's metadata: every camera it names (``camera_keys``), their
    image size and the control rate, on ``env_cfg`` (default: configs/env/cube_pick.yaml)."""
    if env_cfg is None:
        from pathlib import Path

        from omegaconf import OmegaConf

        yaml = Path(__file__).resolve().parents[1] / "configs/env/cube_pick.yaml"
        env_cfg = OmegaConf.to_container(OmegaConf.load(yaml))
    cfg = dict(env_cfg)
    if cams := list(metadata.get("camera_keys") or []):
        shapes = metadata.get("image_shapes") or {cam: metadata["image_shape"] for cam in cams}
        sizes = {tuple(shapes[cam]) for cam in cams}
        if len(sizes) != 1 or (size := sizes.pop())[0] != size[1]:
            wanted = {cam: list(shapes[cam]) for cam in cams}
            raise ValueError(f"the simulator renders every camera at one square size, but the policy wants {wanted}")
        cfg["cameras"] = cams
        cfg["image_size"] = int(size[0])
    else:
        cfg["cameras"] = []  # a vision-free policy: skip rendering
    cfg["control_freq"] = int(metadata.get("control_freq", cfg.get("control_freq", 20)))
    cfg.update(overrides)
    return SimRobot(cfg, metadata["obs_keys"])
