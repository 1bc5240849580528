"""robomimic HDF5: a Lift-layout file imports with the documented mapping into a store our
simulator's description matches (at 84 px), and each bad input is one FormatError line."""

import os

import h5py
import numpy as np
import pytest
import yaml

from s2robot.data.formats import FormatError
from s2robot.data.formats.importer import import_dataset, open_source
from s2robot.data.formats.mapping import ROBOMIMIC_LIFT, KeyMapping, load_mapping, with_overrides
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.robot_description import cube_pick, from_store_attrs
from tests.data.formats.datasets import make_robomimic

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "import", "robomimic_lift.yaml")


def test_lift_imports_with_the_documented_mapping(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5", size=84)
    summary = import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT)
    buffer = ReplayBuffer.open(tmp_path / "s.zarr")
    assert summary["episodes"] == 2 and buffer.keys == ["action", "agentview", "proprio", "robot0_eye_in_hand"]
    with h5py.File(path) as f:
        demo = f["data/demo_1"]
        want = np.concatenate([demo[f"obs/{k}"][()] for k in ROBOMIMIC_LIFT.proprio], axis=1).astype(np.float32)
        assert np.array_equal(buffer.get_episode(1)["proprio"], want)
        assert np.array_equal(buffer.get_episode(1)["action"], demo["actions"][()].astype(np.float32))
        assert np.array_equal(buffer.get_episode(1)["agentview"], demo["obs/agentview_image"][()])
    robot = from_store_attrs(buffer.attrs)
    assert robot.name == "robomimic Lift (Panda, OSC_POSE)" and robot.action_kind == "osc_pose_delta"
    assert (robot.action_low, robot.action_high, robot.control_hz) == ((-1.0,) * 7, (1.0,) * 7, 20.0)
    assert robot.cameras == {"agentview": (84, 84), "robot0_eye_in_hand": (84, 84)} and robot.proprio_dim == 9
    # what a policy depends on is what CubePick-v0 at image_size=84 with both cameras declares
    cube_pick(cameras=("agentview", "robot0_eye_in_hand"), image_size=84).check_matches(robot)
    source = buffer.attrs["source"]
    assert source["format"] == "robomimic" and source["path"] == str(path) and source["mapping"]["action"] == "actions"
    assert buffer.attrs["robomimic"]["env_args"]["env_name"] == "Lift" and list(buffer.episode_seeds) == [0, 1]


def test_the_yaml_mapping_is_the_default():
    assert load_mapping(CONFIG) == ROBOMIMIC_LIFT
    with open(CONFIG) as f:
        assert set(yaml.safe_load(f)) <= set(KeyMapping.__dataclass_fields__)


def test_camera_of_another_resolution_keeps_the_demos_before(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5", n_demos=3, sizes={1: 64})
    with pytest.raises(FormatError, match=r"demo_1: camera 'agentview' .* of \(64, 64, 3\).* uint8 \(32, 32, 3\)") as e:
        import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT)
    assert "1 episodes committed before it stay" in str(e.value)
    assert ReplayBuffer.open(tmp_path / "s.zarr").n_episodes == 1


def test_actions_outside_the_bounds(tmp_path):
    bad = np.zeros((10, 7))
    bad[4, 2] = 1.5
    path = make_robomimic(tmp_path / "lift.hdf5", actions={1: bad})
    with pytest.raises(
        FormatError, match=r"demo_1: action\[2\]=1.5 at step 4 is outside the declared bounds \[-1, 1\]"
    ):
        import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT)
    assert ReplayBuffer.open(tmp_path / "s.zarr").n_episodes == 1
    # bounds from the data take it
    import_dataset(open_source(path), tmp_path / "d.zarr", with_overrides(ROBOMIMIC_LIFT, action_bounds="data"))
    assert from_store_attrs(ReplayBuffer.open(tmp_path / "d.zarr").attrs).action_high[2] == 1.5


def test_missing_key_not_a_dataset_and_filter_key(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5", drop=("robot0_eye_in_hand_image",))
    with pytest.raises(FormatError, match="mapped key 'robot0_eye_in_hand_image' is not in demo_0"):
        import_dataset(open_source(path), tmp_path / "s.zarr", ROBOMIMIC_LIFT)
    assert not os.path.exists(tmp_path / "s.zarr")
    one_camera = with_overrides(ROBOMIMIC_LIFT, cameras=["agentview_image=agentview"])
    import_dataset(open_source(path, filter_key="train"), tmp_path / "t.zarr", one_camera)
    assert list(ReplayBuffer.open(tmp_path / "t.zarr").episode_seeds) == [1]  # mask/train holds demo_1 only
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(FormatError, match="not an HDF5 file"):
        open_source(tmp_path / "text.hdf5")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("data")
    with pytest.raises(FormatError, match="not a robomimic dataset"):
        open_source(tmp_path / "empty.hdf5")
    with pytest.raises(FormatError, match="no filter key 'test'"):
        open_source(path, filter_key="test")


def test_existing_store_of_another_robot_is_refused(tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5")
    ReplayBuffer.create(tmp_path / "sim.zarr", attrs={"env": {"cameras": ["agentview"], "image_size": 224}})
    with pytest.raises(FormatError, match="exists with another robot description"):
        import_dataset(open_source(path), tmp_path / "sim.zarr", ROBOMIMIC_LIFT)
    assert ReplayBuffer.open(tmp_path / "sim.zarr").n_episodes == 0
