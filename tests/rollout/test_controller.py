import numpy as np
import pytest
import torch

from s2robot.checkpoint import CheckpointError, load_checkpoint
from s2robot.errors import UserError
from s2robot.rollout.controller import NonFiniteActionError, PolicyController
from s2robot.training.train import train


@pytest.fixture(scope="module")
def run_dir(tiny_store, tmp_path_factory):
    from tests.conftest import TINY, compose

    d = tmp_path_factory.mktemp("run")
    train(compose([*TINY, f"data.store={tiny_store}", "scales=[1,2]", "train.epochs=1"]), d)
    return d


def _obs(b, rng=np.random.default_rng(0)):
    return {
        "agentview": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8),
        "proprio": rng.normal(size=(b, 9)).astype(np.float32),
    }


def _count_predicts(runner):
    calls = []
    orig = runner.policy.predict

    def predict(batch):
        calls.append(len(next(iter(batch.values()))))
        return orig(batch)

    runner.policy.predict = predict
    return calls


def test_receding_horizon_predicts_every_n_action_steps(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    calls = _count_predicts(runner)
    for _ in range(6):
        a = runner.act(_obs(3))
        assert a.shape == (3, 7) and a.dtype == np.float32 and np.abs(a).max() <= 1
    assert calls == [3, 3]  # steps 0 and 4 (n_action_steps=4), batched over the 3 envs; 2 actions left
    runner.reset_env(1)
    runner.act(_obs(3))
    assert calls[-1] == 1  # only the reset env needed a new chunk


def test_first_action_is_the_policys_prediction(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    obs = _obs(2)
    feats = runner.encoder(obs["agentview"])
    want = runner.policy.predict({"vision": feats[:, None], "proprio": torch.from_numpy(obs["proprio"])[:, None]})
    assert np.allclose(runner.act(obs), np.clip(want[:, 0].numpy(), -1, 1), atol=1e-5)


def test_temporal_ensemble_predicts_every_step(run_dir):
    ckpt = load_checkpoint(run_dir)
    ckpt["execution"]["temporal_ensemble"] = True
    runner = PolicyController(ckpt)
    calls = _count_predicts(runner)
    obs = _obs(1)
    first = runner.act(obs)
    second = runner.act(obs)
    assert calls == [1, 1]
    # Step 2 averages chunk 1's 2nd action with chunk 2's 1st (same obs -> same chunk).
    chunk = runner.policy.predict(
        {"vision": runner.encoder(obs["agentview"])[:, None], "proprio": torch.from_numpy(obs["proprio"])[:, None]}
    )[0].numpy()
    w = np.exp(-0.01 * np.arange(2))
    assert np.allclose(second[0], np.clip((chunk[1] * w[0] + chunk[0] * w[1]) / w.sum(), -1, 1), atol=1e-5)
    assert np.allclose(first[0], np.clip(chunk[0], -1, 1), atol=1e-5)


def test_other_encoder_weights_are_refused(run_dir, tmp_path):
    from s2robot.encoders import build_backbone, resolve_spec

    path = tmp_path / "other.pth"
    torch.save({"model": build_backbone(resolve_spec("vit_t", 32)).state_dict()}, path)
    with pytest.raises(CheckpointError, match="not the ones this policy was trained on"):
        PolicyController.from_checkpoint(run_dir, encoder_weights=str(path))


def test_metadata(run_dir):
    meta = PolicyController.from_checkpoint(run_dir).metadata
    assert meta["obs_keys"] == ["agentview", "proprio"] and meta["image_shape"] == [32, 32, 3]
    assert meta["camera_keys"] == ["agentview"] and meta["image_shapes"] == {"agentview": [32, 32, 3]}
    assert meta["action_dim"] == 7 and meta["scales"] == [1, 2] and len(meta["checkpoint"]) == 16


def test_env_ids_keep_other_envs_state(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    calls = _count_predicts(runner)
    runner.reset(3)
    obs = _obs(3)
    runner.act(obs)
    # Env 1 finished: only envs 0 and 2 go on, their queues untouched.
    sub = {k: v[[0, 2]] for k, v in obs.items()}
    for _ in range(3):
        assert runner.act(sub, env_ids=[0, 2]).shape == (2, 7)
    assert calls == [3]
    with pytest.raises(ValueError, match="env slots"):
        runner.act(sub, env_ids=[0, 5])


def test_non_finite_observations_are_refused_by_env_and_key(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    calls = _count_predicts(runner)
    runner.reset(3)
    obs = _obs(3)
    obs["proprio"][1, 4] = np.nan
    obs["proprio"] = obs["proprio"].astype(np.float64)
    obs["proprio"][2, 0] = 1e39  # finite in float64, inf as the float32 the head reads
    with pytest.raises(NonFiniteActionError, match=r"proprio for env ids \[1, 2\]") as e:
        runner.act(obs)
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError)
    # Refused before any state changed: the envs still have no history and nothing queued.
    assert calls == [] and all(not h for h in runner._history) and all(not q for q in runner._queue)
    # Through env_ids the message names the env slots, not the batch rows.
    sub = _obs(2)
    sub["proprio"][1] = np.inf
    with pytest.raises(NonFiniteActionError, match=r"env ids \[2\]"):
        runner.act(sub, env_ids=[0, 2])
    assert np.isfinite(runner.act(_obs(3))).all() and calls == [3]


def test_non_finite_head_output_or_features_are_refused(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    orig = runner.policy.predict

    def nan_in_row_1(batch):
        out = orig(batch).clone()
        out[1] = float("nan")
        return out

    runner.policy.predict = nan_in_row_1
    runner.reset(3)
    with pytest.raises(NonFiniteActionError, match=r"policy head produced non-finite actions for env ids \[2\]"):
        runner.act({k: v[[0, 2]] for k, v in _obs(3).items()}, env_ids=[0, 2])
    assert not runner._queue[2]  # the NaN chunk was not queued

    runner = PolicyController.from_checkpoint(run_dir)
    encoder = runner.encoder
    runner.encoders["agentview"] = lambda frames: encoder(frames) * torch.tensor([1.0, float("inf")])[:, None]
    with pytest.raises(NonFiniteActionError, match=r"encoder produced non-finite features \(vision\) for env ids \[1"):
        runner.act(_obs(2))


# -- several cameras ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_cam_run(tiny_store_2cam, tmp_path_factory):
    from tests.two_cameras import WRIST_OWN, two_camera_run

    return two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp(), WRIST_OWN)


def test_two_cameras_each_through_its_encoder_into_the_head(two_cam_run):
    from tests.two_cameras import CAMERAS, two_camera_obs

    runner = PolicyController.from_checkpoint(two_cam_run)
    assert runner.cameras == CAMERAS and runner.camera == "agentview"
    assert runner.obs_keys == [*CAMERAS, "proprio"]
    enc_a, enc_w = runner.encoders["agentview"], runner.encoders["robot0_eye_in_hand"]
    assert enc_a is not enc_w and enc_a.scales == [1, 2] and enc_w.scales == [1] and enc_w.feature == "tokens"
    meta = runner.metadata
    assert meta["camera_keys"] == CAMERAS and meta["image_shapes"] == {c: [32, 32, 3] for c in CAMERAS}
    assert meta["image_shape"] == [32, 32, 3]
    assert meta["camera_encoders"]["robot0_eye_in_hand"]["scales"] == [1]
    obs = two_camera_obs(2)
    want = runner.policy.predict(
        {
            "vision_agentview": enc_a(obs["agentview"])[:, None],
            "vision_robot0_eye_in_hand": enc_w(obs["robot0_eye_in_hand"])[:, None],
            "proprio": torch.from_numpy(obs["proprio"])[:, None],
        }
    )
    assert np.allclose(runner.act(obs), np.clip(want[:, 0].numpy(), -1, 1), atol=1e-5)
    # the wrist frame matters: another wrist view, another action
    runner.reset(2)
    other = {**obs, "robot0_eye_in_hand": two_camera_obs(2, seed=1)["robot0_eye_in_hand"]}
    assert not np.allclose(runner.act(other), np.clip(want[:, 0].numpy(), -1, 1), atol=1e-5)


def test_an_observation_without_a_camera_the_policy_needs_is_refused(two_cam_run):
    from s2robot.rollout.controller import MissingObservationError
    from tests.two_cameras import two_camera_obs

    runner = PolicyController.from_checkpoint(two_cam_run)
    obs = two_camera_obs(1)
    del obs["robot0_eye_in_hand"]
    with pytest.raises(MissingObservationError, match=r"lacks \['robot0_eye_in_hand'\]: this policy needs") as e:
        runner.act(obs)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)


def test_cameras_with_the_same_options_share_one_encoder_and_one_batch(tiny_store_2cam, tmp_path_factory):
    from tests.two_cameras import two_camera_obs, two_camera_run

    runner = PolicyController.from_checkpoint(two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp()))
    enc = runner.encoders["agentview"]
    assert runner.encoders["robot0_eye_in_hand"] is enc
    calls = []

    def counting(frames):
        calls.append(len(frames))
        return enc(frames)

    runner.encoders = {cam: counting for cam in runner.cameras}
    obs = two_camera_obs(3)
    got = runner.act(obs)
    assert calls == [6]  # both cameras' frames of the 3 envs in one call
    want = runner.policy.predict(
        {
            "vision_agentview": enc(obs["agentview"])[:, None],
            "vision_robot0_eye_in_hand": enc(obs["robot0_eye_in_hand"])[:, None],
            "proprio": torch.from_numpy(obs["proprio"])[:, None],
        }
    )
    assert np.allclose(got, np.clip(want[:, 0].numpy(), -1, 1), atol=1e-5)


def test_encoder_weights_per_camera(two_cam_run, tmp_path):
    from s2robot.encoders import build_backbone, resolve_spec

    path = tmp_path / "other.pth"
    torch.save({"model": build_backbone(resolve_spec("vit_t", 32)).state_dict()}, path)
    with pytest.raises(CheckpointError, match="camera robot0_eye_in_hand's encoder weights .* are not the ones"):
        PolicyController.from_checkpoint(two_cam_run, encoder_weights={"robot0_eye_in_hand": str(path)})
    with pytest.raises(CheckpointError, match=r"names cameras \['wrist'\] this policy does not see"):
        PolicyController.from_checkpoint(two_cam_run, encoder_weights={"wrist": str(path)})


def test_checkpoint_from_before_several_cameras_is_one_camera():
    from pathlib import Path

    legacy = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1" / "run"
    runner = PolicyController(load_checkpoint(legacy))
    assert runner.cameras == ["agentview"] and runner.camera_info["agentview"]["input"] == "vision"
    meta = runner.metadata
    assert meta["camera_keys"] == ["agentview"] and meta["obs_keys"] == ["agentview", "proprio"]
    assert meta["image_shape"] == [32, 32, 3] and meta["image_shapes"] == {"agentview": [32, 32, 3]}
