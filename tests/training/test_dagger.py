"""DAgger (s2robot/dagger): the store's per-episode round, the seed range, the checks made before
any work, and one round end to end on a tiny store."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

# timm (via training) after a simulator made an EGL context segfaults, and the stores here are
# collected in this process: import it while collecting the tests, as tests/rollout/test_evaluate.py does.
import s2robot.training.train  # noqa: F401
from envs.seeds import DAGGER_SEED_START, EVAL_SEED_START, dagger_seeds, seed_range
from s2robot.data.replay_buffer import ReplayBuffer, StoreError
from s2robot.errors import ConfigError
from tests.conftest import TINY, compose

LEGACY_STORE = Path(__file__).parents[1] / "fixtures" / "legacy_v1" / "store.zarr"


def _episode(n: int = 3, value: float = 0.0) -> dict:
    return {"proprio": np.full((n, 9), value, np.float32), "action": np.full((n, 7), value, np.float32)}


# -- the store's round of each episode ----------------------------------------------------------


def test_episode_round_is_stored_and_verified(tmp_path):
    buffer = ReplayBuffer.create(tmp_path / "s.zarr")
    for r in (0, 0, 1, 2):
        buffer.add_episode(_episode(), seed=r, episode_round=r)
    again = ReplayBuffer.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(again.episode_round, [0, 0, 1, 2])
    assert again.verify() == []


def test_store_without_round_array_reads_zero_and_gets_it_backfilled(tmp_path):
    """Stores made before the array: all demos; the first DAgger episode adds it, the demos as 0."""
    shutil.copytree(LEGACY_STORE, tmp_path / "old.zarr")
    buffer = ReplayBuffer.open(tmp_path / "old.zarr", mode="a")
    assert "episode_round" not in zarr.open_group(tmp_path / "old.zarr/meta", mode="r")
    np.testing.assert_array_equal(buffer.episode_round, [0, 0, 0])
    episode = buffer.get_episode(0)
    buffer.add_episode(episode, seed=7)  # a demo: the store's layout stays as it was
    assert "episode_round" not in zarr.open_group(tmp_path / "old.zarr/meta", mode="r")
    buffer.add_episode(episode, seed=DAGGER_SEED_START + 10_000, episode_round=1)
    again = ReplayBuffer.open(tmp_path / "old.zarr")
    np.testing.assert_array_equal(again.episode_round, [0, 0, 0, 0, 1])
    assert again.verify() == []


def test_round_array_made_but_not_yet_written_reads_as_demos(tmp_path):
    """A kill between making the array in an older store and writing its backfilled rows."""
    shutil.copytree(LEGACY_STORE, tmp_path / "old.zarr")
    meta = zarr.open_group(tmp_path / "old.zarr/meta", mode="r+")
    meta.create_array("episode_round", shape=(3,), chunks=(1024,), dtype=np.int64, fill_value=0)
    buffer = ReplayBuffer.open(tmp_path / "old.zarr", mode="a")
    np.testing.assert_array_equal(buffer.episode_round, [0, 0, 0])
    buffer.add_episode(buffer.get_episode(0), seed=DAGGER_SEED_START + 10_000, episode_round=1)
    np.testing.assert_array_equal(ReplayBuffer.open(tmp_path / "old.zarr").episode_round, [0, 0, 0, 1])


def test_round_row_of_an_uncommitted_episode_is_dropped(tmp_path):
    """A kill after the round was written but before episode_ends: recovery trims it like the rest."""
    buffer = ReplayBuffer.create(tmp_path / "s.zarr")
    buffer.add_episode(_episode(), seed=0)
    zarr.open_array(tmp_path / "s.zarr/meta/episode_round", mode="r+").append(np.array([3]))
    again = ReplayBuffer.open(tmp_path / "s.zarr", mode="a")
    np.testing.assert_array_equal(again.episode_round, [0])
    again.add_episode(_episode(), seed=1, episode_round=1)
    np.testing.assert_array_equal(ReplayBuffer.open(tmp_path / "s.zarr").episode_round, [0, 1])


# -- seeds ------------------------------------------------------------------------------------


def test_dagger_seeds_have_their_own_range():
    one, two = dagger_seeds(1, 50), dagger_seeds(2, 50)
    assert one[0] == 210_000 and two[0] == 220_000 and not set(one) & set(two)
    assert {seed_range(s) for s in one + two} == {"dagger"}
    assert seed_range(0) == "demo" and seed_range(EVAL_SEED_START) == "eval" and seed_range(199_999) == "eval"
    with pytest.raises(ValueError, match="count from 1"):
        dagger_seeds(0, 5)
    with pytest.raises(ValueError, match="at most 10000"):
        dagger_seeds(1, 10_001)


# -- checks before any work ---------------------------------------------------------------------


def _dagger_cfg(*overrides, train=()):
    cfg = compose(["n_workers=1", "progress=false", *overrides], config_name="dagger")
    cfg.train_overrides = list(train)
    return cfg


def test_train_overrides_on_a_run_take_key_value_only():
    from omegaconf import OmegaConf

    from s2robot.dagger.rounds import train_config

    base = train_config([*TINY, "train.epochs=3"])
    assert base.train.epochs == 3 and base.encoder.name == "vit_t"
    stored = OmegaConf.to_container(compose([*TINY, "policy=transformer"]), resolve=True)
    cfg = train_config(["train.epochs=7", "scales=[1,2]"], base=stored)
    assert cfg.train.epochs == 7 and list(cfg.scales) == [1, 2] and cfg.policy.name == "transformer"
    for bad in ("encoder=vit_s", "+experiment=demo_cpu", "train.epochs"):
        with pytest.raises(ConfigError, match="key=value overrides"):
            train_config([bad], base=stored)


def test_store_without_the_experts_privileged_state_is_refused(tmp_path):
    from s2robot.dagger.rounds import plan

    store = tmp_path / "blind.zarr"
    buffer = ReplayBuffer.create(store, attrs={"env": {"cameras": []}})
    for seed in range(2):
        buffer.add_episode(_episode(), seed=seed)
    cfg = _dagger_cfg(train=[*TINY, f"data.store={store}", "inputs=[proprio]"])
    with pytest.raises(StoreError, match=r"no cube_pos, cube_quat in this store.*DAgger's expert labels states"):
        plan(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_run_whose_store_is_missing_is_refused(tmp_path):
    from s2robot.checkpoint import save_checkpoint
    from s2robot.dagger.rounds import plan

    (tmp_path / "run").mkdir()
    (tmp_path / "bare").mkdir()
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", {"config": {"x": 1}, "store": {"path": str(tmp_path / "gone")}})
    with pytest.raises(StoreError, match=r"gone: the store run=.* was trained on is missing"):
        plan(_dagger_cfg(f"run={tmp_path / 'run'}"), tmp_path / "out")
    save_checkpoint(tmp_path / "bare" / "checkpoint.pt", {"store": {"path": str(tmp_path)}})
    with pytest.raises(ConfigError, match="holds no training config"):
        plan(_dagger_cfg(f"run={tmp_path / 'bare'}"), tmp_path / "out")


def test_rounds_below_one_fail_validation():
    from s2robot.config import validate

    for overrides, needle in (
        (["rounds=0"], "rounds=0: must be >= 1"),
        (["beta=1.5"], "beta=1.5"),
        (["episodes_per_round=0"], "episodes_per_round=0"),
        (["store_mode=append"], "store_mode=append: must be one of copy, extend"),
    ):
        with pytest.raises(ConfigError, match=needle):
            validate("dagger", compose(overrides, config_name="dagger"))
    validate("dagger", compose([], config_name="dagger"))  # the defaults are valid


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_store(tmp_path_factory):
    """4 episodes of 12 steps at 32 px: failed demos, but a store with everything DAgger needs."""
    from s2robot.data.collect import collect_demos

    path = tmp_path_factory.mktemp("dagger") / "short.zarr"
    collect_demos({"image_size": 32, "horizon": 12}, path, n_episodes=4, keep_failures=True, progress=False)
    return path


@pytest.mark.slow
def test_one_round_end_to_end_then_a_second_continues_the_numbering(short_store, tmp_path):
    """Round 0 trained here, one DAgger round into a copy: episodes added and marked, seeds in their
    own range, labels the expert's, the retrained checkpoint on the grown store; the original store
    untouched. Then from that run, extending the copy in place: the next round is numbered 2."""
    from envs.expert import ScriptedExpert
    from s2robot.checkpoint import load_checkpoint
    from s2robot.dagger.rounds import run_dagger

    train = [*TINY, f"data.store={short_store}", "env.horizon=12"]
    out = tmp_path / "dagger"
    summary = run_dagger(_dagger_cfg("rounds=1", "episodes_per_round=2", train=train), out)

    store = ReplayBuffer.open(out / "store.zarr")
    assert ReplayBuffer.open(short_store).n_episodes == 4  # store_mode=copy: the original is untouched
    assert store.n_episodes == 6 and store.keys == ReplayBuffer.open(short_store).keys
    np.testing.assert_array_equal(store.episode_round, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(store.episode_seeds[4:], dagger_seeds(1, 2))
    assert store.verify() == []
    expert = ScriptedExpert()
    for i in (4, 5):  # every visited state labelled by the expert (float32 pose: allow rounding)
        ep = store.get_episode(i)
        labels = np.stack(
            [
                expert.label(
                    {"proprio": ep["proprio"][t]}, {"cube_pos": ep["cube_pos"][t], "cube_quat": ep["cube_quat"][t]}
                )
                for t in range(len(ep["action"]))
            ]
        )
        assert np.mean(np.all(np.abs(labels - ep["action"]) < 1e-3, axis=1)) > 0.9
        assert len(ep["action"]) == 12 and ep["agentview"].shape == (12, 32, 32, 3)
    ckpt = load_checkpoint(out / "round_1")
    assert ckpt["store"]["n_episodes"] == 6 and ckpt["store"]["path"] == str(out / "store.zarr")
    assert (out / "round_0" / "checkpoint.pt").exists()
    row = json.loads((out / "dagger.json").read_text())["rounds"][0]
    assert row["round"] == 1 and row["rollout"]["episodes"] == 2 and row["store_episodes"] == 6
    assert row["cache_s"] > 0 and row["train_s"] > 0 and row["rollout"]["relabel_s"] >= 0
    assert summary["final_checkpoint"] == str(out / "round_1")

    more = tmp_path / "more"
    run_dagger(_dagger_cfg("rounds=1", "episodes_per_round=1", "store_mode=extend", f"run={out / 'round_1'}"), more)
    store = ReplayBuffer.open(out / "store.zarr")
    np.testing.assert_array_equal(store.episode_round, [0, 0, 0, 0, 1, 1, 2])
    assert store.episode_seeds[-1] == dagger_seeds(2, 1)[0] and (more / "round_2" / "checkpoint.pt").exists()
    assert not (more / "store.zarr").exists()


def test_copied_store_links_finished_feature_caches(tmp_path):
    from s2robot.dagger.store import copy_store

    src = tmp_path / "src.zarr"
    ReplayBuffer.create(src)
    (src / "features" / "vit_t-abc.zarr").mkdir(parents=True)
    (src / "features" / "vit_t-abc.zarr" / "zarr.json").write_text("{}")
    (src / "features" / "vit_t-def.zarr.building-x1").mkdir()  # a killed build: not copied
    (tmp_path / "out").mkdir()
    dst = copy_store(src, tmp_path / "out" / "store.zarr")
    linked = dst / "features" / "vit_t-abc.zarr" / "zarr.json"
    assert linked.stat().st_ino == (src / "features" / "vit_t-abc.zarr" / "zarr.json").stat().st_ino
    assert not (dst / "features" / "vit_t-def.zarr.building-x1").exists()
    assert ReplayBuffer.open(dst).n_episodes == 0
