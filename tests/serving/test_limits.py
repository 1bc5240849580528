"""What one client can make the server hold: message size, queue, idle connections, the connection
cap, the Authorization header, and how much it logs. Loopback only, a model-free runner."""

import base64
import http.client
import json
import logging
import os
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from s2robot.serving import PolicyServer, ServingError, ThrottledLog
from s2robot_client import PolicyClient, ServerError
from s2robot_client.protocol import unpackb
from tests.serving.helpers import StubRunner, serving

PROPRIO = {"proprio": np.zeros(9, np.float32)}


class CameraStub(StubRunner):
    metadata = {
        **StubRunner.metadata,
        "obs_keys": ["agentview", "proprio"],
        "camera_keys": ["agentview"],
        "image_shape": [224, 224, 3],
    }


def _connect(port, **kw):
    return connect(f"ws://127.0.0.1:{port}", proxy=None, compression=None, open_timeout=5, **kw)


def _health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def _wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


def test_message_limit_is_computed_from_the_image_shape():
    obs = {"agentview": np.zeros((224, 224, 3), np.uint8), "proprio": np.zeros(9, np.float32)}
    with serving(CameraStub()) as server, PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0) as c:
        # one 224 px frame is 150,528 bytes: the limit fits it with room, far below the old fixed 8 MiB
        assert 150_528 < server.max_message_bytes < 300_000
        assert c.metadata["max_message_bytes"] == server.max_message_bytes
        assert server.transport_max_bytes < 1_000_000
        assert c.infer(obs, timeout=10)["type"] == "action"
        assert c.infer({**obs, "cube_pos": np.zeros(3, np.float32)}, timeout=10)["type"] == "action"
        with pytest.raises(ServerError, match="message_too_large"):
            c.infer({**obs, "depth": np.zeros((224, 224), np.float32)}, timeout=10)  # 200 kB more
        assert c.infer(obs, timeout=10)["type"] == "action"


def test_limits_are_configurable_and_checked():
    s = PolicyServer(StubRunner(), port=0, max_message_bytes=50_000, max_queue=2, idle_timeout_s=5, max_connections=3)
    assert (s.max_message_bytes, s.max_queue, s.idle_timeout_s, s.max_connections) == (50_000, 2, 5, 3)
    for bad, match in [
        (dict(max_message_bytes=100), "smaller than one observation"),
        (dict(max_message_bytes=2.5e6), "whole number of bytes"),
        (dict(max_queue=0), "max_queue"),
        (dict(max_connections=-1), "max_connections"),
        (dict(idle_timeout_s=0), "idle_timeout_s"),
        (dict(port=99999), "not a TCP port"),
        (dict(port="80"), "not a TCP port"),
    ]:
        with pytest.raises(ServingError, match=match):
            PolicyServer(StubRunner(), **{"port": 0, **bad})


def test_each_connection_buffers_at_most_max_queue_frames():
    with serving(StubRunner(), max_queue=2) as server, _connect(server.port) as ws:
        unpackb(ws.recv(timeout=5))
        assert _wait_for(lambda: len(server._server.connections) == 1)
        (conn,) = server._server.connections
        assert conn.protocol.max_message_size == server.transport_max_bytes
        assert conn.recv_messages.high == 2  # websockets stops reading the socket beyond this


def test_idle_connections_are_closed_and_busy_ones_kept():
    with serving(StubRunner(), idle_timeout_s=0.4) as server:
        with _connect(server.port) as idle, PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0) as busy:
            unpackb(idle.recv(timeout=5))
            for _ in range(8):  # 0.8 s of requests every 0.1 s: never idle for 0.4 s
                assert busy.infer(PROPRIO, timeout=5)["type"] == "action"
                time.sleep(0.1)
            with pytest.raises(ConnectionClosed):
                idle.recv(timeout=5)
            assert idle.close_code == 1000 and idle.close_reason == "idle for 0.4 s"
        assert _wait_for(lambda: _health(server.port)[1]["open_connections"] == 0)
        assert _health(server.port)[1]["closed_idle"] == 1


