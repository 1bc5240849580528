"""The simulated robot driven through the server over loopback acts exactly as the same checkpoint
evaluated in process, on the same seeds."""

import numpy as np
import pytest

from envs.seeds import EVAL_SEED_START
from envs.sim_robot import SimRobot
from s2robot.checkpoint import load_checkpoint
from s2robot.rollout.controller import PolicyController
from s2robot_client import ActionChunkBroker, PolicyClient, run_control_loop
from tests.serving.helpers import serving, tiny_run

SEEDS = [EVAL_SEED_START, EVAL_SEED_START + 1]
HORIZON = 20


@pytest.fixture(scope="module")
def run_dir(tiny_store, tmp_path_factory):
    return tiny_run(tiny_store, tmp_path_factory.getbasetemp())


def in_process(runner, robot, seed):
    robot.reset(seed)
    runner.reset(1)
    actions = []
    while not robot.done:
        a = runner.act({k: v[None] for k, v in robot.get_observation().items()})[0]
        robot.apply_action(a)
        actions.append(a)
    return robot.success, np.stack(actions)


def served(broker, robot, seed):
    robot.reset(seed)
    broker.reset()
    md = broker.client.metadata
    stats = run_control_loop(
        robot,
        broker.act,
        md["action_low"],
        md["action_high"],
        rate_hz=None,
        watchdog_s=60,
        should_stop=lambda: robot.done,
        record=True,
    )
    assert stats.held == 0 and stats.server_errors == 0
    return robot.success, np.stack(stats.actions)


@pytest.mark.slow
def test_served_rollouts_match_in_process(run_dir):
    runner = PolicyController.from_checkpoint(run_dir)
    robot = SimRobot({**load_checkpoint(run_dir)["env"], "horizon": HORIZON}, runner.obs_keys)
    try:
        want = {seed: in_process(runner, robot, seed) for seed in SEEDS}
        with serving(PolicyController.from_checkpoint(run_dir)) as server:
            with PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
                chunked = ActionChunkBroker(client)
                per_step = ActionChunkBroker(client, use_chunks=False)
                assert chunked.use_chunks and not per_step.use_chunks
                got = {seed: served(chunked, robot, seed) for seed in SEEDS}
                got_per_step = served(per_step, robot, SEEDS[0])
    finally:
        robot.close()
    for seed in SEEDS:
        assert got[seed][0] == want[seed][0]  # same success
        assert np.array_equal(got[seed][1], want[seed][1])  # bit-identical actions, step for step
    assert np.array_equal(got_per_step[1], want[SEEDS[0]][1])
    assert not np.array_equal(want[SEEDS[0]][1][:5], want[SEEDS[1]][1][:5])  # the seeds differ: a real check


def test_sim_robot_renders_every_camera_the_metadata_names():
    from envs.sim_robot import sim_robot_for

    md = {
        "camera_keys": ["agentview", "robot0_eye_in_hand"],
        "obs_keys": ["agentview", "robot0_eye_in_hand", "proprio"],
        "image_shape": [32, 32, 3],
        "image_shapes": {"agentview": [32, 32, 3], "robot0_eye_in_hand": [32, 32, 3]},
        "control_freq": 20,
    }
    robot = sim_robot_for(md, horizon=3)
    try:
        robot.reset(EVAL_SEED_START)
        obs = robot.get_observation()
        assert sorted(obs) == sorted(md["obs_keys"])
        assert obs["agentview"].shape == obs["robot0_eye_in_hand"].shape == (32, 32, 3)
        assert not np.array_equal(obs["agentview"], obs["robot0_eye_in_hand"])  # two views, not one twice
    finally:
        robot.close()
    with pytest.raises(ValueError, match="one square size"):
        sim_robot_for({**md, "image_shapes": {"agentview": [32, 32, 3], "robot0_eye_in_hand": [64, 64, 3]}})


@pytest.mark.slow
def test_served_two_camera_rollout_matches_in_process(tiny_store_2cam, tmp_path_factory):
    from envs.sim_robot import sim_robot_for
    from tests.two_cameras import WRIST_OWN, two_camera_run

    run = two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp(), WRIST_OWN)
    runner = PolicyController.from_checkpoint(run)
    robot = sim_robot_for(runner.metadata, horizon=HORIZON)  # as `s2robot-robot --robot sim` builds it
    try:
        want = in_process(runner, robot, SEEDS[0])
        with serving(PolicyController.from_checkpoint(run)) as server:
            with PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
                got = served(ActionChunkBroker(client), robot, SEEDS[0])
    finally:
        robot.close()
    assert got[0] == want[0] and np.array_equal(got[1], want[1])
