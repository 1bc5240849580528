"""Recording on the robot's side (s2robot_client.recording, `s2robot-robot --record`) and the
watchdog's hold for action spaces other than CubePick's."""

import json
import os

import numpy as np
import pytest

from s2robot_client.recording import (
    EpisodeBuffer,
    RecordingError,
    SpoolWriter,
    check_robot_for_policy,
    read_spool,
)
from s2robot_client.robot import hold_for, run_control_loop
from s2robot_client.runtime import main
from tests.recording.fake_arm import FakeArm, description
from tests.serving.helpers import StubRunner, serving

ARM = "tests.recording.fake_arm:FakeArm"


def obs(size=40):
    return {"front": np.zeros((size, size, 3), np.uint8), "proprio": np.zeros(3, np.float32)}


def test_episode_buffer_checks_every_step_before_keeping_it():
    ep = EpisodeBuffer(description())
    ep.add(obs(), [3.0, -2.0, 0.0, 1.0])
    with pytest.raises(RecordingError, match=r"frame of shape \[32, 32, 3\] at step 1"):
        ep.add(obs(32), [0, 0, 0, 0])
    with pytest.raises(RecordingError, match=r"action\[0\]=3.01 outside the declared bounds \[-2, 3\]"):
        ep.add(obs(), [3.01, 0, 0, 0])
    with pytest.raises(RecordingError, match="4 finite numbers"):
        ep.add(obs(), [0, 0, 0])
    with pytest.raises(RecordingError, match="proprio"):
        ep.add({**obs(), "proprio": np.full(3, np.nan, np.float32)}, [0, 0, 0, 0])
    arrays = ep.arrays()  # only the one good step
    assert {k: v.shape for k, v in arrays.items()} == {
        "front": (1, 40, 40, 3),
        "proprio": (1, 3),
        "action": (1, 4),
        "timestamp": (1,),
    }


def test_spool_episodes_are_whole_files_and_another_robot_is_refused(tmp_path):
    spool = SpoolWriter(tmp_path / "rec", description())
    ep = EpisodeBuffer(description())
    for _ in range(3):
        ep.add(obs(), [0, 1, 2, 3], held=False)
    assert spool.commit(EpisodeBuffer(description()), True) is None  # nothing recorded, nothing written
    spool.commit(ep, True, seed=7)
    spool.commit(ep, None, seed=8)
    (tmp_path / "rec" / ".episode.x.npz.tmp").write_bytes(b"torn")  # a write killed midway
    desc, episodes = read_spool(tmp_path / "rec")
    got = list(episodes)
    assert desc["name"] == "fake 4-joint arm" and [n for n, _, _ in got] == ["episode_000000.npz", "episode_000001.npz"]
    assert [m["success"] for _, _, m in got] == [True, None] and got[0][1]["action"].shape == (3, 4)
    other = {**description(), "cameras": {"front": [48, 48]}}
    with pytest.raises(RecordingError, match="disagrees .* on cameras"):
        SpoolWriter(tmp_path / "rec", other)
    assert json.loads((tmp_path / "rec" / "robot.json").read_text())["cameras"] == {"front": [40, 40]}


def test_hold_depends_on_the_action_space():
    osc = {
        "action_dim": 7,
        "action_kind": "osc_pose_delta",
        "gripper_index": 6,
        "action_low": [-1] * 7,
        "action_high": [1] * 7,
    }
    assert hold_for(osc)(np.full(7, 0.5, np.float32)).tolist() == [0, 0, 0, 0, 0, 0, 0.5]
    assert hold_for(osc)(None).tolist() == [0, 0, 0, 0, 0, 0, -1]
    no_gripper = {**osc, "action_dim": 3, "gripper_index": None}
    assert hold_for(no_gripper)(np.ones(3, np.float32)).tolist() == [0, 0, 0]  # the last element is not a gripper
    joints = description()  # joint positions: holding repeats the target, zeros would move the arm
    assert hold_for(joints)(np.array([1, 2, 3, -1], np.float32)).tolist() == [1, 2, 3, -1]
    assert hold_for(joints)(None) is None  # nothing applied yet: leave the arm's controller alone

    class Own:
        def hold_action(self, last):
            return np.full(4, 0.25, np.float32)

    assert hold_for(joints, Own())(None).tolist() == [0.25] * 4


def test_the_loop_holds_an_absolute_arm_by_repeating_and_records_applied_steps():
    arm, seen = FakeArm(), []
    replies = iter([np.array([1, 2, 3, 2.5]), TimeoutError(), np.array([9, 0, 0, 0])])

    def policy(o, timeout):
        r = next(replies)
        if isinstance(r, Exception):
            raise r
        return r

    stats = run_control_loop(
        arm,
        policy,
        [-2] * 4,
        [3] * 4,
        rate_hz=None,
        max_steps=3,
        description=description(),
        on_step=lambda o, a, held: seen.append((a.tolist(), held)),
    )
    assert [a.tolist() for a in arm.applied] == [[1, 2, 3, 2.5], [1, 2, 3, 2.5], [3, 0, 0, 0]]  # held = repeat; clipped
    assert [h for _, h in seen] == [False, True, False] and stats.held == 1


def test_check_robot_for_policy_names_the_missing_camera():
    md = {"camera_keys": ["agentview"], "image_shapes": {"agentview": [32, 32, 3]}, "checkpoint": "abc"}
    with pytest.raises(
        RecordingError, match="trained on camera 'agentview', which robot 'fake 4-joint arm' does not send"
    ):
        check_robot_for_policy(description(), md)
    md = {
        "camera_keys": ["front"],
        "image_shapes": {"front": [40, 40, 3]},
        "action_dim": 7,
        "action_low": [-1] * 7,
        "action_high": [1] * 7,
    }
    with pytest.raises(RecordingError, match="serve a checkpoint trained on this robot"):
        check_robot_for_policy(description(), md)


class CubePickRunner(StubRunner):
    """A policy trained on CubePick's camera and 7-dim actions."""

    metadata = {
        **StubRunner.metadata,
        "obs_keys": ["agentview", "proprio"],
        "camera_keys": ["agentview"],
        "image_shape": [32, 32, 3],
        "image_shapes": {"agentview": [32, 32, 3]},
    }


def test_run_robot_refuses_a_policy_for_cameras_the_robot_does_not_send(tmp_path, capsys):
    with serving(CubePickRunner()) as server:
        rc = main(
            [
                "--server",
                f"ws://127.0.0.1:{server.port}",
                "--robot",
                ARM,
                "--rate",
                "0",
                "--retries",
                "0",
                "--record",
                str(tmp_path / "rec"),
            ]
        )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "does not send" in err
    assert not os.path.exists(tmp_path / "rec")  # nothing written, the arm never moved
