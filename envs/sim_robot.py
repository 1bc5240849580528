"""The cube-picking simulation behind the robot interface of `s2robot_client.robot.Robot`, so the
robot-side control loop (and its safety logic) runs unchanged against the simulator.

`get_observation()` returns what a real arm's adapter returns (camera frames uint8 RGB, top-left
origin; proprio float32), plus the privileged ``cube_pos``/``cube_yaw`` when the policy asks for them.
``description()`` is CubePick's `RobotDescription`, as a real adapter describes its arm; recording
with ``s2robot-record --robot sim`` builds one from the env config alone (`sim_robot_from_env`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.cube_pick import make_env
from s2robot.observations import policy_obs
from s2robot.robot_description import RobotDescription, cube_pick


class SimRobot:
    def __init__(self, env_cfg: Mapping[str, Any], obs_keys: Sequence[str], **env_overrides: Any):
        self.env = make_env(env_cfg, **env_overrides)
        self.env_cfg = {**dict(env_cfg), **env_overrides}
        self.obs_keys = list(obs_keys)
        self.done = True  # until reset()
        self.success = False
        self.steps = 0
        self.stopped = False
        self._obs: dict[str, np.ndarray] = {}
        self._info: dict[str, Any] = {}

    def description(self) -> RobotDescription:
        env = self.env
        return cube_pick(cameras=env.cameras, image_size=env.image_size, control_hz=self.control_hz)

    @property
    def control_hz(self) -> float:
        return float(self.env_cfg.get("control_freq", 20))

    def expert_inputs(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The env's raw observation and info, as the scripted expert reads them (recording)."""
        return self._obs, self._info

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


def default_env_config() -> dict[str, Any]:
    from pathlib import Path

    from omegaconf import OmegaConf

    yaml = Path(__file__).resolve().parents[1] / "configs/env/cube_pick.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(yaml))
    cfg.pop("defaults", None)  # Hydra's schema list, not an env setting
    return cfg


def sim_robot_from_env(env_cfg: Mapping[str, Any] | None = None, **overrides: Any) -> SimRobot:
    """A SimRobot that records like a real arm: every camera of the env config at its image size,
    proprio; no server metadata needed."""
    cfg = {**(default_env_config() if env_cfg is None else dict(env_cfg)), **overrides}
    return SimRobot(cfg, [*cfg.get("cameras", ()), "proprio"])


def sim_robot_for(metadata: Mapping[str, Any], env_cfg: Mapping[str, Any] | None = None, **overrides: Any) -> SimRobot:
    """A SimRobot matching the server's metadata: every camera it names (``camera_keys``), their
    image size and the control rate, on ``env_cfg`` (default: configs/env/cube_pick.yaml)."""
    cfg = dict(default_env_config() if env_cfg is None else env_cfg)
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
