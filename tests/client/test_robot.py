import contextlib
import logging
import socket
import threading
import time

import numpy as np
import pytest
from websockets.sync.server import serve as sync_serve

from s2robot_client import (
    ActionChunkBroker,
    BadReply,
    ConnectError,
    PolicyClient,
    clip_action,
    hold_action,
    run_control_loop,
)
from s2robot_client.protocol import PROTOCOL_VERSION, packb, unpackb
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


# -- malformed replies: the loop holds and counts, it never crashes ---------------------------------

GOOD = np.array([0.3, 0, -0.2, 0, 0, 0, 1.0], np.float32)
METADATA = {"type": "metadata", "protocol": PROTOCOL_VERSION, **StubRunner.metadata, "chunk_requests": True}


def _action(rid, **over):
    return packb({"type": "action", "id": rid, "action": GOOD, "actions": np.stack([GOOD, GOOD]), **over})


def _without(key):
    def reply(rid):
        msg = {"type": "action", "id": rid, "action": GOOD, "actions": np.stack([GOOD, GOOD])}
        del msg[key]
        return packb(msg)

    return reply


BAD_REPLIES = {
    "no_action": _without("action"),
    "action_text": lambda rid: _action(rid, action="abc"),
    "not_msgpack": lambda rid: b"\xc1\xc1 not msgpack",
    "a_list": lambda rid: packb([1, 2, 3]),
    "chunk_without_actions": _without("actions"),
    "action_wrong_size": lambda rid: _action(rid, action=np.zeros(3, np.float32)),
    "actions_empty": lambda rid: _action(rid, actions=np.zeros((0, 7), np.float32)),
    "action_integers": lambda rid: _action(rid, action=np.zeros(7, np.int64)),
    "wrong_type": lambda rid: packb({"type": "reset", "id": rid}),
}


@contextlib.contextmanager
def scripted_server(replies):
    """A server that answers its first requests with ``replies`` (rid -> frame), then good chunks."""

    def handler(ws):
        ws.send(packb(METADATA))
        script = iter(replies)
        for frame in ws:
            rid = unpackb(frame)["id"]
            ws.send(next(script, _action)(rid))

    with sync_serve(handler, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_malformed_replies_hold_the_arm_and_are_counted():
    with scripted_server(list(BAD_REPLIES.values())) as port, PolicyClient(f"ws://127.0.0.1:{port}") as client:
        robot = RecordingRobot()
        stats = run_control_loop(
            robot, ActionChunkBroker(client).act, LOW, HIGH, rate_hz=None, watchdog_s=5, max_steps=len(BAD_REPLIES) + 2
        )
    n = len(BAD_REPLIES)
    hold = [0, 0, 0, 0, 0, 0, -1.0]  # zero delta, the initial (open) gripper
    assert [a.tolist() for a in robot.applied[:n]] == [hold] * n
    assert [np.round(a, 6).tolist() for a in robot.applied[n:]] == [np.round(GOOD, 6).tolist()] * 2
    assert stats.bad_replies == n and stats.held == n and stats.fresh == 2 and robot.stopped == 1


@pytest.mark.parametrize("name", sorted(BAD_REPLIES))
def test_client_raises_bad_reply_naming_the_problem(name):
    with scripted_server([BAD_REPLIES[name]]) as port, PolicyClient(f"ws://127.0.0.1:{port}") as client:
        with pytest.raises(BadReply) as e:
            client.infer({"proprio": np.zeros(9, np.float32)}, chunk=True, timeout=5)
        assert str(e.value)
        assert np.array_equal(
            client.infer({"proprio": np.zeros(9, np.float32)}, chunk=True, timeout=5)["action"], GOOD
        )  # the connection still serves


# -- a lost server: hold while reconnecting, for a bounded time ---------------------------------------


class KillingRobot(RecordingRobot):
    """Runs ``at_step[n]()`` after applying the n-th action (stop or restart the server mid-episode)."""

    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def apply_action(self, a):
        super().apply_action(a)
        action = self.at_step.get(len(self.applied))
        if action:
            action()


def _server_on(port, runner=None):
    from s2robot.serving import PolicyServer

    server = PolicyServer(runner or StubRunner(), port=port)
    server.start_in_thread()
    return server


def test_loop_reconnects_while_holding_when_the_server_comes_back():
    first = _server_on(0)
    port, servers = first.port, [first]

    def restart_later():
        first.stop()
        threading.Timer(0.3, lambda: servers.append(_server_on(port))).start()

    try:
        with PolicyClient(f"ws://127.0.0.1:{port}") as client:
            broker = ActionChunkBroker(client, use_chunks=False)
            robot = KillingRobot({3: restart_later})
            stats = run_control_loop(
                robot,
                broker.act,
                LOW,
                HIGH,
                rate_hz=50,
                watchdog_s=0.5,
                max_steps=60,
                reconnect=broker.reconnect,
                reconnect_s=10,
            )
    finally:
        for s in servers:
            s.stop()
    assert stats.lost is None and stats.reconnects == 1 and len(servers) == 2
    assert stats.held >= 10  # >= 0.3 s at 50 Hz without a server, all of it holding
    assert stats.fresh + stats.held == stats.steps == 60 and robot.stopped == 1
    assert np.allclose(robot.applied[-1], GOOD)  # fresh actions from the new server


def test_loop_gives_up_after_reconnect_s_and_stops_the_arm():
    server = _server_on(0)
    with PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
        broker = ActionChunkBroker(client, use_chunks=False)
        robot = KillingRobot({2: server.stop})
        t0 = time.monotonic()
        stats = run_control_loop(
            robot,
            broker.act,
            LOW,
            HIGH,
            rate_hz=50,
            watchdog_s=0.5,
            max_steps=10_000,
            reconnect=broker.reconnect,
            reconnect_s=0.5,
        )
    assert 0.5 <= time.monotonic() - t0 < 5
    assert stats.lost and stats.lost.startswith("could not reconnect within 0.5 s") and "last error" in stats.lost
    assert stats.fresh == 2 and stats.held >= 10 and stats.reconnects == 0 and robot.stopped == 1
    assert all(a.tolist() == [0, 0, 0, 0, 0, 0, 1.0] for a in robot.applied[2:])  # held, gripper kept closed


class OtherPolicy(StubRunner):
    metadata = {**StubRunner.metadata, "checkpoint": "other"}


def test_reconnect_refuses_a_server_with_another_checkpoint():
    server = _server_on(0)
    port = server.port
    with PolicyClient(f"ws://127.0.0.1:{port}") as client:
        server.stop()
        other = _server_on(port, OtherPolicy())
        try:
            with pytest.raises(ConnectError, match="now serves checkpoint other, not stub"):
                client.reconnect(open_timeout=2)
        finally:
            other.stop()
