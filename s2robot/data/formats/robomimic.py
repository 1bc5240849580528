"""Reading a robomimic HDF5 dataset (h5py).

Layout: ``data`` (attrs: ``env_args``, a JSON string: env_name, env_kwargs with robots,
controller_configs, control_freq, camera_names/heights/widths), ``data/demo_<n>`` (attrs
num_samples) holding ``actions`` (T, 7), ``obs/<key>`` (T, ...) and ``next_obs``, ``rewards``,
``dones``, ``states``; ``mask/<filter>`` lists demo names (e.g. train / valid). Image datasets
(image.hdf5 made by robomimic's dataset_states_to_obs) hold uint8 (T, 84, 84, 3) frames under
``obs/<camera>_image``, upright (robomimic flips MuJoCo's bottom-up renders when it extracts them),
as our env's frames are. A mapped key is looked up in the demo first (``actions``), then in
``obs``. Episodes are the demos in numeric order; each keeps its number as the store's seed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import numpy as np

from s2robot.data.formats import FormatError
from s2robot.data.formats.mapping import KeyMapping
from s2robot.data.formats.source import Source, SourceEpisode

_CONTROLLER_KINDS = {
    "OSC_POSE": "osc_pose_delta",
    "OSC_POSITION": "osc_position_delta",
    "JOINT_VELOCITY": "joint_velocity",
}


def is_robomimic(path: str) -> bool:
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in (".hdf5", ".h5", ".hdf")


def controller_type(env_kwargs: dict) -> str:
    """OSC_POSE etc., from robomimic's (robosuite 1.2-1.4) flat controller config or robosuite 1.5's
    composite one (type BASIC, the arm's controller under body_parts)."""
    cfg = env_kwargs.get("controller_configs") or {}
    parts = cfg.get("body_parts") or {}
    arm = parts.get("right") or parts.get("arms", {}).get("right") or next(iter(parts.values()), None)
    return str((arm or cfg).get("type", "unknown"))


class RobomimicSource(Source):
    format = "robomimic"

    def __init__(self, path: str, filter_key: str | None = None):
        import h5py

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FormatError(f"{self.path}: no such file; a robomimic dataset is one .hdf5 file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as e:
            raise FormatError(f"{self.path}: not an HDF5 file ({e}); give a robomimic .hdf5 dataset") from e
        data = self._file.get("data")
        demos = [n for n in (data.keys() if isinstance(data, h5py.Group) else ()) if n.startswith("demo_")]
        if not demos:
            raise FormatError(f"{self.path}: not a robomimic dataset (no data/demo_* groups)")
        if filter_key is not None:
            mask = self._file.get(f"mask/{filter_key}")
            if mask is None:
                have = list(self._file["mask"]) if "mask" in self._file else []
                raise FormatError(f"{self.path}: no filter key {filter_key!r} under mask/ (it has {have})")
            demos = [n.decode() if isinstance(n, bytes) else str(n) for n in mask[()]]
        self.demos = sorted(demos, key=lambda n: int(n.split("_")[-1]))
        try:
            self.env_args = json.loads(data.attrs.get("env_args", "{}"))
        except (TypeError, ValueError) as e:
            raise FormatError(f"{self.path}: data attrs env_args is not JSON ({e})") from e
        kwargs = self.env_args.get("env_kwargs", {})
        self.fps = float(kwargs.get("control_freq", 20))
        robots = kwargs.get("robots", "robot")
        robot = robots[0] if isinstance(robots, list) and robots else robots
        self.controller = controller_type(kwargs)
        self.robot_name = f"robomimic {self.env_args.get('env_name', 'dataset')} ({robot}, {self.controller})"
        self.robot = None
        self.attrs = {"robomimic": {"env_args": self.env_args, "filter_key": filter_key}}

    def _dataset(self, demo: str, key: str):
        group = self._file[f"data/{demo}"]
        for where in (group, group.get("obs")):
            if where is not None and key in where and hasattr(where[key], "shape"):
                return where[key]
        obs = sorted(group["obs"]) if "obs" in group else []
        raise FormatError(
            f"{self.path}: mapped key {key!r} is not in {demo} (its obs keys: {', '.join(obs)}); "
            f"fix the mapping (--camera/--proprio/--action or --mapping)"
        )

    def resolve(self, mapping: KeyMapping) -> KeyMapping:
        first = self._file[f"data/{self.demos[0]}"]
        obs = first.get("obs", {})
        cameras = mapping.cameras
        if cameras is None:  # every image observation, named as robomimic's cameras are
            cameras = {k: k.removesuffix("_image") for k in obs if obs[k].ndim == 4}
        changes = {"cameras": cameras, "proprio": tuple(mapping.proprio or ())}
        robot = dict(mapping.robot)
        if mapping.robot.get("action_kind") is None and self.controller in _CONTROLLER_KINDS:
            robot["action_kind"] = _CONTROLLER_KINDS[self.controller]
        mapping = KeyMapping(**{**mapping.__dict__, **changes, "robot": robot})
        for key in [*mapping.cameras, *mapping.proprio, mapping.action, *mapping.extra]:
            self._dataset(self.demos[0], key)
        for key in mapping.cameras:
            ds = self._dataset(self.demos[0], key)
            if ds.dtype != np.uint8 or ds.ndim != 4:
                raise FormatError(f"{self.path}: {key!r} holds {ds.dtype}{ds.shape[1:]} per step, not uint8 frames")
        return mapping

    def camera_shape(self, key: str) -> tuple[int, int]:
        shape = self._dataset(self.demos[0], key).shape
        return int(shape[1]), int(shape[2])

    def key_dim(self, key: str) -> int:
        return int(np.prod(self._dataset(self.demos[0], key).shape[1:]))

    def action_range(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        values = [np.asarray(self._dataset(d, key)[()]).reshape(-1, self.key_dim(key)) for d in self.demos]
        both = np.concatenate(values)
        return both.min(axis=0), both.max(axis=0)

    def episodes(self, keys: list[str], start: int = 0) -> Iterator[SourceEpisode]:
        try:
            for demo in self.demos[start:]:
                n = int(demo.split("_")[-1])
                arrays = {k: np.asarray(self._dataset(demo, k)[()]) for k in keys}
                yield SourceEpisode(index=n, name=demo, arrays=arrays, seed=n)
        finally:
            self._file.close()
