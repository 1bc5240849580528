"""Our store as a LeRobotDataset v3.0 folder, to share demonstrations.

Cameras become ``observation.images.<camera>`` videos (one H.264 mp4 per camera, every episode in
it, video.py), ``proprio`` becomes ``observation.state``, ``action`` stays ``action``, other keys
become ``observation.<key>`` (``action*`` keys keep their name); with LeRobot's own timestamp,
frame_index, episode_index, index and task_index. meta/ holds info.json (features, fps, robot_type,
and an ``s2robot`` block: the robot description, the store's attrs, which feature was which key),
stats.json (min, max, mean, std, count; images per channel in [0, 1]), tasks.parquet and the
episodes table (lengths, file offsets, per-episode stats, and our seed, success and round).

One data file and one video file per camera (chunk-000/file-000): LeRobot splits at 100 MB of
data and 500 MB of video, which readers follow through the episodes table either way. The folder
is built aside and renamed into place: a failed export leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from s2robot.data.formats import FormatError
from s2robot.data.formats.lerobot import IMAGE_PREFIX
from s2robot.data.formats.video import DEFAULT_CRF, open_writer, video_info
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.robot_description import from_store_attrs

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
_INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def feature_name(key: str, cameras: list[str]) -> str:
    if key in cameras:
        return IMAGE_PREFIX + key
    if key == "proprio":
        return "observation.state"
    return key if key.startswith("action") else f"observation.{key}"


def _stats(values: np.ndarray, image: bool) -> dict[str, Any]:
    if image:  # per channel over every pixel, in [0, 1], shaped (3, 1, 1) as LeRobot keeps them
        v = values.reshape(-1, values.shape[-1]).astype(np.float64) / 255.0
        shape = (-1, 1, 1)
    else:
        v, shape = values.reshape(len(values), -1).astype(np.float64), (-1,)
    return {
        "min": v.min(axis=0).reshape(shape).tolist(),
        "max": v.max(axis=0).reshape(shape).tolist(),
        "mean": v.mean(axis=0).reshape(shape).tolist(),
        "std": v.std(axis=0).reshape(shape).tolist(),
        "count": [int(len(values))],
    }


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Dataset stats from per-episode stats (count-weighted mean and variance)."""
    n = np.array([p["count"][0] for p in parts], dtype=np.float64)
    mean = np.array([p["mean"] for p in parts])
    var = np.array([p["std"] for p in parts]) ** 2
    w = (n / n.sum()).reshape(-1, *[1] * (mean.ndim - 1))
    total = (w * mean).sum(axis=0)
    return {
        "min": np.min([p["min"] for p in parts], axis=0).tolist(),
        "max": np.max([p["max"] for p in parts], axis=0).tolist(),
        "mean": total.tolist(),
        "std": np.sqrt((w * (var + (mean - total) ** 2)).sum(axis=0)).tolist(),
        "count": [int(n.sum())],
    }


def _arrow_column(values: np.ndarray):
    import pyarrow as pa

    flat = values.reshape(len(values), -1)
    if flat.shape[1] == 1 and values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])


def _write_tasks(path: str, tasks: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # pandas metadata by hand (no pandas here): LeRobot reads this file with pd.read_parquet and
    # expects the task strings as the index, the task_index as the one column
    columns = [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": None,
            "field_name": "__index_level_0__",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ]
    meta = {"index_columns": ["__index_level_0__"], "column_indexes": [], "columns": columns, "pandas_version": "2.2.0"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "__index_level_0__": pa.array(tasks)})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(meta)}), path)


