import json
import os
import shutil
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


# -- crashes during the first episode, torn commits, creation ----------------------------------------


def _kill_script(path, when: str, body: str) -> str:
    """A child that SIGKILLs itself at the first zarr append for which `when` is true."""
    return textwrap.dedent(
        f"""
        import os, signal
        import numpy as np, zarr
        from s2robot.data.replay_buffer import ReplayBuffer
        original = zarr.Array.append
        def append_or_die(self, *args, **kwargs):
            if {when}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        zarr.Array.append = append_or_die
        rng = np.random.default_rng(5)
        episode = {{
            "agentview": rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
            "proprio": rng.normal(size=(6, 9)).astype(np.float32),
            "action": rng.normal(size=(6, 7)).astype(np.float32),
        }}
        """
    ) + textwrap.dedent(body).replace("PATH", repr(str(path)))


def _data_arrays(path) -> list[str]:
    return sorted(p.name for p in (path / "data").iterdir() if p.is_dir())


def test_first_episode_killed_mid_write_recovers(tmp_path):
    """Killed while the first episode of a new store is written: some data arrays exist, the
    store has no episode. Every rerun used to fail on "episode keys ... differ"."""
    path = tmp_path / "new.zarr"
    script = _kill_script(
        path,
        'self.path == "data/proprio"',
        """
        buffer = ReplayBuffer.create(PATH)
        buffer.add_episode(episode, seed=0)
    """,
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert _data_arrays(path), "the kill should leave some data arrays behind"

    reader = ReplayBuffer.open(path)  # read-only: nothing committed, nothing shown
    assert reader.n_episodes == 0 and reader.keys == [] and reader.n_steps == 0
    writer = ReplayBuffer.open(path, mode="a")  # append: back to the empty store
    assert _data_arrays(path) == []
    new = make_episode(np.random.default_rng(7), 4)
    writer.add_episode(new, seed=3)
    reopened = ReplayBuffer.open(path)
    assert reopened.n_episodes == 1 and reopened.keys == sorted(new)
    for key, value in new.items():
        np.testing.assert_array_equal(reopened.get_episode(0)[key], value)


def test_first_episode_failed_write_rolls_back_to_empty(tmp_path, monkeypatch):
    """A full disk (an exception) mid first episode: the same object then adds the episode cleanly."""
    buffer = ReplayBuffer.create(tmp_path / "new.zarr")
    original = zarr.Array.append

    def disk_full(self, *args, **kwargs):
        if self.path == "data/action":
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zarr.Array, "append", disk_full)
    episode = make_episode(np.random.default_rng(2), 4)
    with pytest.raises(OSError, match="No space"):
        buffer.add_episode(episode)
    monkeypatch.undo()
    assert _data_arrays(tmp_path / "new.zarr") == []
    buffer.add_episode(episode, seed=4)
    reopened = ReplayBuffer.open(tmp_path / "new.zarr")
    assert reopened.n_episodes == 1 and reopened.n_steps == 4
    np.testing.assert_array_equal(reopened["agentview"], episode["agentview"])


@pytest.mark.parametrize("fill", [0, None], ids=["old-store-fill-0", "fill-value"])
def test_commit_killed_between_growing_and_writing_episode_ends(filled, fill):
    """zarr grows an array before writing the new row: a kill in between leaves episode_ends with a
    last row that reads as the fill value. That episode is uncommitted, not a corrupt store."""
    path, episodes = filled
    raw = zarr.open_group(str(path), mode="r+")
    extra = make_episode(np.random.default_rng(9), 2)
    for key, value in extra.items():
        raw[f"data/{key}"].append(value)
    for name, value in [("episode_seeds", 14), ("episode_success", True)]:
        raw[f"meta/{name}"].append(np.array([value]))
    raw["meta/episode_ends"].resize((4,))
    if fill is not None:  # as a store made before episode_ends had fill value -1
        raw["meta/episode_ends"][3] = fill
    assert ReplayBuffer.open(path).n_episodes == 3
    writer = ReplayBuffer.open(path, mode="a")
    assert zarr.open_group(str(path), mode="r")["meta/episode_ends"].shape == (3,)
    writer.add_episode(extra, seed=14)
    reopened = ReplayBuffer.open(path)
    np.testing.assert_array_equal(reopened.episode_ends, [5, 8, 15, 17])
    np.testing.assert_array_equal(reopened.get_episode(3)["action"], extra["action"])


def test_skipped_seed_killed_between_growing_and_writing_is_ignored(filled):
    path, _ = filled
    zarr.open_group(str(path), mode="r+")["meta/skipped_seeds"].resize((2,))  # grown, seed not written
    np.testing.assert_array_equal(ReplayBuffer.open(path).skipped_seeds, [12])


