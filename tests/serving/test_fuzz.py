"""A bounded fuzz of the server over loopback: thousands of malformed requests of many kinds from
two connections while a well-formed client keeps driving; every bad request gets a structured
error, the good client's actions stay right, the server stays up, and the log stays short."""

import http.client
import logging
import random
import threading

import msgpack
import numpy as np
from websockets.sync.client import connect

from s2robot_client import PolicyClient
from s2robot_client.protocol import packb, unpackb
from tests.serving.helpers import StubRunner, serving

N_PER_CONNECTION = 1100  # x 2 connections: 2,200 malformed requests
GOOD_OBS = {"proprio": np.linspace(-1, 1, 9).astype(np.float32)}


def _buffer(dtype="float32", shape=(9,), nbytes=36):
    return {"__ndarray__": True, "dtype": dtype, "shape": list(shape), "data": b"\0" * nbytes}


def _infer(**obs):
    return packb({"type": "infer", "id": 1, "obs": {**GOOD_OBS, **obs}})


def malformed_kinds(max_bytes: int) -> dict:
    """name -> (frame, error code); each a request the server must refuse with that code."""
    deep = b"\x91" * 3000 + b"\x00"  # 3,000 nested one-element lists
    return {
        "garbage": (bytes(range(0xC1, 0xC1 + 1)) + b"\xff" * 20, "bad_message"),
        "empty": (b"", "bad_message"),
        "text_frame": ("infer please", "bad_message"),
        "list": (packb([1, 2, 3]), "bad_message"),
        "no_type": (packb({"obs": GOOD_OBS}), "bad_message"),
        "type_not_string": (packb({"type": 7}), "bad_message"),
        "unknown_type": (packb({"type": "fly", "id": 1}), "unknown_type"),
        "truncated": (packb({"type": "infer", "obs": GOOD_OBS})[:-5], "bad_message"),
        "trailing_bytes": (packb({"type": "reset"}) + b"\x00", "bad_message"),
        "deep_nesting": (deep, "bad_message"),
        "obs_not_map": (packb({"type": "infer", "id": 1, "obs": 3}), "bad_message"),
        "missing_key": (packb({"type": "infer", "id": 1, "obs": {}}), "missing_key"),
        "proprio_list": (_infer(proprio=[0.0] * 9), "bad_dtype"),
        "proprio_int": (_infer(proprio=np.zeros(9, np.int32)), "bad_dtype"),
        "proprio_shape": (_infer(proprio=np.zeros(10, np.float32)), "bad_shape"),
        "proprio_nan": (_infer(proprio=np.full(9, np.nan, np.float32)), "non_finite"),
        "proprio_inf": (_infer(proprio=np.full(9, -np.inf, np.float32)), "non_finite"),
        "buffer_dtype": (msgpack.packb({"type": "infer", "obs": {"proprio": _buffer("object")}}), "bad_array"),
        "buffer_length": (msgpack.packb({"type": "infer", "obs": {"proprio": _buffer(nbytes=35)}}), "bad_array"),
        "buffer_shape": (msgpack.packb({"type": "infer", "obs": {"proprio": _buffer(shape=(-9,))}}), "bad_array"),
        "buffer_huge": (
            msgpack.packb({"type": "infer", "obs": {"proprio": _buffer(shape=(2**40, 2**40))}}),
            "bad_array",
        ),
        "chunk_not_bool": (packb({"type": "infer", "id": 1, "obs": GOOD_OBS, "chunk": "yes"}), "bad_message"),
        "reset_not_bool": (packb({"type": "infer", "id": 1, "obs": GOOD_OBS, "reset": 1}), "bad_message"),
        "oversized": (_infer(pad=np.zeros(max_bytes + 1, np.uint8)), "message_too_large"),
    }


def _fuzz(port: int, kinds: dict, seed: int, n: int, out: dict) -> None:
    rng = random.Random(seed)
    names = sorted(kinds)
    with connect(f"ws://127.0.0.1:{port}", proxy=None, compression=None, open_timeout=10) as ws:
        unpackb(ws.recv(timeout=10))  # metadata
        for _ in range(n):
            name = rng.choice(names)
            frame, code = kinds[name]
            ws.send(frame)
            reply = unpackb(ws.recv(timeout=10))
            ok = (
                reply.get("type") == "error"
                and reply.get("code") == code
                and isinstance(reply.get("message"), str)
                and reply["message"]
            )
            out.setdefault(name, []).append(bool(ok))


def test_fuzz_keeps_the_server_up_and_the_good_client_right(caplog):
    stub = StubRunner(action=(0.1, -0.2, 0.3, 0.0, 0.05, 0.0, -1.0))
    with caplog.at_level(logging.INFO, "s2robot.serving"), serving(stub) as server:
        kinds = malformed_kinds(server.max_message_bytes)
        results = [{}, {}]
        fuzzers = [
            threading.Thread(target=_fuzz, args=(server.port, kinds, seed, N_PER_CONNECTION, results[seed]))
            for seed in (0, 1)
        ]
        for t in fuzzers:
            t.start()
        good = 0
        with PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0) as client:
            while any(t.is_alive() for t in fuzzers) or good < 50:
                reply = client.infer(GOOD_OBS, chunk=good % 2 == 0, timeout=10)
                assert np.array_equal(reply["action"], stub.action)
                if "actions" in reply:
                    assert np.array_equal(reply["actions"], np.stack([stub.action] * 2))
                good += 1
        for t in fuzzers:
            t.join(timeout=60)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    merged = {k: results[0].get(k, []) + results[1].get(k, []) for k in kinds}
    assert sum(map(len, merged.values())) == 2 * N_PER_CONNECTION and sum(1 for v in merged.values() if v) >= 10
    wrong = {k: v.count(False) for k, v in merged.items() if not all(v)}
    assert not wrong, f"requests without the expected structured error: {wrong}"
    assert server.stats["errors"] == 2 * N_PER_CONNECTION
    # The log says each connection's trouble now and then, not once per request (2,200 lines before).
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("s2robot")]
    assert 2 <= len(warnings) <= 20, len(warnings)
    closing = [r.getMessage() for r in caplog.records if "disconnected after" in r.getMessage()]
    assert any(f"({N_PER_CONNECTION} refused)" in m for m in closing)
