"""Perception error on the privileged cube pose a baseline sees at evaluation: how precise must a
vision system be for the head to still pick the cube?

Gaussian noise of std ``pos_sigma_m`` on each axis of ``cube_pos`` (``axes="xy"``: on x and y only:
a cube on a table has a known height, so a perception system's error is mostly in the plane) and
``yaw_sigma_deg`` on the cube's yaw (inside its ``[sin 4θ, cos 4θ]`` features).

Two modes: ``per_episode`` draws one offset per episode and keeps it (a perception system's error
is mostly a bias that persists while the scene is still), ``per_step`` draws afresh at every
observation (white noise, which a closed loop partly averages out).

Each episode's draws come from ``default_rng([NOISE_STREAM, episode seed])``: the same seeds give
the same noise, independent of worker count and of the env's own random stream. Every draw is a
standard normal scaled by sigma, so across a sweep over sigma an episode's error keeps its direction
and only grows (common random numbers: the curve is smoother than with fresh draws per sigma).
"""

from __future__ import annotations

import numpy as np

from s2robot.errors import ConfigError

MODES = ("per_episode", "per_step")
AXES = ("xyz", "xy")
NOISE_STREAM = 0x5E2_0B5  # keeps the noise's random stream apart from anything else seeded by the episode seed


class PrivilegedNoise:
    """The evaluation-wide setting; ``episode(seed)`` gives one episode's noise."""

    def __init__(
        self, pos_sigma_m: float = 0.0, yaw_sigma_deg: float = 0.0, mode: str = "per_episode", axes: str = "xyz"
    ):
        if mode not in MODES:
            raise ConfigError(f"noise_mode={mode}: must be one of {', '.join(MODES)}")
        if axes not in AXES:
            raise ConfigError(f"privileged_noise_axes={axes}: must be one of {', '.join(AXES)}")
        if not (pos_sigma_m >= 0 and yaw_sigma_deg >= 0):  # also refuses NaN
            raise ConfigError(f"privileged noise must be >= 0, got {pos_sigma_m} m and {yaw_sigma_deg} deg")
        self.pos_sigma_m, self.yaw_sigma_deg = float(pos_sigma_m), float(yaw_sigma_deg)
        self.mode, self.axes = mode, axes

    def check_inputs(self, inputs: list[str] | tuple[str, ...]) -> None:
        """Noise on an input the policy does not read would leave its success unchanged and look like robustness."""
        for key, sigma, name in (
            ("cube_pos", self.pos_sigma_m, "privileged_noise_cm"),
            ("cube_yaw", self.yaw_sigma_deg, "privileged_yaw_noise_deg"),
        ):
            if sigma > 0 and key not in inputs:
                raise ConfigError(
                    f"{name} perturbs {key}, but this policy's inputs are [{','.join(inputs)}]; "
                    f"perception noise applies only to a privileged policy (inputs=[...,{key}])"
                )

    @property
    def active(self) -> bool:
        return self.pos_sigma_m > 0 or self.yaw_sigma_deg > 0

    def describe(self) -> dict | None:
        """What eval.json records; None when there is no noise (the records are then those of no option)."""
        if not self.active:
            return None
        return {
            "cube_pos_sigma_m": self.pos_sigma_m,
            "axes": self.axes,
            "cube_yaw_sigma_deg": self.yaw_sigma_deg,
            "mode": self.mode,
            "seeding": f"numpy default_rng([{NOISE_STREAM}, episode seed]); standard normals x sigma",
        }

    def episode(self, seed: int) -> EpisodeNoise | None:
        return EpisodeNoise(self, seed) if self.active else None


class EpisodeNoise:
    def __init__(self, setting: PrivilegedNoise, seed: int):
        self.s = setting
        self.rng = np.random.default_rng([NOISE_STREAM, int(seed)])
        self.pos, self.yaw = self._draw()  # per_episode: kept for the whole episode

    def _draw(self) -> tuple[np.ndarray, float]:
        # Always all draws, so the position noise does not change when the yaw sigma or the axes do.
        z = self.rng.standard_normal(4)
        pos = self.s.pos_sigma_m * z[:3]
        if self.s.axes == "xy":
            pos[2] = 0.0
        return pos, float(np.deg2rad(self.s.yaw_sigma_deg) * z[3])

    def apply(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The policy's inputs with this step's error on the cube pose (a new dict; ``obs`` is untouched)."""
        pos, yaw = self._draw() if self.s.mode == "per_step" else (self.pos, self.yaw)
        out = dict(obs)
        if "cube_pos" in out and self.s.pos_sigma_m > 0:
            out["cube_pos"] = (out["cube_pos"] + pos).astype(np.float32)
        if "cube_yaw" in out and self.s.yaw_sigma_deg > 0:
            # the features hold 4θ: an error of δ in yaw turns them by 4δ
            four = np.arctan2(out["cube_yaw"][..., 0], out["cube_yaw"][..., 1]) + 4 * yaw
            out["cube_yaw"] = np.stack([np.sin(four), np.cos(four)], axis=-1).astype(np.float32)
        return out

    def record(self) -> dict:
        """Per-episode fields of eval.json: the offset a per-episode run applied throughout."""
        if self.s.mode != "per_episode":
            return {}
        return {
            "noise_offset_m": [round(float(v), 6) for v in self.pos],
            "noise_yaw_deg": round(float(np.rad2deg(self.yaw)), 4),
        }
