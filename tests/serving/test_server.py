import copy
import http.client
import json
import time

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from s2robot.checkpoint import checkpoint_hash
from s2robot.rollout.controller import PolicyController
from s2robot.serving import PolicyServer, ServingError, auto_max_message_bytes, check_bind
from s2robot_client import ConnectError, PolicyClient, ServerError
from s2robot_client.protocol import PROTOCOL_VERSION, packb, unpackb
from tests.serving.helpers import serving, tiny_run

MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def run_dir(tiny_store, tmp_path_factory):
    return tiny_run(tiny_store, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def server(run_dir):
    with serving(PolicyController.from_checkpoint(run_dir), max_message_bytes=MAX_BYTES) as s:
        yield s


def _obs(rng, size=32):
    return {
        "agentview": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "proprio": rng.normal(size=9).astype(np.float32),
    }


def _client(server, **kw):
    return PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0, **kw)


def _health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # no proxy: loopback only
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def test_metadata_on_connect(server, run_dir):
    with _client(server) as c:
        md = c.metadata
    assert md["type"] == "metadata" and md["protocol"] == PROTOCOL_VERSION
    assert md["camera_keys"] == ["agentview"] and md["image_shape"] == [32, 32, 3] and md["proprio_dim"] == 9
    assert md["action_dim"] == 7 and md["action_low"] == [-1.0] * 7 and md["action_high"] == [1.0] * 7
    assert md["control_freq"] == 20 and md["n_action_steps"] == 4 and md["chunk_requests"] is True
    assert md["encoder"] == "vit_t" and md["scales"] == [1, 2] and md["checkpoint"] == checkpoint_hash(run_dir)


def test_actions_match_in_process_and_connections_are_isolated(server, run_dir):
    rng = np.random.default_rng(1)
    seq_a, seq_b = [_obs(rng) for _ in range(6)], [_obs(rng) for _ in range(6)]
    ref = PolicyController.from_checkpoint(run_dir)

    def alone(seq):
        ref.reset(1)
        return [ref.act({k: v[None] for k, v in o.items()})[0] for o in seq]

    want_a, want_b = alone(seq_a), alone(seq_b)
    with _client(server) as a, _client(server) as b:
        got_a, got_b = [], []
        for oa, ob in zip(seq_a, seq_b):  # interleaved: a, b, a, b, ...
            got_a.append(a.infer(oa)["action"])
            got_b.append(b.infer(ob)["action"])
    assert np.array_equal(got_a, want_a) and np.array_equal(got_b, want_b)  # bit-identical


def test_chunk_request_is_the_executed_part_of_the_chunk(server, run_dir):
    obs = _obs(np.random.default_rng(2))
    ref = PolicyController.from_checkpoint(run_dir)
    want = [ref.act({k: v[None] for k, v in obs.items()})[0] for _ in range(4)]
    with _client(server) as c:
        c.infer(_obs(np.random.default_rng(3)))  # leaves 3 actions queued: a chunk request starts afresh
        reply = c.infer(obs, chunk=True)
    assert reply["actions"].shape == (4, 7) and np.array_equal(reply["actions"], want)
    assert set(reply["timing"]) >= {"encode_ms", "head_ms", "total_ms", "queue_ms", "server_ms"}


def test_reset_clears_the_episode(server):
    rng = np.random.default_rng(4)
    first, other = _obs(rng), _obs(rng)
    with _client(server) as c:
        a0 = c.infer(first)["action"]
        c.infer(other)  # second action of first's chunk
        c.reset()
        assert np.array_equal(c.infer(first)["action"], a0)
        c.infer(other)
        assert np.array_equal(c.infer(first, reset=True)["action"], a0)


def _infer(obs, **kw):
    return packb({"type": "infer", "obs": obs, "id": 5, **kw})


def _good():
    return _obs(np.random.default_rng(0))


def _with(**over):
    return {**_good(), **over}


def _buffer(dtype="uint8", shape=(32, 32, 3), data=None):
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize if data is None else data
    return {"__ndarray__": True, "dtype": dtype, "shape": list(shape), "data": b"\0" * n if isinstance(n, int) else n}


