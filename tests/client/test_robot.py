import logging
import socket
import time

import numpy as np
import pytest
from s2robot_client import ActionChunkBroker, ConnectError, PolicyClient, clip_action, hold_action, run_control_loop

from tests.serving.helpers import StubRunner, serving

LOW, HIGH = -np.ones(7, np.float32), np.ones(7, np.float32)


class RecordingRobot:
    def __init__(self):
        self.applied, self.stopped = [], 0

    def get_observation(self):
        return {"proprio": np.zeros(9, np.float32)}

    def apply_action(self, a):
        self.applied.append(np.array(a))

    def stop(self):
        self.stopped += 1


def test_clip_and_hold():
    a = clip_action(np.array([2, -3, 0.5, 0, 0, 0, 1.5]), LOW, HIGH)
    assert a.dtype == np.float32 and a.tolist() == [1, -1, 0.5, 0, 0, 0, 1]
    assert hold_action(7, 1.0).tolist() == [0, 0, 0, 0, 0, 0, 1.0]


def test_loop_clips_out_of_bounds_actions_from_the_server():
    with serving(StubRunner(action=(2, -3, 0.5, 0, 0, 0, 9))) as server:
        with PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
            robot = RecordingRobot()
            stats = run_control_loop(robot, ActionChunkBroker(client).act, LOW, HIGH, rate_hz=None, max_steps=3)
    assert stats.fresh == 3 and robot.stopped == 1
    assert all(a.tolist() == [1, -1, 0.5, 0, 0, 0, 1] for a in robot.applied)


def test_watchdog_holds_the_arm_while_the_server_stalls():
    stub = StubRunner(action=(0.3, 0, -0.2, 0, 0, 0, 1.0))
    with serving(stub) as server, PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
        broker = ActionChunkBroker(client, use_chunks=False)
        robot = RecordingRobot()
        tick = {"n": 0}

        def policy(obs, timeout):
            tick["n"] += 1
            stub.control["stall_s"] = 0.6 if tick["n"] == 3 else 0.0  # the 3rd request hangs for 0.6 s
            return broker.act(obs, timeout=timeout)

        stats = run_control_loop(robot, policy, LOW, HIGH, rate_hz=50, watchdog_s=0.1, max_steps=12)
    fresh, hold = [0.3, 0, -0.2, 0, 0, 0, 1.0], [0, 0, 0, 0, 0, 0, 1.0]  # hold: zero delta, gripper unchanged
    got = [np.round(a.astype(float), 6).tolist() for a in robot.applied]
    assert got[:2] == [fresh, fresh]
    assert hold in got[2:] and stats.held >= 3  # >= 0.5 s of stall at <= 0.1 s per held tick
    assert got[-1] == fresh  # back to fresh actions after the stall
    assert stats.held + stats.fresh == 12 and robot.stopped == 1


def test_ctrl_c_stops_the_robot():
    robot = RecordingRobot()

    def policy(obs, timeout):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_control_loop(robot, policy, LOW, HIGH, rate_hz=None)
    assert robot.stopped == 1 and robot.applied == []


def test_lost_server_stops_the_loop():
    with serving(StubRunner()) as server:
        client = PolicyClient(f"ws://127.0.0.1:{server.port}")
        broker = ActionChunkBroker(client, use_chunks=False)
        robot = RecordingRobot()
        stats = run_control_loop(robot, broker.act, LOW, HIGH, rate_hz=None, max_steps=2)
    # the server is gone now
    stats = run_control_loop(robot, broker.act, LOW, HIGH, rate_hz=None, watchdog_s=2, max_steps=50)
    assert stats.steps == 0 and robot.stopped == 2


def test_client_retries_then_fails_clearly(caplog):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with caplog.at_level(logging.INFO, logger="s2robot_client.client"):
        with pytest.raises(ConnectError, match=f"could not connect to ws://127.0.0.1:{port} after 3 attempts"):
            PolicyClient(f"ws://127.0.0.1:{port}", retries=2, backoff=0.05)
    assert 0.1 <= time.monotonic() - t0 < 5  # backoff 0.05 + 0.1 s
    assert "retry 2/2" in caplog.text


def test_chunk_broker_asks_once_per_chunk():
    stub = StubRunner()
    with serving(stub) as server, PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
        broker = ActionChunkBroker(client)
        assert broker.use_chunks and client.metadata["n_action_steps"] == 2
        for _ in range(6):
            broker.act({"proprio": np.zeros(9, np.float32)})
    assert stub.control["calls"] == 6  # 3 chunk requests x n_action_steps act() calls on the server
