"""CubePick-v0: robosuite Lift (Panda, OSC_POSE) as a gymnasium env with camera + proprio observations.

Observation: {camera name: uint8 H x W x 3 image (top-left origin), "proprio": float32 (9,)}
with proprio = eef position (3) + eef quaternion (4, xyzw) + gripper finger joint positions (2).
The cube's true pose is privileged: it is only in `info` (for the scripted expert and probes).

Actions are checked before they reach the simulator: a non-finite one raises
`NonFiniteActionError` (a ValueError) and leaves the env unchanged; finite ones are clipped to [-1, 1].

Episode end: `terminated=True` on success when `terminate_on_success` (the default), so
demonstrations stop right after the lift and evaluation does not render idle frames;
`truncated=True` when `horizon` steps have passed.

robosuite is imported and the simulator (with its OpenGL context) created inside the
constructor, never at import time, so this module can be imported before forking workers.

Somewhat over 250 lines: one env class (observation, action checks, termination, rendering).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.bounds import NonFiniteActionError, check_action, proprio_bounds  # noqa: F401  (re-exported)
from s2robot.observations import PRIVILEGED_KEYS, cube_yaw_features, privileged_obs  # noqa: F401  (re-exported)

PROPRIO_DIM = 9

DEFAULT_PLACEMENT = {
    "x_range": (-0.15, 0.15),
    "y_range": (-0.15, 0.15),
    "yaw_range": (-3.14159265, 3.14159265),  # written as in the yaml, so configs compare equal
}


@contextlib.contextmanager
def _quiet_robosuite():
    """The BASIC composite controller config names parts a Panda lacks (head, legs, ...): robosuite
    warns about each one on every make and every reset. Keep that out of collection/eval logs."""
    logger = logging.getLogger("robosuite_logs")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class CubePickEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        cameras: Sequence[str] = ("agentview",),
        image_size: int = 224,
        horizon: int = 120,
        terminate_on_success: bool = True,
        fast_render: bool = True,
        control_freq: int = 20,
        init_noise: float = 0.02,
        model_seed: int = 0,
        placement: Mapping[str, Sequence[float]] | None = None,
        render_mode: str | None = None,
        id: str | None = None,  # noqa: A002 -- lets make_env take the yaml's `id` key unchanged
    ):
        from s2robot.simulator import quiet_robosuite_import

        quiet_robosuite_import()
        import robosuite
        import robosuite.macros
        from robosuite.utils.placement_samplers import UniformRandomSampler

        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} not in {self.metadata['render_modes']}")
        self.cameras = tuple(cameras)  # empty: proprio-only, no GL context (fast expert checks)
        self.image_size = int(image_size)
        self.horizon = int(horizon)
        self.terminate_on_success = bool(terminate_on_success)
        self.fast_render = bool(fast_render)
        self.render_mode = render_mode
        placement = {**DEFAULT_PLACEMENT, **(dict(placement) if placement else {})}
        self.placement = {k: tuple(float(v) for v in placement[k]) for k in DEFAULT_PLACEMENT}

        robosuite.macros.IMAGE_CONVENTION = "opencv"  # top-left origin; read when camera sensors are built
        table_offset = np.array((0.0, 0.0, 0.8))  # robosuite Lift's table top center
        self._sampler = UniformRandomSampler(
            name="CubeSampler",
            x_range=self.placement["x_range"],
            y_range=self.placement["y_range"],
            rotation=self.placement["yaw_range"],
            rotation_axis="z",
            ensure_object_boundary_in_range=False,
            ensure_valid_placement=True,
            reference_pos=table_offset,
            z_offset=0.01,
        )
        with _quiet_robosuite():
            self._rs = self._make_lift(robosuite, control_freq, init_noise, model_seed)
        self._table_top_z = float(self._rs.model.mujoco_arena.table_offset[2])
        if self.fast_render and self.cameras:
            self._enable_fast_render()

        low, high = self._rs.action_spec
        self.action_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        image_space = spaces.Box(0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {
                **{cam: image_space for cam in self.cameras},
                "proprio": spaces.Box(*proprio_bounds(self._rs), (PROPRIO_DIM,), dtype=np.float32),
            }
        )
        self._steps = 0
        self._last_obs: dict[str, np.ndarray] | None = None

    def _make_lift(self, robosuite, control_freq: int, init_noise: float, model_seed: int):
        return robosuite.make(
            "Lift",
            robots="Panda",
            controller_configs=robosuite.load_composite_controller_config(controller="BASIC", robot="Panda"),
            has_renderer=False,
            has_offscreen_renderer=bool(self.cameras),
            use_camera_obs=bool(self.cameras),
            use_object_obs=False,  # the cube pose is read from the sim into `info` instead
            camera_names=list(self.cameras) or "agentview",
            camera_heights=self.image_size,
            camera_widths=self.image_size,
            camera_depths=False,
            placement_initializer=self._sampler,
            initialization_noise={"magnitude": float(init_noise), "type": "gaussian"},
            reward_shaping=False,
            control_freq=control_freq,
            horizon=self.horizon,
            ignore_done=True,  # horizon handled here, reported as truncation
            hard_reset=False,  # a hard reset rebuilds the model and GL context: 2.5 s instead of 0.09 s
            seed=model_seed,
        )

    def _enable_fast_render(self) -> None:
        import mujoco

        ctx = self._rs.sim._render_context_offscreen
        # Multisampling is fixed when the MjrContext is made: set it on the model, then remake.
        self._rs.sim.model._model.vis.quality.offsamples = 0
        ctx.con.free()
        ctx._set_mujoco_context_and_buffers()
        # The reflective floor renders the whole scene a second time.
        ctx.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    # -- gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        # robosuite draws the cube pose (sampler) and the joint noise (env.rng) from its own
        # generators; share gymnasium's so that reset(seed=s) fixes the whole initial state.
        self._rs.rng = self.np_random
        self._sampler.rng = self.np_random
        self._make_gl_current()
        with _quiet_robosuite():
            raw = self._rs.reset()
        self._steps = 0
        obs = self._make_obs(raw)
        return obs, self._info()

    def step(self, action):
        action = check_action(action, self.action_space.shape)
        self._make_gl_current()
        raw, reward, _, _ = self._rs.step(action)
        self._steps += 1
        obs = self._make_obs(raw)
        info = self._info()
        terminated = bool(self.terminate_on_success and info["is_success"])
        truncated = bool(self._steps >= self.horizon and not terminated)
        return obs, float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if not self.cameras:
            raise RuntimeError("render() needs a camera; this CubePickEnv was made with cameras=[]")
        if self._last_obs is None:
            raise RuntimeError("call reset() before render()")
        return self._last_obs[self.cameras[0]].copy()

    def close(self):
        if getattr(self, "_rs", None) is not None:
            self._make_gl_current()  # GL frees act on the current context: make sure it is ours
            self._rs.close()
            self._rs = None

    # -- helpers ---------------------------------------------------------------------------

    def _make_gl_current(self) -> None:
        # robosuite renders into whichever GL context is current; another env made (or closed)
        # in this process since ours was made would otherwise receive our draw calls.
        if self.cameras:
            self._rs.sim._render_context_offscreen.gl_ctx.make_current()

    def _make_obs(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs = {cam: np.ascontiguousarray(raw[f"{cam}_image"], dtype=np.uint8) for cam in self.cameras}
        obs["proprio"] = np.concatenate(
            [raw["robot0_eef_pos"], raw["robot0_eef_quat"], raw["robot0_gripper_qpos"]]
        ).astype(np.float32)
        self._last_obs = obs
        return obs

    def _info(self) -> dict[str, Any]:
        sim = self._rs.sim
        body = self._rs.cube_body_id
        cube_pos = np.array(sim.data.body_xpos[body], dtype=np.float64)
        w, x, y, z = sim.data.body_xquat[body]
        return {
            "cube_pos": cube_pos,
            "cube_quat": np.array([x, y, z, w], dtype=np.float64),  # xyzw, like robosuite's eef quat
            "cube_height": float(cube_pos[2] - self._table_top_z),  # cube center above the table top
            "is_success": bool(self._rs._check_success()),
        }

    @property
    def table_top_z(self) -> float:
        return self._table_top_z

    @property
    def sim(self):
        """The underlying robosuite MjSim (for tests and debugging)."""
        return self._rs.sim


def make_env(cfg: Mapping[str, Any] | Any, **overrides: Any) -> CubePickEnv:
    """Build the env from a `configs/env/cube_pick.yaml`-shaped DictConfig or dict."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    kwargs = {**dict(cfg), **overrides}
    kwargs.pop("defaults", None)  # a raw yaml's Hydra schema list (composition strips it): not an argument
    env_id = kwargs.pop("id", "CubePick-v0")
    if env_id != "CubePick-v0":
        raise ValueError(f"make_env builds CubePick-v0, the config asks for {env_id!r}")
    check_env_keys(kwargs)
    return CubePickEnv(**kwargs)


def env_keys() -> set[str]:
    """The config keys CubePick-v0 takes (its constructor's arguments, plus ``id``)."""
    return set(inspect.signature(CubePickEnv.__init__).parameters) - {"self"} | {"id"}


def check_env_keys(cfg: Mapping[str, Any]) -> None:
    from s2robot.errors import ConfigError

    unknown = sorted(set(cfg) - env_keys())
    if unknown:
        raise ConfigError(f"unknown env config keys {unknown}; CubePick-v0 takes {sorted(env_keys() - {'id'})}")
