"""s2robot-import, s2robot-export-lerobot and s2robot-view from the command line: the round trip,
robomimic with its defaults, and each user error as one ``error: ...`` line with exit code 2."""

import numpy as np
import pytest

from s2robot.commands import export_lerobot, import_dataset, view_episode
from s2robot.data.replay_buffer import ReplayBuffer
from tests.commands.test_inspect_export import assert_one_line_error, run
from tests.data.formats.datasets import make_robomimic, make_store


@pytest.fixture
def cli(monkeypatch, capsys):
    return lambda module, *argv: run(module, monkeypatch, capsys, *argv)


def test_export_import_view(cli, tmp_path):
    store = make_store(tmp_path / "s.zarr", steps=5, size=16)
    code, out, err = cli(export_lerobot, store, tmp_path / "ds", "--task", "lift")
    assert code == 0 and "LeRobot v3.0, 2 episodes, 10 frames at 20 fps" in out, err
    code, out, err = cli(import_dataset, tmp_path / "ds", tmp_path / "back.zarr")
    assert code == 0 and "imported 2 episodes" in out, err
    assert np.array_equal(ReplayBuffer.open(tmp_path / "back.zarr")["action"], ReplayBuffer.open(store)["action"])
    code, out, err = cli(import_dataset, tmp_path / "ds", tmp_path / "back.zarr")  # resumed: nothing left
    assert code == 0 and "imported 0 episodes" in out, err
    code, out, err = cli(view_episode, tmp_path / "back.zarr", "--episode", "1", "--out", tmp_path / "ep.png")
    assert code == 0 and (tmp_path / "ep.png").stat().st_size > 0, err


def test_robomimic_with_defaults_and_options(cli, tmp_path):
    path = make_robomimic(tmp_path / "lift.hdf5")
    code, out, err = cli(import_dataset, path, tmp_path / "s.zarr")
    assert code == 0 and "robomimic Lift (Panda, OSC_POSE)" in out, err
    code, out, err = cli(
        import_dataset, path, tmp_path / "o.zarr", "--camera", "agentview_image=front", "--proprio", "robot0_eef_pos",
        "--action-bounds=-1,1", "--max-episodes", "1",
    )  # fmt: skip
    buffer = ReplayBuffer.open(tmp_path / "o.zarr")
    assert code == 0 and buffer.keys == ["action", "front", "proprio"] and buffer.shape("proprio") == (3,), err
    assert buffer.n_episodes == 1


@pytest.mark.parametrize(
    "argv,words",
    [
        (["--camera", "nope=front"], ["mapped key 'nope' is not in demo_0", "fix the mapping"]),
        (["--camera", "agentview_image"], ["DATASET_KEY=STORE_CAMERA"]),
        (["--action-bounds", "wide"], ["--action-bounds wide", "LOW,HIGH"]),
        (["--action-bounds=-0.1,0.1"], ["demo_0: action[", "outside the declared bounds"]),
        (["--mapping", "missing.yaml"], ["missing.yaml: no such file"]),
        (["--format", "lerobot"], ["not a LeRobot dataset"]),
    ],
)
def test_user_errors_are_one_line(cli, tmp_path, argv, words):
    path = make_robomimic(tmp_path / "lift.hdf5", n_demos=1)
    code, _, err = cli(import_dataset, path, tmp_path / "s.zarr", *argv)
    assert_one_line_error(code, err, *words)
    assert not (tmp_path / "s.zarr").exists()


def test_other_robot_and_not_a_dataset(cli, tmp_path):
    make_store(tmp_path / "sim.zarr", n_episodes=1, steps=3, size=16)
    code, _, err = cli(import_dataset, make_robomimic(tmp_path / "lift.hdf5", n_demos=1), tmp_path / "sim.zarr")
    assert_one_line_error(code, err, "sim.zarr", "another robot description")
    code, _, err = cli(import_dataset, tmp_path, tmp_path / "x.zarr")
    assert_one_line_error(code, err, "neither a LeRobot dataset folder", "--format")
    code, _, err = cli(export_lerobot, tmp_path / "sim.zarr", tmp_path / "ds", "--crf", "99")
    assert_one_line_error(code, err, "--crf 99")
    code, _, err = cli(view_episode, tmp_path / "sim.zarr", "--out", tmp_path / "v.gif")
    assert_one_line_error(code, err, "v.gif", ".mp4, .html, .png")
