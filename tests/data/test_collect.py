import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.cube_pick import CubePickEnv
from envs.expert import ScriptedExpert
from envs.seeds import EVAL_SEED_START, dagger_seeds
from s2robot.data.collect import collect_demos, dart_std
from s2robot.data.replay_buffer import ReplayBuffer, StoreError

ROOT = Path(__file__).resolve().parents[2]
ENV_CFG = {"image_size": 48, "cameras": ["agentview"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "cube_pick_48.zarr"
    summary = collect_demos(ENV_CFG, path, n_episodes=2, progress=False)
    return path, summary


def test_collect_small_run(store):
    path, summary = store
    buffer = ReplayBuffer.open(path, required_keys=("agentview", "proprio", "action", "cube_pos"))
    assert summary["n_episodes"] == buffer.n_episodes == 2 and summary["expert_success_rate"] > 0
    assert buffer.episode_success.all()
    assert len(buffer.episode_seeds) == 2 and buffer.episode_seeds.min() >= 0
    assert buffer.shape("agentview") == (48, 48, 3) and buffer.shape("cube_pos") == (3,)
    assert np.all(np.abs(buffer["action"]) <= 1.0)
    attrs = buffer.attrs
    # the full env config is recorded, defaults included
    assert attrs["env"]["image_size"] == 48 and attrs["env"]["cameras"] == ["agentview"]
    assert attrs["env"]["horizon"] == 120 and attrs["env"]["placement"]["x_range"] == [-0.15, 0.15]
    assert attrs["expert"] == {
        "name": "ScriptedExpert",
        "label_noise": 0.0,
        "dart_noise": 0.0,
        "dart_per_episode": False,
    }
    assert "action_executed" not in buffer.keys  # without DART the executed action is the label
    np.testing.assert_array_equal(buffer.episode_round, [0, 0])
    assert attrs["versions"]["robosuite"] == "1.5.2" and attrs["eval_seed_start"] == EVAL_SEED_START
    # the stored first frame of each episode is what the env shows after reset(seed)
    env = CubePickEnv(image_size=48)
    for i, seed in enumerate(buffer.episode_seeds):
        obs, info = env.reset(seed=int(seed))
        episode = buffer.get_episode(i)
        np.testing.assert_array_equal(episode["agentview"][0], obs["agentview"])
        np.testing.assert_allclose(episode["cube_pos"][0], info["cube_pos"], rtol=1e-6)
    env.close()
    # the expert lifted the cube: by the last recorded step it has risen off the table
    heights = buffer.get_episode(1)["cube_pos"][:, 2]
    assert heights[-1] > heights.min() + 0.01


def test_resume_continues_with_next_seed(store):
    path, _ = store
    before = ReplayBuffer.open(path)
    seeds_before, frames_before = before.episode_seeds, before["agentview"]
    last_ran = max([*seeds_before, *before.skipped_seeds])
    summary = collect_demos(ENV_CFG, path, n_episodes=3, progress=False)
    after = ReplayBuffer.open(path)
    assert summary["n_episodes_before"] == 2 and after.n_episodes == 3
    new_seed = int(after.episode_seeds[2])
    assert new_seed > last_ran  # no seed is run twice
    assert set(range(last_ran + 1, new_seed)) <= set(after.skipped_seeds)  # and none is left out
    np.testing.assert_array_equal(after["agentview"][: len(frames_before)], frames_before)
    # already complete: nothing runs
    assert collect_demos(ENV_CFG, path, n_episodes=3, progress=False)["attempts"] == 0


def test_resume_refuses_other_settings(store):
    path, _ = store
    with pytest.raises(StoreError, match="expert"):
        collect_demos(ENV_CFG, path, n_episodes=5, expert_noise=0.2, progress=False)
    with pytest.raises(StoreError, match="dart_noise"):
        collect_demos(ENV_CFG, path, n_episodes=5, dart_noise=0.1, progress=False)
    with pytest.raises(StoreError, match="env"):
        collect_demos({**ENV_CFG, "image_size": 64}, path, n_episodes=5, progress=False)


def test_failures_are_skipped_and_their_seeds_recorded(tmp_path):
    hopeless = {"cameras": [], "horizon": 3}  # 3 steps cannot lift the cube
    path = tmp_path / "fail.zarr"
    with pytest.raises(RuntimeError, match="expert succeeded 0/3"):
        collect_demos(hopeless, path, n_episodes=1, max_attempts=3, progress=False)
    buffer = ReplayBuffer.open(path)
    assert buffer.n_episodes == 0
    np.testing.assert_array_equal(buffer.skipped_seeds, [0, 1, 2])
    kept = collect_demos({**hopeless}, tmp_path / "kept.zarr", n_episodes=2, keep_failures=True, progress=False)
    buffer = ReplayBuffer.open(kept["store"])
    assert buffer.n_episodes == 2 and not buffer.episode_success.any()
    np.testing.assert_array_equal(buffer.episode_lengths, [3, 3])


def test_demo_seeds_stay_out_of_evaluation_range(tmp_path):
    with pytest.raises(ValueError, match="evaluation seeds"):
        collect_demos({"cameras": []}, tmp_path / "x.zarr", n_episodes=5, seed_start=EVAL_SEED_START - 2)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_scripts_end_to_end(tmp_path):
    store = tmp_path / "cli.zarr"
    proc = _run(
        "scripts/collect_demos.py",
        "n_episodes=1",
        "env.image_size=32",
        f"store={store}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "expert success" in proc.stdout and ReplayBuffer.open(store).n_episodes == 1
    assert ReplayBuffer.open(store).attrs["env"]["horizon"] == 120  # composed from configs/env/cube_pick.yaml

    proc = _run("scripts/inspect_store.py", str(store))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "episodes: 1" in proc.stdout and "agentview" in proc.stdout and "(32, 32, 3)" in proc.stdout

    video = tmp_path / "ep0.mp4"
    proc = _run("scripts/export_episode.py", str(store), "--episode", "0", "--out", str(video))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert video.stat().st_size > 1000

    proc = _run("scripts/inspect_store.py", str(tmp_path / "missing.zarr"))
    assert proc.returncode != 0 and "missing.zarr" in proc.stderr
    assert not os.path.exists(tmp_path / "missing.zarr")


def test_full_disk_mid_collection_is_one_clear_error_and_resumable(tmp_path, monkeypatch):
    """A write failing mid-episode: a StoreError saying what is kept and what to do (no
    traceback from the command), the store keeps its committed episodes, a rerun resumes."""
    import zarr

    quick = {"cameras": [], "horizon": 3}  # episodes of 3 failed steps: no GL, no waiting
    path = tmp_path / "full.zarr"
    original, calls = zarr.Array.append, []

    def full_on_second_episode(self, *args, **kwargs):
        if self.path == "data/proprio":
            calls.append(1)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zarr.Array, "append", full_on_second_episode)
    with pytest.raises(
        StoreError,
        match=r"full\.zarr: writing the episode of seed 1 failed .*No space.*keeps its 1 "
        r"committed episodes.*run the same command again",
    ):
        collect_demos(quick, path, n_episodes=3, keep_failures=True, progress=False)
    monkeypatch.undo()
    assert ReplayBuffer.open(path).n_episodes == 1
    summary = collect_demos(quick, path, n_episodes=3, keep_failures=True, progress=False)
    buffer = ReplayBuffer.open(path)
    assert summary["n_episodes_before"] == 1 and buffer.n_episodes == 3 and buffer.verify() == []


QUICK = {"cameras": [], "horizon": 3}  # episodes of 3 failed steps: no GL, no waiting


def test_dart_labels_are_clean_while_executed_actions_differ(tmp_path):
    """DART: the executed arm action is noised, the recorded label is the clean expert action of
    the state reached. Replaying the executed actions visits the stored states, and the expert
    labels each one with exactly the stored action."""
    path = tmp_path / "dart.zarr"
    env_cfg = {"cameras": [], "horizon": 15}
    collect_demos(env_cfg, path, n_episodes=2, dart_noise=0.3, keep_failures=True, progress=False)
    buffer = ReplayBuffer.open(path, required_keys=("action", "action_executed"))
    assert buffer.attrs["expert"] == {
        "name": "ScriptedExpert",
        "label_noise": 0.0,
        "dart_noise": 0.3,
        "dart_per_episode": False,
    }
    label, executed = buffer["action"], buffer["action_executed"]
    assert np.abs(executed[:, :6] - label[:, :6]).mean() > 0.1  # noise of std 0.3, partly clipped
    np.testing.assert_array_equal(executed[:, 6], label[:, 6])  # the gripper command stays clean
    env, expert = CubePickEnv(**env_cfg), ScriptedExpert()
    for i, seed in enumerate(buffer.episode_seeds):
        episode = buffer.get_episode(i)
        obs, info = env.reset(seed=int(seed))
        for t in range(len(episode["action"])):
            np.testing.assert_array_equal(obs["proprio"], episode["proprio"][t])
            np.testing.assert_array_equal(expert.label(obs, info), episode["action"][t])
            obs, *_, info = env.step(episode["action_executed"][t])
    env.close()


def test_dart_per_episode_draws_each_episode_its_own_std():
    stds = [dart_std(seed, 0.3, per_episode=True) for seed in range(20)]
    assert all(0 <= s <= 0.3 for s in stds) and len(set(stds)) == 20
    assert stds == [dart_std(seed, 0.3, per_episode=True) for seed in range(20)]  # reproducible
    assert dart_std(5, 0.3, per_episode=False) == 0.3 and dart_std(5, 0.0, per_episode=True) == 0.0


def test_store_of_the_old_expert_attrs_resumes(tmp_path):
    """Stores made before DART recorded expert={name, noise}: label noise under its old name."""
    path = tmp_path / "old.zarr"
    collect_demos(QUICK, path, n_episodes=1, keep_failures=True, progress=False)
    ReplayBuffer.open(path, mode="a").update_attrs(expert={"name": "ScriptedExpert", "noise": 0.0})
    assert collect_demos(QUICK, path, n_episodes=2, keep_failures=True, progress=False)["n_episodes"] == 2
    with pytest.raises(StoreError, match="expert"):
        collect_demos(QUICK, path, n_episodes=3, label_noise=0.1, keep_failures=True, progress=False)
    with pytest.raises(ValueError, match="older name"):
        collect_demos(QUICK, path, n_episodes=3, expert_noise=0.1, label_noise=0.2, progress=False)


def test_resume_ignores_dagger_episodes_in_the_store(tmp_path):
    """DAgger episodes (seeds >= 200000, round >= 1) in a store neither stop nor count toward demos."""
    path = tmp_path / "mixed.zarr"
    collect_demos(QUICK, path, n_episodes=2, keep_failures=True, progress=False)
    buffer = ReplayBuffer.open(path, mode="a")
    buffer.add_episode(buffer.get_episode(0), seed=dagger_seeds(1, 1)[0], success=False, episode_round=1)
    summary = collect_demos(QUICK, path, n_episodes=3, keep_failures=True, progress=False)
    buffer = ReplayBuffer.open(path)
    assert summary["n_episodes_before"] == 2 and buffer.n_episodes == 4
    np.testing.assert_array_equal(buffer.episode_seeds, [0, 1, 210_000, 2])
    np.testing.assert_array_equal(buffer.episode_round, [0, 0, 1, 0])


def test_old_config_key_expert_noise_still_sets_the_label_noise():
    from s2robot.config import validate
    from s2robot.config.collect import label_noise
    from s2robot.errors import ConfigError
    from tests.conftest import compose

    assert label_noise(compose(["expert.noise=0.1"], config_name="collect_demos").expert) == 0.1
    assert label_noise(compose(["expert.label_noise=0.2"], config_name="collect_demos").expert) == 0.2
    with pytest.raises(ConfigError, match=r"expert.noise=0.1: is the older name of expert.label_noise=0.2"):
        validate("collect_demos", compose(["expert.noise=0.1", "expert.label_noise=0.2"], config_name="collect_demos"))
    with pytest.raises(ConfigError, match=r"expert.dart_noise=-0.1: must be >= 0"):
        validate("collect_demos", compose(["expert.dart_noise=-0.1"], config_name="collect_demos"))
