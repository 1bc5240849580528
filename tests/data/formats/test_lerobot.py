"""LeRobotDataset v3.0: our store exported and imported back is the same store (frames within the
codec's error), other makers' datasets import with the default mapping, and each bad input is
one FormatError line with the committed episodes kept."""

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from s2robot.data.formats import FormatError
from s2robot.data.formats.importer import import_dataset, open_source
from s2robot.data.formats.lerobot_export import export_lerobot
from s2robot.data.formats.mapping import LEROBOT, KeyMapping
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.robot_description import from_store_attrs
from tests.data.formats.datasets import CAMERAS, make_lerobot_images, make_store

# H.264 (CRF 10, yuv420p): measured 2.3/255 on these 32 px frames, 1.3/255 on 224 px CubePick renders
FRAME_MAE = 3 / 255


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    store = make_store(root / "store.zarr")
    export_lerobot(str(store), str(root / "ds"))
    return store, root / "ds"


def test_export_writes_the_v3_layout(exported):
    store, ds = exported
    info = json.loads((ds / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_episodes"] == 2
    assert info["total_frames"] == 20 and info["robot_type"].startswith("CubePick-v0")
    feats = info["features"]
    assert feats["observation.images.agentview"]["dtype"] == "video"
    assert feats["observation.images.agentview"]["shape"] == [32, 32, 3]
    assert feats["observation.state"] == {
        "dtype": "float32",
        "shape": [9],
        "names": feats["observation.state"]["names"],
    }
    assert feats["action"]["shape"] == [7] and "observation.cube_pos" in feats and "frame_index" in feats
    for cam in CAMERAS:
        assert (ds / "videos" / f"observation.images.{cam}" / "chunk-000" / "file-000.mp4").stat().st_size > 0
    data = pq.read_table(ds / "data" / "chunk-000" / "file-000.parquet")
    assert data.num_rows == 20 and data.column("index").to_pylist() == list(range(20))
    eps = pq.read_table(ds / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["length"] for e in eps] == [10, 10] and eps[1]["dataset_from_index"] == 10
    assert eps[1]["videos/observation.images.agentview/from_timestamp"] == pytest.approx(0.5)
    stats = json.loads((ds / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 7 and np.shape(stats["observation.images.agentview"]["mean"]) == (3, 1, 1)
    tasks = pq.read_table(ds / "meta" / "tasks.parquet")
    assert tasks.column("task_index").to_pylist() == [0] and b"pandas" in tasks.schema.metadata


def test_round_trip_is_the_same_store(exported, tmp_path):
    store, ds = exported
    import_dataset(open_source(ds), tmp_path / "back.zarr", LEROBOT)
    a, b = ReplayBuffer.open(store), ReplayBuffer.open(tmp_path / "back.zarr")
    assert a.keys == b.keys
    for key in a.keys:
        x, y = a[key], b[key]
        assert x.dtype == y.dtype and x.shape == y.shape, key
        if key in CAMERAS:
            assert np.abs(x.astype(float) - y).mean() < FRAME_MAE * 255, key
        else:
            assert np.array_equal(x, y), key
    for meta in ("episode_ends", "episode_seeds", "episode_success", "episode_round"):
        assert np.array_equal(getattr(a, meta), getattr(b, meta)), meta
    assert from_store_attrs(b.attrs) == from_store_attrs(a.attrs)
    assert {k: v for k, v in b.attrs.items() if k not in ("robot", "source")} == a.attrs
    assert b.attrs["source"]["format"] == "lerobot"


def test_export_refuses_an_existing_folder(exported, tmp_path):
    store, _ = exported
    (tmp_path / "taken").mkdir()
    with pytest.raises(FormatError, match="already exists"):
        export_lerobot(str(store), str(tmp_path / "taken"))


def test_other_makers_dataset_imports_with_the_default_mapping(tmp_path):
    ds = make_lerobot_images(tmp_path / "ds")
    summary = import_dataset(open_source(ds), tmp_path / "s.zarr", LEROBOT)
    buffer = ReplayBuffer.open(tmp_path / "s.zarr")
    assert summary["episodes"] == 2 and buffer.keys == ["action", "proprio", "top"]
    assert buffer.shape("top") == (16, 16, 3) and buffer.n_steps == 9
    robot = from_store_attrs(buffer.attrs)
    assert robot.name == "so100" and robot.control_hz == 10 and robot.cameras == {"top": (16, 16)}
    assert (robot.low <= buffer["action"].min(axis=0)).all() and (robot.high >= buffer["action"].max(axis=0)).all()
    assert list(buffer.episode_seeds) == [0, 1]


def test_resolution_change_mid_episode_keeps_the_episodes_before(tmp_path):
    ds = make_lerobot_images(tmp_path / "ds", bad_frame=(1, 2))
    with pytest.raises(FormatError, match=r"episode 1: camera 'observation.images.top' changes resolution at frame 2"):
        import_dataset(open_source(ds), tmp_path / "s.zarr", LEROBOT)
    assert ReplayBuffer.open(tmp_path / "s.zarr").n_episodes == 1


def test_missing_mapped_key_and_not_a_dataset(tmp_path):
    ds = make_lerobot_images(tmp_path / "ds")
    with pytest.raises(FormatError, match="'observation.images.wrist' is not among the dataset's features"):
        import_dataset(open_source(ds), tmp_path / "s.zarr", KeyMapping(cameras={"observation.images.wrist": "w"}))
    assert not os.path.exists(tmp_path / "s.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FormatError, match="neither a LeRobot dataset folder"):
        open_source(tmp_path / "plain")
    with pytest.raises(FormatError, match="not a LeRobot dataset"):
        open_source(tmp_path / "plain", format="lerobot")


def test_actions_outside_the_bounds_and_resume(tmp_path):
    ds = make_lerobot_images(tmp_path / "ds")
    narrow = KeyMapping(action_bounds=[-2.0, 3.0])
    import_dataset(open_source(ds), tmp_path / "ok.zarr", narrow, max_episodes=1)
    summary = import_dataset(open_source(ds), tmp_path / "ok.zarr", narrow)  # resumes after episode 0
    assert (summary["episodes_before"], summary["episodes"]) == (1, 2)
    with pytest.raises(FormatError, match=r"episode 0: action\[\d\]=.* outside the declared bounds \[-1, 1\]"):
        import_dataset(open_source(ds), tmp_path / "bad.zarr", KeyMapping(action_bounds=[-1, 1]))
    assert not os.path.exists(tmp_path / "bad.zarr")  # made by this import, nothing committed: removed


def test_store_of_another_robot_is_refused(exported, tmp_path):
    _, ds = exported
    make_store(tmp_path / "other.zarr", n_episodes=1, size=16)
    with pytest.raises(FormatError, match="exists with another robot description"):
        import_dataset(open_source(ds), tmp_path / "other.zarr", LEROBOT)
    assert ReplayBuffer.open(tmp_path / "other.zarr").n_episodes == 1


def test_v21_dataset_imports(tmp_path):
    """LeRobot v2.1: one parquet and one mp4 per camera per episode, meta/episodes.jsonl."""
    import pyarrow as pa

    from s2robot.data.formats.video import open_writer
    from tests.data.formats.datasets import frames

    root, lengths = tmp_path / "v21", (3, 4)
    for e, n in enumerate(lengths):
        video = root / "videos" / "chunk-000" / "observation.images.front" / f"episode_{e:06d}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        writer = open_writer(str(video), 15, 16, 16)
        for frame in frames(n, 16, seed=e):
            writer.append_data(frame)
        writer.close()
        (root / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
        rows = {"observation.state": [[float(e), float(t)] for t in range(n)], "action": [[0.1 * t] for t in range(n)],
                "episode_index": [e] * n, "frame_index": list(range(n))}  # fmt: skip
        pq.write_table(pa.table(rows), root / "data" / "chunk-000" / f"episode_{e:06d}.parquet")
    features = {
        "observation.images.front": {"dtype": "video", "shape": [16, 16, 3], "names": ["height", "width", "channel"]},
        "observation.state": {"dtype": "float32", "shape": [2]},
        "action": {"dtype": "float32", "shape": [1]},
    }
    info = {"codebase_version": "v2.1", "fps": 15, "chunks_size": 1000, "features": features,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"}  # fmt: skip
    (root / "meta").mkdir()
    (root / "meta" / "info.json").write_text(json.dumps(info))
    episodes = [json.dumps({"episode_index": e, "tasks": ["t"], "length": n}) for e, n in enumerate(lengths)]
    (root / "meta" / "episodes.jsonl").write_text("\n".join(episodes) + "\n")
    import_dataset(open_source(root), tmp_path / "s.zarr", LEROBOT)
    buffer = ReplayBuffer.open(tmp_path / "s.zarr")
    assert buffer.keys == ["action", "front", "proprio"] and list(buffer.episode_lengths) == [3, 4]
    assert np.array_equal(buffer.get_episode(1)["proprio"][:, 1], np.arange(4, dtype=np.float32))
    # 16 px frames are the codec's worst case (~4/255): this checks which frames came, not fidelity
    assert np.abs(buffer.get_episode(1)["front"].astype(float) - frames(4, 16, seed=1)).mean() < 8
    assert from_store_attrs(buffer.attrs).control_hz == 15