def test_create_killed_midway_leaves_no_store(tmp_path):
    """A store exists only once it is complete: a kill during create used to leave a folder that
    every later run refused ("store is incomplete")."""
    path = tmp_path / "new.zarr"
    script = textwrap.dedent(
        f"""
        import os, signal, zarr
        from s2robot.data.replay_buffer import ReplayBuffer
        original = zarr.Group.create_array
        def die(self, name, **kwargs):
            if name == "episode_success":
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, name, **kwargs)
        zarr.Group.create_array = die
        ReplayBuffer.create({str(path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert not path.exists()
    assert ReplayBuffer.create(path).n_episodes == 0 and ReplayBuffer.open(path).n_episodes == 0


# -- damaged chunks ---------------------------------------------------------------------------------


def _chunk(path, key: str, row: int, image: bool = True):
    return path / "data" / key / "c" / str(row if image else row // LOWDIM_CHUNK) / "0" / ("0/0" if image else "")


def test_new_arrays_are_checksummed_and_keep_all_zero_chunks(tmp_path):
    buffer = ReplayBuffer.create(tmp_path / "z.zarr")
    episode = {k: np.zeros_like(v) for k, v in make_episode(np.random.default_rng(0), 3).items()}
    buffer.add_episode(episode)
    group = zarr.open_group(str(tmp_path / "z.zarr"), mode="r")
    for name in ("data/agentview", "data/action", "meta/episode_ends", "meta/skipped_seeds"):
        assert "crc32c" in json.dumps(group[name].metadata.to_dict()), name
    # zarr skips all-zero (fill value) chunks by default: here each must be on disk
    assert sorted(os.listdir(tmp_path / "z.zarr" / "data" / "agentview" / "c")) == ["0", "1", "2"]
    assert (tmp_path / "z.zarr" / "data" / "action" / "c" / "0" / "0").exists()
    assert buffer.verify() == []


def test_corrupt_chunk_names_store_key_and_episode(filled):
    path, episodes = filled
    chunk = _chunk(path, "agentview", 6)  # step 6: episode 1 (steps 5..7)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    buffer = ReplayBuffer.open(path)
    with pytest.raises(StoreError, match=r"s\.zarr.*data/agentview rows 6\.\.6 \(episode 1\).*--verify.*collect"):
        buffer["agentview"]
    with pytest.raises(StoreError, match="episode 1"):
        buffer.get_episode(1)
    np.testing.assert_array_equal(buffer.get_episode(0)["agentview"], episodes[0]["agentview"])  # the rest reads
    np.testing.assert_array_equal(buffer.get_episode(1, keys=("action",))["action"], episodes[1]["action"])
    [problem] = buffer.verify()
    assert problem.startswith("data/agentview rows 6..6 (episode 1): does not decode")


def test_missing_chunk_file_is_not_read_as_zeros(filled):
    path, episodes = filled
    _chunk(path, "agentview", 9).unlink()  # step 9: episode 2
    buffer = ReplayBuffer.open(path)
    with pytest.raises(StoreError, match=r"data/agentview rows 9\.\.9 \(episode 2\): chunk file missing"):
        buffer.get_episode(2)
    np.testing.assert_array_equal(buffer.get_episode(1)["agentview"], episodes[1]["agentview"])
    _chunk(path, "proprio", 0, image=False).unlink()  # all 15 steps of proprio in one chunk
    with pytest.raises(StoreError, match=r"data/proprio rows 2\.\.6 \(episodes 0\.\.1\): chunk file missing"):
        buffer.read("proprio", 2, 7)
    assert buffer.verify() == [
        "data/agentview rows 9..9 (episode 2): chunk file missing",
        "data/proprio rows 0..14 (episodes 0..2): chunk file missing",
    ]


def test_damage_beyond_the_committed_steps_is_no_damage(filled):
    path, _ = filled
    raw = zarr.open_group(str(path), mode="r+")
    raw["data/agentview"].append(np.ones((2, 8, 8, 3), np.uint8))  # an uncommitted tail...
    _chunk(path, "agentview", 16).unlink()  # ...partly lost
    assert ReplayBuffer.open(path).verify() == []


def test_old_store_without_checksums_reads_verifies_and_grows(tmp_path):
    """tests/fixtures/legacy_v1 was written by the old code: no crc32c codec, fill value 0."""
    from tests.test_legacy_formats import LEGACY

    shutil.copytree(LEGACY / "store.zarr", tmp_path / "old.zarr")
    store = ReplayBuffer.open(tmp_path / "old.zarr")
    assert store.verify() == [] and store["agentview"].shape[0] == store.n_steps
    n = store.n_episodes
    episode = store.get_episode(0)
    ReplayBuffer.open(tmp_path / "old.zarr", mode="a").add_episode(episode, seed=99)
    grown = ReplayBuffer.open(tmp_path / "old.zarr")
    assert grown.n_episodes == n + 1 and grown.verify() == []
    np.testing.assert_array_equal(grown.get_episode(n)["agentview"], episode["agentview"])


def test_create_through_a_link_to_another_disk(tmp_path):
    elsewhere = tmp_path / "big_disk" / "demos.zarr"
    elsewhere.parent.mkdir()
    link = tmp_path / "demos.zarr"
    link.symlink_to(elsewhere)  # dangling until the store exists
    buffer = ReplayBuffer.create(link)
    buffer.add_episode(make_episode(np.random.default_rng(0), 3), seed=0)
    assert link.is_symlink() and elsewhere.is_dir()
    assert ReplayBuffer.open(link).n_episodes == 1 and ReplayBuffer.open(elsewhere).n_episodes == 1
