import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import zarr

from s2robot.data.replay_buffer import LAYOUT_VERSION, LOWDIM_CHUNK, ReplayBuffer, StoreError


def make_episode(rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    return {
        "agentview": rng.integers(0, 256, (length, 8, 8, 3), dtype=np.uint8),
        "proprio": rng.normal(size=(length, 9)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, 7)).astype(np.float32),
    }


@pytest.fixture
def filled(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [make_episode(rng, n) for n in (5, 3, 7)]
    buffer = ReplayBuffer.create(tmp_path / "s.zarr", attrs={"env": {"image_size": 8}})
    for seed, episode in zip((10, 11, 13), episodes):
        buffer.add_episode(episode, seed=seed)
    buffer.add_skipped_seed(12)
    return tmp_path / "s.zarr", episodes


def test_round_trip(filled):
    path, episodes = filled
    buffer = ReplayBuffer.open(path)
    assert buffer.n_episodes == len(buffer) == 3 and buffer.n_steps == 15
    np.testing.assert_array_equal(buffer.episode_ends, [5, 8, 15])
    np.testing.assert_array_equal(buffer.episode_seeds, [10, 11, 13])
    np.testing.assert_array_equal(buffer.skipped_seeds, [12])
    assert buffer.keys == ["action", "agentview", "proprio"]
    assert buffer.attrs["env"] == {"image_size": 8} and buffer.attrs["layout_version"] == LAYOUT_VERSION
    assert buffer.shape("agentview") == (8, 8, 3) and buffer.dtype("agentview") == np.uint8
    for i, episode in enumerate(buffer):
        for key, value in episodes[i].items():
            np.testing.assert_array_equal(episode[key], value)
    np.testing.assert_array_equal(buffer["proprio"], np.concatenate([e["proprio"] for e in episodes]))
    np.testing.assert_array_equal(buffer.read("action", 5, 8), episodes[1]["action"])
    np.testing.assert_array_equal(buffer.get_episode(-1)["agentview"], episodes[2]["agentview"])
    # images one frame per chunk, low-dim arrays chunked over time, zstd-compressed
    group = zarr.open_group(str(path), mode="r")
    assert group["data/agentview"].chunks == (1, 8, 8, 3)
    assert group["data/proprio"].chunks == (LOWDIM_CHUNK, 9)
    assert "zstd" in json.dumps(group["data/agentview"].metadata.to_dict())
    assert group["meta/episode_ends"].dtype == np.int64


def test_add_episode_validates(filled):
    path, _ = filled
    buffer = ReplayBuffer.open(path, mode="a")
    rng = np.random.default_rng(1)
    episode = make_episode(rng, 4)
    with pytest.raises(ValueError, match="keys"):
        buffer.add_episode({k: v for k, v in episode.items() if k != "action"})
    with pytest.raises(ValueError, match="equal length"):
        buffer.add_episode({**episode, "action": episode["action"][:2]})
    with pytest.raises(ValueError, match="store has"):
        buffer.add_episode({**episode, "proprio": episode["proprio"].astype(np.float64)})
    assert buffer.n_episodes == 3
    with pytest.raises(StoreError, match="read-only"):
        ReplayBuffer.open(path).add_episode(episode)


def test_crash_mid_episode_is_rolled_back(filled):
    """A process killed between writing an episode's data and committing it loses only that episode."""
    path, episodes = filled
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np, zarr
        from s2robot.data.replay_buffer import ReplayBuffer
        original = zarr.Array.append
        def append_then_die(self, *args, **kwargs):
            if self.path == "meta/episode_ends":  # every data array is written, the commit is not
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        zarr.Array.append = append_then_die
        buffer = ReplayBuffer.open({str(path)!r}, mode="a")
        rng = np.random.default_rng(5)
        buffer.add_episode({{
            "agentview": rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
            "proprio": rng.normal(size=(6, 9)).astype(np.float32),
            "action": rng.normal(size=(6, 7)).astype(np.float32),
        }}, seed=99)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    raw = zarr.open_group(str(path), mode="r")
    assert raw["data/agentview"].shape[0] == 21 and raw["meta/episode_seeds"].shape[0] == 4  # the dirty tail

    reader = ReplayBuffer.open(path)  # read-only: ignores the tail
    assert reader.n_episodes == 3 and reader["action"].shape[0] == 15
    np.testing.assert_array_equal(reader.episode_seeds, [10, 11, 13])

    writer = ReplayBuffer.open(path, mode="a")  # append: truncates the tail
    assert zarr.open_group(str(path), mode="r")["data/agentview"].shape[0] == 15
    new = make_episode(np.random.default_rng(7), 2)
    writer.add_episode(new, seed=14)
    reopened = ReplayBuffer.open(path)
    assert reopened.n_episodes == 4
    np.testing.assert_array_equal(reopened.episode_seeds, [10, 11, 13, 14])
    for i, episode in enumerate([*episodes, new]):
        for key, value in episode.items():
            np.testing.assert_array_equal(reopened.get_episode(i)[key], value)


def test_exception_before_commit_rolls_back(filled, monkeypatch):
    path, episodes = filled
    buffer = ReplayBuffer.open(path, mode="a")
    original = zarr.Array.append
    data_rows = []

    def fail_at_commit(self, *args, **kwargs):
        if self.path == "meta/episode_ends":
            data_rows.append(zarr.open_group(str(path), mode="r")["data/action"].shape[0])
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zarr.Array, "append", fail_at_commit)
    with pytest.raises(OSError, match="disk full"):
        buffer.add_episode(make_episode(np.random.default_rng(2), 4))
    monkeypatch.undo()
    assert data_rows == [19]  # the data had been written when the commit failed
    # the same object goes on cleanly: the failed episode's rows were rolled back
    new = make_episode(np.random.default_rng(3), 2)
    buffer.add_episode(new, seed=20)
    reopened = ReplayBuffer.open(path)
    assert reopened.n_steps == 17
    np.testing.assert_array_equal(reopened.get_episode(3)["action"], new["action"])
    np.testing.assert_array_equal(reopened.episode_seeds, [10, 11, 13, 20])


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match=r"nope\.zarr.*collect_demos"):
        ReplayBuffer.open(tmp_path / "nope.zarr")


