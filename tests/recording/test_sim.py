"""`s2robot-record --robot sim` records the simulator exactly as a real arm: through the Robot
adapter, its description in the store, plus the env config so that rollouts stay possible."""

import json

import pytest

from s2robot.commands.record_demos import main as record
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.robot_description import cube_pick, from_store_attrs


@pytest.mark.slow
def test_sim_robot_with_the_scripted_expert(tmp_path, capsys):
    store = tmp_path / "sim.zarr"
    record(
        [
            "--robot",
            "sim",
            "--device",
            "expert",
            "--rate",
            "0",
            "--image-size",
            "32",
            "--horizon",
            "80",
            "--episodes",
            "1",
            "--store",
            str(store),
        ]
    )
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["kept"] == 1
    buf = ReplayBuffer.open(store)
    assert from_store_attrs(buf.attrs) == cube_pick(("agentview",), 32)
    assert buf.attrs["env"]["image_size"] == 32 and buf.keys == ["action", "agentview", "proprio", "timestamp"]
    assert buf.episode_success.tolist() == [True]  # the expert lifts the cube within 80 steps
