import numpy as np
import pytest

from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders.probe import kfold_indices, probe_encoder, probe_features
from tests.conftest import compose


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2 cores are usually shared; 2 threads then thrash
    yield
    torch.set_num_threads(n)


def test_probe_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 20))
    w = rng.normal(size=(20, 2)) * 0.02
    y = x @ w + np.array([0.1, -0.05]) + rng.normal(scale=0.005, size=(200, 2))  # metres, 0.5 cm noise
    r = probe_features(x, y, n_folds=5)
    assert r["n"] == 200 and r["dim"] == 20 and r["n_folds"] == 5
    assert all(e < 1.0 for e in r["probe"]["rmse_cm"]), r["probe"]  # the 0.5 cm noise, a little shrinkage
    assert all(b > 5 for b in r["mean_baseline"]["rmse_cm"])
    assert all(v > 0.99 for v in r["r2"])


def test_mean_baseline_predicts_each_training_fold_mean():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(23, 4)), rng.normal(size=(23, 2))
    r = probe_features(x, y, n_folds=4, seed=3)
    base = np.empty_like(y)
    for test in kfold_indices(23, 4, seed=3):
        base[test] = y[np.setdiff1d(np.arange(23), test)].mean(0)
    err = (base - y) * 100
    np.testing.assert_allclose(r["mean_baseline"]["rmse_cm"], np.sqrt((err**2).mean(0)), atol=1e-3)
    np.testing.assert_allclose(r["mean_baseline"]["mae_cm"], np.abs(err).mean(0), atol=1e-3)
    np.testing.assert_allclose(r["mean_baseline"]["mean_dist_cm"], np.linalg.norm(err, axis=1).mean(), atol=1e-3)


def test_folds_are_held_out():
    folds = kfold_indices(47, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(47))
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 1
    # More features than samples: any in-sample fit would be perfect. Targets unrelated to the
    # features must be no better predicted than by the mean when every prediction is held out.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 200)), rng.normal(size=(60, 2))
    r = probe_features(x, y, n_folds=5)
    assert all(v < 0.05 for v in r["r2"])
    assert r["probe"]["rms_dist_cm"] > 0.95 * r["mean_baseline"]["rms_dist_cm"]
    assert [np.flatnonzero(r["fold_of"] == k).tolist() for k in range(5)] == [f.tolist() for f in kfold_indices(60, 5)]


def test_probe_encoder_on_a_store(tmp_path):
    from s2robot.encoders import build_encoder

    rng = np.random.default_rng(0)
    store = ReplayBuffer.create(tmp_path / "s.zarr")
    for ep in range(12):
        pos = rng.uniform(-0.15, 0.15, size=3).astype(np.float32)
        frames = np.full((3, 32, 32, 3), 200, np.uint8)
        r, c = int((pos[0] + 0.15) / 0.3 * 24), int((pos[1] + 0.15) / 0.3 * 24)
        frames[:, r : r + 8, c : c + 8] = (255, 0, 0)  # a red cube where cube_pos says
        store.add_episode(
            {"agentview": frames, "cube_pos": np.repeat(pos[None], 3, 0), "action": np.zeros((3, 7), np.float32)},
            seed=ep,
        )
    enc = build_encoder("vit_t", weights="random", img_size=32, scales=[1, 2], feature="mean")
    result = probe_encoder(enc, tmp_path / "s.zarr", "agentview", n_folds=3)
    assert result["n"] == 12 and result["dim"] == 2 * 192 and result["scales"] == [1, 2]
    assert result["encoder"] == "vit_t" and len(result["r2"]) == 2
    assert result["mean_baseline"]["rms_dist_cm"] > 0
    with pytest.raises(Exception, match="at least"):
        probe_encoder(enc, tmp_path / "s.zarr", "agentview", n_folds=10)


def test_probe_config_composes():
    cfg = compose(["encoder.weights=random", "scales=[1,2]"], config_name="probe_encoder")
    assert cfg.encoder.name == "vit_t" and list(cfg.scales) == [1, 2] and cfg.n_folds == 5