def test_corrupt_store(filled):
    path, _ = filled
    (path / "zarr.json").write_text("{ not json")
    with pytest.raises(StoreError, match="corrupt"):
        ReplayBuffer.open(path)


def test_not_a_replay_buffer(tmp_path):
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["something"] = 1
    with pytest.raises(StoreError, match="not an s2robot replay buffer"):
        ReplayBuffer.open(tmp_path / "other.zarr")
    (tmp_path / "plain_dir").mkdir()
    with pytest.raises(StoreError, match="plain_dir"):
        ReplayBuffer.open(tmp_path / "plain_dir")


def test_other_layout_version(filled):
    path, _ = filled
    zarr.open_group(str(path), mode="r+").attrs["layout_version"] = LAYOUT_VERSION + 1
    with pytest.raises(StoreError, match="layout version"):
        ReplayBuffer.open(path)


def test_missing_meta_array(filled):
    path, _ = filled
    del zarr.open_group(str(path), mode="r+")["meta/episode_ends"]
    with pytest.raises(StoreError, match="episode_ends"):
        ReplayBuffer.open(path)


def test_lost_data_is_reported(filled):
    path, _ = filled
    zarr.open_group(str(path), mode="r+")["data/proprio"].resize((10, 9))
    with pytest.raises(StoreError, match="proprio.*corrupt"):
        ReplayBuffer.open(path)


def test_missing_key(filled):
    path, _ = filled
    with pytest.raises(StoreError, match="robot0_eye_in_hand"):
        ReplayBuffer.open(path, required_keys=("agentview", "robot0_eye_in_hand"))
    with pytest.raises(StoreError, match="no key 'depth'"):
        ReplayBuffer.open(path)["depth"]


def test_create_refuses_existing(filled):
    path, _ = filled
    with pytest.raises(StoreError, match="already exists"):
        ReplayBuffer.create(path)
    assert ReplayBuffer.create(path, overwrite=True).n_episodes == 0
    assert not os.path.exists(path / "data" / "agentview")
