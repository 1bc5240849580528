"""Reading a LeRobotDataset (v3.0; v2.1/v2.0 too) from a local folder, with pyarrow and imageio.

v3.0: meta/info.json (fps, features, path templates), meta/episodes/chunk-*/file-*.parquet (one
row per episode: length, data file, per camera the video file and the episode's first timestamp in
it), data/chunk-*/file-*.parquet (frames of many episodes, one row per step) and
videos/<feature>/chunk-*/file-*.mp4 (many episodes per file). v2.x: meta/episodes.jsonl and one
parquet and one mp4 per camera per episode. Image features (PNG bytes in the parquet) are read too.

A dataset written by our export (lerobot_export.py) carries an ``s2robot`` block in info.json:
the robot description, the store's attrs, which feature was which store key, and per episode
seed, success and round, so that it imports back as the store it came from."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator

import numpy as np

from s2robot.data.formats import FormatError
from s2robot.data.formats.mapping import KeyMapping
from s2robot.data.formats.source import Source, SourceEpisode
from s2robot.data.formats.video import FrameReader
from s2robot.robot_description import RobotDescription

IMAGE_PREFIX = "observation.images."
_V2_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
_V2_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def is_lerobot(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "meta", "info.json"))


def column(table, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A parquet column of (fixed-size) lists or scalars as a (rows, *shape) array."""
    import pyarrow as pa

    col = table.column(name).combine_chunks()
    while pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        col = col.flatten()
    return np.asarray(col.to_numpy(zero_copy_only=False)).reshape(len(table), *shape).astype(dtype, copy=False)


def _hw(feature: dict) -> tuple[int, int]:
    shape, names = list(feature["shape"]), list(feature.get("names") or [])
    if names and str(names[0]).startswith("channel"):  # channel-first features: (3, H, W)
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


