import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2robot.checkpoint import load_checkpoint
from s2robot.data.replay_buffer import StoreError
from s2robot.encoders import UnknownEncoderError
from s2robot.encoders.weights import WeightsError
from s2robot.errors import ConfigError
from s2robot.training.preflight import validate
from s2robot.training.train import train

ROOT = Path(__file__).resolve().parents[2]


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        (["encoder=vit_t", "encoder.name=vit_xxl"], UnknownEncoderError, "known encoders: .*mvp_b"),
        (["scales=[]"], ConfigError, "empty"),
        (["scales=[0,1]"], ConfigError, "positive"),
        (["encoder.weights=/nonexistent/vitb.pth"], WeightsError, "encoder.weights="),
        (["data.camera=robot0_eye_in_hand"], StoreError, "lacks keys"),
        # several cameras: each must be in the store, listed once, and options only for listed ones
        (["data.cameras=[agentview,robot0_eye_in_hand]"], StoreError, r"lacks keys \['robot0_eye_in_hand'\]"),
        (["data.cameras=[agentview,agentview]"], ConfigError, "data.cameras=.*at most once"),
        (
            ["+camera_encoders.robot0_eye_in_hand.scales=[1]"],
            ConfigError,
            r"camera_encoders.robot0_eye_in_hand=.*does not see \(data.cameras=\[agentview\]\)",
        ),
        (["+camera_encoders.agentview.feature=tokens"], ConfigError, "policy.visual_pool=none: camera agentview's"),
        (["+camera_encoders.agentview.scales=[0]"], ConfigError, "camera_encoders.agentview.scales=.*positive"),
        (["inputs=[vision,depth]"], ConfigError, "inputs"),
        (["policy.n_action_steps=20"], ConfigError, "n_action_steps"),
    ],
)
def test_bad_config_fails_before_work(tiny_cfg, overrides, error, match):
    with pytest.raises(error, match=match):
        validate(tiny_cfg(*overrides))


def test_missing_mvp_weights_say_how_to_get_them(tiny_cfg):
    with pytest.raises(WeightsError) as e:
        validate(tiny_cfg("encoder=mvp_b", "encoder.weights=auto", "scales=[1,2]"))
    assert "vitb-mae-egosoup.pth" in str(e.value) and "encoder.weights=" in str(e.value)


def test_missing_store_without_collection(tiny_cfg, tmp_path):
    with pytest.raises(StoreError, match="collect"):
        validate(tiny_cfg(f"data.store={tmp_path}/none.zarr", "data.collect_if_missing=false"))


def test_train_checkpoint_is_self_describing(tiny_cfg, tmp_path):
    cfg = tiny_cfg("scales=[1,2]", "policy=transformer", "policy.n_obs_steps=2", "policy.hidden=32")
    metrics = train(cfg, tmp_path)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["encoder"]["scales"] == [1, 2] and ckpt["encoder"]["weights"] == "random:seed0"
    assert ckpt["input_shapes"]["vision"] == (2 * 192,)
    assert ckpt["policy"]["name"] == "transformer"
    # Normaliser statistics travel inside the weights.
    assert "normalizer.action_mean" in ckpt["state_dict"]
    assert not torch.allclose(ckpt["state_dict"]["normalizer.proprio_std"], torch.ones(9))
    assert len(_rows(tmp_path)) == 2 and metrics["epoch"] == 2
    assert (tmp_path / "tb").is_dir()


def test_same_seed_same_weights(tiny_cfg, tmp_path):
    a = train(tiny_cfg("inputs=[proprio]", "seed=3"), tmp_path / "a")
    b = train(tiny_cfg("inputs=[proprio]", "seed=3"), tmp_path / "b")
    c = train(tiny_cfg("inputs=[proprio]", "seed=4"), tmp_path / "c")
    assert a["train_loss"] == b["train_loss"] != c["train_loss"]


def test_resume_continues_from_last_checkpoint(tiny_cfg, tmp_path):
    train(tiny_cfg("inputs=[proprio,cube_pos]", "train.epochs=4", "train.save_every=2"), tmp_path / "full")
    part = tmp_path / "part"
    train(tiny_cfg("inputs=[proprio,cube_pos]", "train.epochs=2", "train.save_every=2"), part)
    # Same schedule length as the full run: pretend it was killed after epoch 2.
    ck = load_checkpoint(part)
    resumed = train(
        tiny_cfg("inputs=[proprio,cube_pos]", "train.epochs=4", "train.save_every=2", "train.resume=true"), part
    )
    assert ck["train_state"]["epoch"] == 2
    assert [r["epoch"] for r in _rows(part)] == ["1", "2", "3", "4"]
    assert resumed["step"] == load_checkpoint(tmp_path / "full")["train_state"]["step"]


def test_resume_without_checkpoint_is_a_clear_error(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="hydra.run.dir"):
        train(tiny_cfg("inputs=[proprio]", "train.resume=true"), tmp_path)