def export_lerobot(store: str, out: str, task: str = "pick up the cube", crf: int = DEFAULT_CRF) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = ReplayBuffer.open(store)
    if buffer.n_episodes == 0:
        raise FormatError(f"{store}: the store holds no episode; nothing to export")
    if os.path.exists(out):
        raise FormatError(f"{out}: already exists; choose another output folder or delete it")
    robot = from_store_attrs(buffer.attrs)
    fps = int(robot.control_hz) if float(robot.control_hz).is_integer() else float(robot.control_hz)
    cameras = [k for k in buffer.keys if buffer.dtype(k) == np.uint8 and len(buffer.shape(k)) == 3]
    names = {k: feature_name(k, cameras) for k in buffer.keys}
    parent, base = os.path.split(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{base}.exporting-", dir=parent)
    writers = {}
    try:
        for cam in cameras:
            path = os.path.join(tmp, VIDEO_PATH.format(video_key=names[cam], chunk_index=0, file_index=0))
            os.makedirs(os.path.dirname(path))
            writers[cam] = open_writer(path, fps, *buffer.shape(cam)[:2], crf=crf)
        columns: dict[str, list[np.ndarray]] = {k: [] for k in [*buffer.keys, *_INDEX_FEATURES] if k not in cameras}
        episodes, ep_stats = [], []
        for i in range(buffer.n_episodes):
            ep = buffer.get_episode(i)
            sl = buffer.episode_slice(i)
            n = sl.stop - sl.start
            for cam in cameras:
                for frame in ep[cam]:
                    writers[cam].append_data(frame)
            steps = np.arange(n)
            ep.update(
                timestamp=(steps / fps).astype(np.float32),
                frame_index=steps,
                episode_index=np.full(n, i),
                index=np.arange(sl.start, sl.stop),
                task_index=np.zeros(n, dtype=np.int64),
            )
            for key in columns:
                columns[key].append(ep[key])
            stats = {names.get(k, k): _stats(v, k in cameras) for k, v in ep.items()}
            ep_stats.append(stats)
            row = {
                "episode_index": i,
                "tasks": [task],
                "length": n,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": sl.start,
                "dataset_to_index": sl.stop,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "s2robot/seed": int(buffer.episode_seeds[i]),
                "s2robot/success": bool(buffer.episode_success[i]),
                "s2robot/round": int(buffer.episode_round[i]),
            }
            for cam in cameras:
                row.update({f"videos/{names[cam]}/chunk_index": 0, f"videos/{names[cam]}/file_index": 0})
                row[f"videos/{names[cam]}/from_timestamp"] = sl.start / fps
                row[f"videos/{names[cam]}/to_timestamp"] = sl.stop / fps
            row.update({f"stats/{f}/{s}": v for f, st in stats.items() for s, v in st.items()})
            episodes.append(row)
        for writer in writers.values():
            writer.close()
        writers = {}
        data = {names.get(k, k): _arrow_column(np.concatenate(v)) for k, v in columns.items()}
        os.makedirs(os.path.join(tmp, "data", "chunk-000"))
        pq.write_table(pa.table(data), os.path.join(tmp, DATA_PATH.format(chunk_index=0, file_index=0)))
        os.makedirs(os.path.join(tmp, "meta", "episodes", "chunk-000"))
        pq.write_table(
            pa.Table.from_pylist(episodes), os.path.join(tmp, "meta", "episodes", "chunk-000", "file-000.parquet")
        )
        _write_tasks(os.path.join(tmp, "meta", "tasks.parquet"), [task])
        stats = {f: _merge([s[f] for s in ep_stats]) for f in ep_stats[0]}
        features = {}
        for key in buffer.keys:
            shape = list(buffer.shape(key))
            if key in cameras:
                features[names[key]] = {
                    "dtype": "video",
                    "shape": shape,
                    "names": ["height", "width", "channels"],
                    "info": video_info(shape[0], shape[1], fps),
                }
            else:
                proprio_names = list(robot.proprio_names) if key == "proprio" and robot.proprio_names else None
                features[names[key]] = {"dtype": str(buffer.dtype(key)), "shape": shape, "names": proprio_names}
        features.update(_INDEX_FEATURES)
        attrs = {k: v for k, v in buffer.attrs.items() if k not in ("layout", "layout_version", "robot")}
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot.name,
            "total_episodes": buffer.n_episodes,
            "total_frames": buffer.n_steps,
            "total_tasks": 1,
            "chunks_size": 1000,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500,
            "fps": fps,
            "splits": {"train": f"0:{buffer.n_episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if cameras else None,
            "features": features,
            "s2robot": {"robot": robot.to_dict(), "attrs": attrs, "keys": names, "store": os.path.abspath(store)},
        }
        for name, content in (("info.json", info), ("stats.json", stats)):
            with open(os.path.join(tmp, "meta", name), "w") as f:
                json.dump(content, f, indent=2)
        os.rename(tmp, out)
    finally:
        for writer in writers.values():  # an export that failed midway: no ffmpeg left running
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": out, "episodes": buffer.n_episodes, "frames": buffer.n_steps, "cameras": cameras, "fps": fps}