MALFORMED = {
    "garbage": (b"\xc1\xc1not msgpack", "bad_message"),
    "truncated": (packb({"type": "infer", "obs": _good()})[:100], "bad_message"),
    "text_frame": ("hello", "bad_message"),
    "not_a_map": (packb([1, 2, 3]), "bad_message"),
    "no_type": (packb({"obs": _good()}), "bad_message"),
    "unknown_type": (packb({"type": "fly", "id": 5}), "unknown_type"),
    "obs_not_map": (packb({"type": "infer", "obs": [1, 2], "id": 5}), "bad_message"),
    "missing_key": (_infer({"proprio": _good()["proprio"]}), "missing_key"),
    "image_float": (_infer(_with(agentview=np.zeros((32, 32, 3), np.float32))), "bad_dtype"),
    "image_shape": (_infer(_with(agentview=np.zeros((64, 64, 3), np.uint8))), "bad_shape"),
    "image_gray": (_infer(_with(agentview=np.zeros((32, 32), np.uint8))), "bad_shape"),
    "proprio_int": (_infer(_with(proprio=np.zeros(9, np.int64))), "bad_dtype"),
    "proprio_list": (_infer(_with(proprio=[0.0] * 9)), "bad_dtype"),
    "proprio_shape": (_infer(_with(proprio=np.zeros(8, np.float32))), "bad_shape"),
    "proprio_nan": (_infer(_with(proprio=np.full(9, np.nan, np.float32))), "non_finite"),
    "proprio_inf": (_infer(_with(proprio=np.array([np.inf] + [0] * 8, np.float32))), "non_finite"),
    "proprio_f64_overflow": (_infer(_with(proprio=np.full(9, 1e300))), "non_finite"),
    "buffer_dtype": (
        msgpack.packb({"type": "infer", "id": 5, "obs": {"agentview": _buffer(dtype="complex64")}}),
        "bad_array",
    ),
    "buffer_length": (
        msgpack.packb({"type": "infer", "id": 5, "obs": {"agentview": _buffer(data=b"\0" * 7)}}),
        "bad_array",
    ),
    "buffer_object": (
        msgpack.packb({"type": "infer", "id": 5, "obs": {"agentview": _buffer(dtype="object")}}),
        "bad_array",
    ),
    "chunk_not_bool": (_infer(_good(), chunk="yes"), "bad_message"),
    "oversized": (_infer(_with(pad=np.zeros(MAX_BYTES, np.uint8))), "message_too_large"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests_get_structured_errors_and_the_connection_stays(server, name):
    data, code = MALFORMED[name]
    with _client(server) as c:
        reply = c.send_raw(data, timeout=10)
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert isinstance(reply["message"], str) and reply["message"]
        if code not in ("bad_message", "bad_array", "message_too_large"):
            assert reply["id"] == 5  # the request was readable: its id comes back
        assert c.infer(_good(), timeout=10)["type"] == "action"  # same connection still serves
    assert _health(server.port)[0] == 200


def test_error_messages_name_the_problem(server):
    with _client(server) as c:
        with pytest.raises(ServerError, match=r"missing_key: observation lacks \['agentview'\]"):
            c.infer({"proprio": np.zeros(9, np.float32)})
        with pytest.raises(ServerError, match=r"obs\['agentview'\] must have shape \[32, 32, 3\], got \[31, 32, 3\]"):
            c.infer(_with(agentview=np.zeros((31, 32, 3), np.uint8)))


def test_client_gets_the_error_for_an_oversized_observation(server):
    with _client(server) as c:
        with pytest.raises(ServerError, match="message_too_large: message of .* bytes is over the server's limit"):
            c.infer(_with(pad=np.zeros(MAX_BYTES, np.uint8)), timeout=10)
        assert c.infer(_good(), timeout=10)["type"] == "action"


def test_frame_over_the_transport_limit_closes_only_that_connection(server):
    with connect(f"ws://127.0.0.1:{server.port}", proxy=None, compression=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=5))  # metadata
        ws.send(b"\0" * (server.transport_max_bytes + 1))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1009  # message too big
    with _client(server) as c:
        assert c.infer(_good())["type"] == "action"


def test_client_vanishing_mid_request_is_cleaned_up(server):
    with connect(f"ws://127.0.0.1:{server.port}", proxy=None, compression=None) as ws:
        ws.recv(timeout=5)
        ws.send(_infer(_good()))
    # gone before the reply; the server finishes the request, drops the connection and serves others
    with _client(server) as c:
        assert c.infer(_good())["type"] == "action"
    for _ in range(50):
        if _health(server.port)[1]["open_connections"] == 0:
            break
        time.sleep(0.05)
    assert _health(server.port)[1]["open_connections"] == 0


def test_health_endpoint(server):
    status, body = _health(server.port)
    assert status == 200 and body["status"] == "ok" and body["protocol"] == PROTOCOL_VERSION


def test_token_required_and_refused(run_dir):
    with serving(PolicyController.from_checkpoint(run_dir), token="s3cret") as s:
        with pytest.raises(ConnectError, match="HTTP 401.*missing token"):
            _client(s)
        with pytest.raises(ConnectError, match="HTTP 401.*wrong token"):
            _client(s, token="guess")
        with _client(s, token="s3cret") as c:
            assert c.infer(_good())["type"] == "action"
        assert _health(s.port)[0] == 200  # health needs no token


def test_non_loopback_bind_needs_a_token():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.5", "robot-server.lan"):
        with pytest.raises(ServingError, match="without a token"):
            check_bind(host, None)
        check_bind(host, "s3cret")
    with pytest.raises(ServingError, match="without a token"):
        PolicyServer(object(), host="0.0.0.0")


# -- several cameras ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_cam_runner(tiny_store_2cam, tmp_path_factory):
    from tests.two_cameras import WRIST_OWN, two_camera_run

    return PolicyController.from_checkpoint(two_camera_run(tiny_store_2cam, tmp_path_factory.getbasetemp(), WRIST_OWN))


def test_two_camera_policy_is_served_with_every_camera(two_cam_runner):
    from tests.two_cameras import CAMERAS, two_camera_obs

    with serving(two_cam_runner) as server, _client(server) as c:
        md = c.metadata
        assert md["camera_keys"] == CAMERAS and md["obs_keys"] == [*CAMERAS, "proprio"]
        assert md["image_shapes"] == {cam: [32, 32, 3] for cam in CAMERAS}
        assert md["camera_encoders"]["robot0_eye_in_hand"]["feature"] == "tokens"
        # the request limit counts both frames
        frames = {cam: ("image", (32, 32, 3)) for cam in CAMERAS}
        assert md["max_message_bytes"] == auto_max_message_bytes({**frames, "proprio": ("vector", (9,))})
        obs = two_camera_obs(None)
        ref = copy.copy(two_cam_runner)
        ref.reset(1)
        assert np.allclose(
            c.infer(obs, timeout=30)["action"], ref.act({k: v[None] for k, v in obs.items()})[0], atol=1e-5
        )
        del obs["robot0_eye_in_hand"]
        with pytest.raises(
            ServerError,
            match=r"missing_key: observation lacks \['robot0_eye_in_hand'\]; .*send a "
            r"frame of every camera it was trained on",
        ):
            c.infer(obs, timeout=30)
        assert _health(server.port)[0] == 200
