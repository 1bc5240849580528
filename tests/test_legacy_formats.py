"""Stores, feature caches and checkpoints written before the restructure still load, and a
policy built from the old checkpoint acts. The fixtures were made by the old code (see
tests/fixtures/legacy_v1/README.md); a format change that breaks them fails here."""

import shutil
from pathlib import Path

import numpy as np
import pytest

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v1"


@pytest.fixture
def legacy(tmp_path):
    # copied: opening a store for writing (or rebuilding a cache) must never touch the fixtures
    shutil.copytree(LEGACY, tmp_path / "legacy")
    return tmp_path / "legacy"


def test_old_store_opens_with_its_episodes(legacy):
    from s2robot.data.replay_buffer import ReplayBuffer

    store = ReplayBuffer.open(legacy / "store.zarr", required_keys=("agentview", "proprio", "action"))
    assert store.n_episodes == 3 and store["agentview"].shape[1:] == (32, 32, 3)
    assert store.episode_ends[-1] == store.n_steps


def test_old_feature_cache_is_reused_not_rebuilt(legacy, caplog):
    from s2robot.data.feature_cache import cached_features
    from s2robot.data.replay_buffer import ReplayBuffer
    from s2robot.encoders import build_encoder

    store = ReplayBuffer.open(legacy / "store.zarr")
    enc = build_encoder("vit_t", weights="random", img_size=32, scales=[1, 2])
    caplog.set_level("INFO")
    feats, path = cached_features(store, enc, "agentview", progress=False)
    assert "reusing cached features" in caplog.text, "the old cache key no longer matches: caches would be rebuilt"
    assert Path(path).parent == legacy / "store.zarr" / "features"
    fresh = enc(store["agentview"]).numpy()
    np.testing.assert_allclose(feats, fresh, rtol=1e-4, atol=1e-4)


def test_old_checkpoint_loads_safely_and_acts(legacy):
    from s2robot.checkpoint import load_checkpoint
    from s2robot.data.replay_buffer import ReplayBuffer
    from s2robot.rollout.controller import PolicyController

    ckpt = load_checkpoint(legacy / "run")  # weights_only=True: no pickled code runs
    assert ckpt["encoder"]["encoder"] == "vit_t" and ckpt["encoder"]["scales"] == [1, 2]
    controller = PolicyController(ckpt)
    store = ReplayBuffer.open(legacy / "store.zarr")
    obs = {"agentview": store.read("agentview", 0, 1), "proprio": store.read("proprio", 0, 1)}
    action = controller.act(obs)
    assert action.shape == (1, 7) and np.isfinite(action).all()
