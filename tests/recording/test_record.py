"""s2robot-record with the numpy arm of fake_arm.py: what a store holds, and every way recording can be
refused: one line, exit 2, the episode in progress dropped, kept episodes untouched."""

import json

import numpy as np
import pytest

from s2robot.commands.record_demos import main as record
from s2robot.data.replay_buffer import ReplayBuffer
from tests.recording.fake_arm import SIZE, FakeArm, demo_actions, description

ARM = "tests.recording.fake_arm:FakeArm"


@pytest.fixture
def demo(tmp_path):
    path = tmp_path / "demo.npy"
    np.save(path, demo_actions())
    return f"replay:{path}"


def run(capsys, *argv):
    """-> (exit code, stdout, stderr) of s2robot-record."""
    try:
        record([*argv, "--rate", "0"])
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_records_native_frames_actions_and_the_description(tmp_path, demo, capsys):
    store = tmp_path / "s.zarr"
    code, out, _ = run(capsys, "--robot", ARM, "--device", demo, "--store", str(store), "--episodes", "2")
    assert code == 0 and json.loads(out.splitlines()[-1])["kept"] == 2
    buf = ReplayBuffer.open(store)
    assert buf.keys == ["action", "front", "proprio", "timestamp"] and buf.shape("front") == (SIZE, SIZE, 3)
    assert buf.attrs["robot"] == description() and "env" not in buf.attrs
    np.testing.assert_allclose(buf.get_episode(1)["action"], demo_actions())
    assert (np.diff(buf.get_episode(0)["timestamp"]) >= 0).all() and buf.verify() == []
    # Appending to it resumes: same robot, new seeds.
    assert run(capsys, "--robot", ARM, "--device", demo, "--store", str(store), "--episodes", "1")[0] == 0
    assert ReplayBuffer.open(store).episode_seeds.tolist() == [0, 1, 2]


def test_a_camera_changing_resolution_mid_episode_drops_only_that_episode(tmp_path, demo, capsys):
    store = tmp_path / "s.zarr"
    code, _, err = run(
        capsys, "--robot", "tests.recording.fake_arm:ResizingArm", "--device", demo, "--store", str(store)
    )
    assert code == 2 and err.count("\n") == 1
    assert "camera 'front'" in err and "[48, 48, 3]" in err and "1 episode(s) kept" in err
    assert ReplayBuffer.open(store).n_episodes == 1


def test_an_action_outside_the_bounds_never_reaches_the_arm(tmp_path, capsys, monkeypatch):
    actions = demo_actions()
    actions[3, 1] = 3.5
    np.save(tmp_path / "bad.npy", actions)
    applied = []
    monkeypatch.setattr(FakeArm, "apply_action", lambda self, a: applied.append(a) or setattr(self, "t", self.t + 1))
    code, _, err = run(
        capsys, "--robot", ARM, "--device", f"replay:{tmp_path / 'bad.npy'}", "--store", str(tmp_path / "s.zarr")
    )
    assert code == 2 and err.count("\n") == 1 and "action[1]=3.5 outside the declared bounds [-2, 3]" in err
    assert len(applied) == 3 and ReplayBuffer.open(tmp_path / "s.zarr").n_episodes == 0


@pytest.mark.parametrize("device", ["spacemouse", "keyboard"])
def test_a_device_that_is_not_there_is_one_line_before_any_store(tmp_path, capsys, device, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    code, _, err = run(capsys, "--robot", ARM, "--device", device, "--store", str(tmp_path / "s.zarr"))
    assert code == 2 and err.count("\n") == 1 and f"--device {device}" in err
    assert not (tmp_path / "s.zarr").exists()


def test_a_device_that_cannot_drive_the_robot_says_how(tmp_path, capsys):
    from s2robot.recording.base import DeviceError
    from s2robot.recording.teleop import KeyboardDevice
    from s2robot.robot_description import RobotDescription

    with pytest.raises(DeviceError, match="teleop_action"):
        KeyboardDevice().start(FakeArm(), RobotDescription.from_dict(description()))


def test_a_robot_that_disagrees_with_the_store_is_refused(tmp_path, demo, capsys):
    store = tmp_path / "s.zarr"
    assert run(capsys, "--robot", ARM, "--device", demo, "--store", str(store), "--episodes", "1")[0] == 0
    np.save(tmp_path / "five.npy", np.zeros((3, 5), dtype=np.float32))
    five = f"replay:{tmp_path / 'five.npy'}"
    code, _, err = run(
        capsys, "--robot", "tests.recording.fake_arm:FiveJointArm", "--device", five, "--store", str(store)
    )
    assert code == 2 and err.count("\n") == 1 and "disagrees with the store" in err and "action_dim" in err
    assert ReplayBuffer.open(store).n_episodes == 1


def test_an_adapter_without_description_or_a_misspelt_one(tmp_path, demo, capsys):
    code, _, err = run(
        capsys, "--robot", "tests.recording.fake_arm:nothing", "--device", demo, "--store", str(tmp_path / "s")
    )
    assert code == 2 and "has no class 'nothing'" in err
    code, _, err = run(
        capsys, "--robot", "tests.recording.test_record:Undescribed", "--device", demo, "--store", str(tmp_path / "s")
    )
    assert code == 2 and "no description() method" in err and not (tmp_path / "s").exists()


class Undescribed(FakeArm):
    description = None