def test_connections_over_the_cap_get_503_and_health_still_answers():
    with serving(StubRunner(), max_connections=2) as server:
        with _connect(server.port) as a, _connect(server.port) as b:
            with pytest.raises(InvalidStatus) as e:
                _connect(server.port)
            assert e.value.response.status_code == 503
            assert b"at most 2 connections (max_connections)" in e.value.response.body
            status, body = _health(server.port)
            assert status == 200 and body["refused_busy"] == 1 and body["open_connections"] == 2
            a.close()
        # once both left, two fit again
        assert _wait_for(lambda: _health(server.port)[1]["open_connections"] == 0)
        with _connect(server.port) as a, _connect(server.port) as b:
            assert unpackb(a.recv(timeout=5))["type"] == unpackb(b.recv(timeout=5))["type"] == "metadata"


def _upgrade(port, *auth):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest("GET", "/")
    key = base64.b64encode(os.urandom(16)).decode()
    for k, v in [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key),
        *[("Authorization", a) for a in auth],
    ]:
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    return r.status, r.read()


def test_two_authorization_headers_are_a_400_not_a_500(caplog):
    with serving(StubRunner(), token="s3cret") as server, caplog.at_level(logging.ERROR, "websockets"):
        assert _upgrade(server.port, "Bearer s3cret", "Bearer s3cret") == (
            400,
            b"send exactly one Authorization header\n",
        )
        assert _upgrade(server.port, "Bearer guess", "Bearer s3cret")[0] == 400
        assert _upgrade(server.port, "Bearer guess")[0] == 401
        assert _upgrade(server.port)[0] == 401
        assert _upgrade(server.port, "Bearer s3cret")[0] == 101
        assert _health(server.port)[0] == 200
    assert "process_request failed" not in caplog.text and "Traceback" not in caplog.text


def test_throttled_log_one_line_per_key_per_interval_and_a_summary(caplog):
    now = [0.0]
    t = ThrottledLog(logging.getLogger("throttle_test"), interval_s=10, summary_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "throttle_test"):
        for i in range(1000):  # 1,000 bad requests from two connections in 25 s
            now[0] = i * 0.025
            t.warn("conn-a" if i % 2 else "conn-b", "bad_shape" if i % 3 else "bad_message", "bad request %d", i)
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 6  # each connection at 0, 10, 20 s
        assert "more like it in the last 10 s" in lines[2]
        now[0] = 61.0
        t.warn("conn-a", "bad_shape", "bad request late")
        summary = caplog.records[-1].getMessage()
    assert summary.startswith("1001 refused requests in the last 61 s (bad_shape: 667, bad_message: 334)")


def test_an_address_not_on_this_machine_is_a_serving_error():
    server = PolicyServer(StubRunner(), host="203.0.113.7", port=0, token="s3cret")  # TEST-NET-3: not ours
    with pytest.raises(ServingError, match="cannot listen on 203.0.113.7:0: "):
        server.start_in_thread()


def test_every_camera_is_in_the_observation_spec_and_the_message_limit():
    from s2robot.serving import auto_max_message_bytes, observation_spec

    one = {**CameraStub.metadata}
    # each camera at its own shape (a wrist camera sent smaller than the scene camera)
    two = {
        **one,
        "obs_keys": ["agentview", "robot0_eye_in_hand", "proprio"],
        "camera_keys": ["agentview", "robot0_eye_in_hand"],
        "image_shapes": {"agentview": [224, 224, 3], "robot0_eye_in_hand": [96, 96, 3]},
    }
    spec = observation_spec(two)
    assert spec == {
        "agentview": ("image", (224, 224, 3)),
        "robot0_eye_in_hand": ("image", (96, 96, 3)),
        "proprio": ("vector", (9,)),
    }
    assert observation_spec(one)["agentview"] == ("image", (224, 224, 3))  # metadata with image_shape only
    assert auto_max_message_bytes(spec) - auto_max_message_bytes(observation_spec(one)) > 96 * 96 * 3