@pytest.mark.slow
def test_collects_missing_store(tiny_cfg, tmp_path):
    store = tmp_path / "new.zarr"
    train(tiny_cfg(f"data.store={store}", "data.n_episodes=2", "inputs=[proprio]", "train.epochs=1"), tmp_path / "r")
    from s2robot.data.replay_buffer import ReplayBuffer

    assert ReplayBuffer.open(store).n_episodes == 2


@pytest.mark.slow
def test_ddp_two_cpu_processes(tiny_store, tmp_path):
    from tests.conftest import TINY

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        str(ROOT / "train_policy.py"),
        *TINY,
        f"data.store={tiny_store}",
        "inputs=[vision,proprio]",
        f"hydra.run.dir={tmp_path}",
        "train.epochs=2",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["config"]["train"]["epochs"] == 2 and len(_rows(tmp_path)) == 2
    assert "world 2" in (tmp_path / "train_policy.log").read_text()


# -- several cameras ----------------------------------------------------------------------------


def test_camera_missing_from_the_env_to_collect_with_is_refused(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"\[robot0_eye_in_hand\] not among env.cameras=\[agentview\]"):
        validate(tiny_cfg(f"data.store={tmp_path}/none.zarr", "data.cameras=[agentview,robot0_eye_in_hand]"))
    assert not (tmp_path / "none.zarr").exists()


def test_two_cameras_each_with_its_own_encoder_options(tiny_store_2cam, tmp_path_factory):
    from tests.two_cameras import WRIST_OWN, two_camera_run

    ckpt = load_checkpoint(two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp(), WRIST_OWN))
    # one head input per camera, each from its own encoder options
    assert ckpt["input_shapes"] == {
        "vision_agentview": (2 * 192,),
        "vision_robot0_eye_in_hand": (5, 192),
        "proprio": (9,),
    }
    cams = ckpt["cameras"]
    assert list(cams) == ["agentview", "robot0_eye_in_hand"]
    assert cams["agentview"]["scales"] == [1, 2] and cams["agentview"]["feature"] == "cls"
    assert cams["robot0_eye_in_hand"]["scales"] == [1] and cams["robot0_eye_in_hand"]["feature"] == "tokens"
    assert cams["robot0_eye_in_hand"]["input"] == "vision_robot0_eye_in_hand"
    assert cams["agentview"]["feature_cache"] != cams["robot0_eye_in_hand"]["feature_cache"]
    assert ckpt["encoder"] == cams["agentview"]  # the first camera's, for readers of one encoder
    # the wrist's own pool; agentview's CLS vector is projected as before
    assert ckpt["policy"]["kwargs"]["visual_pools"] == {"vision_robot0_eye_in_hand": "keypoints"}
    assert ckpt["policy"]["kwargs"]["visual_pool"] == "none"
    assert any(k.startswith("obs_encoder.proj.vision_robot0_eye_in_hand.to_maps") for k in ckpt["state_dict"])


def test_one_camera_in_the_list_is_the_single_camera_run(tiny_cfg, tmp_path):
    """data.cameras=[X] and data.camera=X train the same head on the same cached features, in the
    checkpoint layout from before several cameras."""
    a = train(tiny_cfg("data.cameras=[agentview]", "seed=5", "train.epochs=1"), tmp_path / "list")
    b = train(tiny_cfg("data.camera=agentview", "seed=5", "train.epochs=1"), tmp_path / "one")
    assert a["train_loss"] == b["train_loss"]
    ck = load_checkpoint(tmp_path / "list")
    assert set(ck["input_shapes"]) == {"vision", "proprio"} and "cameras" not in ck
    assert ck["encoder"]["camera"] == "agentview" and "visual_pools" not in ck["policy"]["kwargs"]
    assert ck["encoder"]["feature_cache"] == load_checkpoint(tmp_path / "one")["encoder"]["feature_cache"]


def test_single_camera_training_reuses_a_feature_cache_written_before_several_cameras(tmp_path, caplog):
    import shutil

    from tests.conftest import TINY, compose

    legacy = ROOT / "tests" / "fixtures" / "legacy_v1" / "store.zarr"
    shutil.copytree(legacy, tmp_path / "store.zarr")  # the fixture itself is never written to
    old_cache = sorted((tmp_path / "store.zarr" / "features").glob("*.zarr"))
    caplog.set_level("INFO")
    train(compose([*TINY, f"data.store={tmp_path / 'store.zarr'}", "scales=[1,2]", "train.epochs=1"]), tmp_path / "r")
    assert "reusing cached features" in caplog.text
    assert sorted((tmp_path / "store.zarr" / "features").glob("*.zarr")) == old_cache  # nothing rebuilt beside it
    assert load_checkpoint(tmp_path / "r")["encoder"]["feature_cache"] == str(old_cache[0])


def test_two_camera_demo_experiment_composes():
    from s2robot.config.cameras import policy_cameras
    from s2robot.config.train import validate_train_policy
    from tests.conftest import compose

    cfg = compose(["+experiment=demo_cpu_2cam", "encoder.weights=random"])
    validate_train_policy(cfg)
    assert policy_cameras(cfg) == list(cfg.env.cameras) == ["agentview", "robot0_eye_in_hand"]
    assert cfg.data.store != compose(["+experiment=demo_cpu"]).data.store  # a store with both cameras