class LeRobotSource(Source):
    format = "lerobot"

    def __init__(self, path: str):
        self.path = os.fspath(path)
        if not is_lerobot(self.path):
            raise FormatError(
                f"{self.path}: not a LeRobot dataset (no meta/info.json); give the dataset's root folder, "
                f"or --format robomimic for an HDF5 file"
            )
        try:
            with open(os.path.join(self.path, "meta", "info.json")) as f:
                self.info = json.load(f)
            self.version = str(self.info.get("codebase_version", ""))
            self.fps = float(self.info["fps"])
            self.features: dict[str, dict] = dict(self.info["features"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise FormatError(
                f"{self.path}: meta/info.json is not a LeRobot info file ({type(e).__name__}: {e})"
            ) from e
        if not self.version.startswith(("v2.", "v3.")):
            raise FormatError(f"{self.path}: LeRobot codebase_version {self.version!r}; this reads v2.x and v3.x")
        self.robot_name = str(self.info.get("robot_type") or f"LeRobot dataset {os.path.basename(self.path)}")
        self._ours = self.info.get("s2robot") or {}
        self.robot = RobotDescription.from_dict(self._ours["robot"]) if "robot" in self._ours else None
        self.attrs = dict(self._ours.get("attrs", {}))
        self._meta = self._episode_meta()
        self._tables: dict[str, object] = {}
        self._videos: dict[str, FrameReader] = {}

    def _episode_meta(self) -> list[dict]:
        if self.version.startswith("v2."):
            path = os.path.join(self.path, "meta", "episodes.jsonl")
            if not os.path.isfile(path):
                raise FormatError(f"{self.path}: LeRobot {self.version} dataset without meta/episodes.jsonl")
            with open(path) as f:
                return sorted((json.loads(line) for line in f if line.strip()), key=lambda e: e["episode_index"])
        import pyarrow.parquet as pq

        files = sorted(glob.glob(os.path.join(self.path, "meta", "episodes", "chunk-*", "file-*.parquet")))
        if not files:
            raise FormatError(f"{self.path}: LeRobot {self.version} dataset without meta/episodes/*/*.parquet")
        rows = [row for f in files for row in pq.read_table(f).to_pylist()]
        return sorted(rows, key=lambda e: e["episode_index"])

    # -- what the dataset holds -------------------------------------------------------------------

    def _carried(self) -> KeyMapping | None:
        keys = self._ours.get("keys")
        if not keys:
            return None
        cameras = {f: k for k, f in keys.items() if self.features[f]["dtype"] in ("video", "image")}
        extra = {f: k for k, f in keys.items() if f not in cameras and k not in ("proprio", "action")}
        proprio = ("observation.state",) if "proprio" in keys else ()
        return KeyMapping(cameras=cameras, proprio=proprio, action=keys["action"], extra=extra)

    def resolve(self, mapping: KeyMapping) -> KeyMapping:
        carried = self._carried()
        if carried is not None and mapping.cameras is None and mapping.proprio is None and not mapping.extra:
            mapping = KeyMapping(**{**carried.__dict__, "action_bounds": mapping.action_bounds, "robot": mapping.robot})
        cameras = mapping.cameras
        if cameras is None:
            cameras = {
                k: k.removeprefix(IMAGE_PREFIX) for k, f in self.features.items() if f["dtype"] in ("video", "image")
            }
        proprio = mapping.proprio
        if proprio is None:
            proprio = ("observation.state",) if "observation.state" in self.features else ()
        mapping = KeyMapping(**{**mapping.__dict__, "cameras": cameras, "proprio": tuple(proprio)})
        for key in [*cameras, *proprio, mapping.action, *mapping.extra]:
            if key not in self.features:
                raise FormatError(
                    f"{self.path}: mapped key {key!r} is not among the dataset's features "
                    f"({', '.join(sorted(self.features))}); fix the mapping"
                )
        for key in cameras:
            if self.features[key]["dtype"] not in ("video", "image"):
                raise FormatError(f"{self.path}: {key!r} is a {self.features[key]['dtype']} feature, not a camera")
        if carried is None or mapping.__dict__ | {"action_bounds": "data"} != carried.__dict__:
            self.robot = None  # remapped: the carried description no longer says what the store holds
        return mapping

    def camera_shape(self, key: str) -> tuple[int, int]:
        return _hw(self.features[key])

    def key_dim(self, key: str) -> int:
        return int(np.prod(self.features[key]["shape"]))

    def action_range(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        stats_path = os.path.join(self.path, "meta", "stats.json")
        if os.path.isfile(stats_path):
            with open(stats_path) as f:
                stats = json.load(f).get(key, {})
            if "min" in stats and "max" in stats:
                return np.ravel(stats["min"]), np.ravel(stats["max"])
        values = np.concatenate([self._steps(ep, [key])[key] for ep in self._meta])
        return values.min(axis=0), values.max(axis=0)

    # -- episodes ---------------------------------------------------------------------------------

    def _data_path(self, ep: dict) -> str:
        if self.version.startswith("v2."):
            chunk = ep["episode_index"] // int(self.info.get("chunks_size", 1000))
            template = self.info.get("data_path", _V2_DATA)
            return template.format(episode_chunk=chunk, episode_index=ep["episode_index"])
        return self.info["data_path"].format(chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"])

    def _steps(self, ep: dict, keys: list[str]) -> dict[str, np.ndarray]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        rel = self._data_path(ep)
        if rel not in self._tables:
            path = os.path.join(self.path, rel)
            if not os.path.isfile(path):
                raise FormatError(f"{self.path}: episode {ep['episode_index']}'s data file {rel} is missing")
            self._tables = {rel: pq.read_table(path)}  # one file at a time: episodes come in file order
        table = self._tables[rel]
        if "episode_index" in table.column_names:
            table = table.filter(pc.equal(table.column("episode_index"), ep["episode_index"]))
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        out = {}
        for key in keys:
            feature = self.features[key]
            if feature["dtype"] == "video":
                continue
            if key not in table.column_names:
                raise FormatError(f"{self.path}: {rel} has no column {key!r} though info.json lists it")
            if feature["dtype"] == "image":
                out[key] = _decode_images(table.column(key).to_pylist(), key, ep["episode_index"])
            elif feature["dtype"] != "string":
                out[key] = column(table, key, tuple(feature["shape"]), np.dtype(feature["dtype"]))
        return out

    def _video(self, key: str, ep: dict) -> np.ndarray:
        if self.version.startswith("v2."):
            chunk = ep["episode_index"] // int(self.info.get("chunks_size", 1000))
            template = self.info.get("video_path", _V2_VIDEO)
            rel, first = template.format(episode_chunk=chunk, video_key=key, episode_index=ep["episode_index"]), 0
        else:
            chunk, file = ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"]
            rel = self.info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
            first = int(round(float(ep[f"videos/{key}/from_timestamp"]) * self.fps))
        if key not in self._videos or self._videos[key].path != os.path.join(self.path, rel):
            if key in self._videos:
                self._videos[key].close()
            self._videos[key] = FrameReader(os.path.join(self.path, rel))
        return self._videos[key].read(first, first + int(ep["length"]))

    def episodes(self, keys: list[str], start: int = 0) -> Iterator[SourceEpisode]:
        try:
            for ep in self._meta[start:]:
                i = int(ep["episode_index"])
                arrays = self._steps(ep, [k for k in keys if self.features[k]["dtype"] != "video"])
                arrays.update({k: self._video(k, ep) for k in keys if self.features[k]["dtype"] == "video"})
                yield SourceEpisode(
                    index=i,
                    name=f"episode {i}",
                    arrays=arrays,
                    seed=int(ep.get("s2robot/seed", i)),
                    success=bool(ep.get("s2robot/success", True)),
                    round=int(ep.get("s2robot/round", 0)),
                )
        finally:
            for reader in self._videos.values():
                reader.close()
            self._videos = {}


def _decode_images(cells: list, key: str, episode: int) -> np.ndarray:
    import imageio.v3 as iio

    frames = []
    for t, cell in enumerate(cells):
        data = cell.get("bytes") if isinstance(cell, dict) else cell
        frame = np.asarray(iio.imread(data))[..., :3]
        if frames and frame.shape != frames[0].shape:
            raise FormatError(
                f"episode {episode}: camera {key!r} changes resolution at frame {t} "
                f"({frames[0].shape[:2]} -> {frame.shape[:2]}); every frame of a camera must have one size"
            )
        frames.append(frame)
    return np.stack(frames)
