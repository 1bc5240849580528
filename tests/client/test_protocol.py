import msgpack
import numpy as np
import pytest

from s2robot_client.protocol import (
    ALLOWED_DTYPES,
    BAD_ARRAY,
    BAD_MESSAGE,
    ProtocolError,
    decode_message,
    packb,
    unpackb,
)


@pytest.mark.parametrize("dtype", sorted(ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (9,), (2, 3), (4, 5, 3), (1, 2, 1, 2)])
def test_round_trip_keeps_dtype_shape_and_bits(dtype, shape):
    rng = np.random.default_rng(0)
    a = np.asarray(rng.normal(size=shape) * 100).astype(dtype)
    b = unpackb(packb({"x": a, "nested": [a, {"y": a}]}))
    for got in (b["x"], b["nested"][0], b["nested"][1]["y"]):
        assert got.dtype == a.dtype and got.shape == a.shape
        assert got.tobytes() == a.tobytes()


def test_non_contiguous_big_endian_and_scalars():
    a = np.arange(24, dtype=">f4").reshape(4, 6)[:, ::2]
    b = unpackb(packb({"a": a, "s": np.float32(1.5), "i": np.int64(3), "t": "text", "n": None}))
    assert np.array_equal(b["a"], a) and b["a"].dtype == np.float32
    assert b["s"] == 1.5 and b["i"] == 3 and b["t"] == "text" and b["n"] is None


def test_refuses_to_send_objects_and_pickles():
    with pytest.raises(TypeError):
        packb({"x": np.array([object()])})
    with pytest.raises(TypeError):
        packb({"x": {1, 2}})


def _buffer(**kw):
    d = {"__ndarray__": True, "dtype": "float32", "shape": [3], "data": b"\0" * 12, **kw}
    return msgpack.packb({"x": d}, use_bin_type=True)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(dtype="object"), "not allowed"),
        (dict(dtype="complex128"), "not allowed"),
        (dict(dtype="O"), "not allowed"),
        (dict(dtype=3), "not allowed"),
        (dict(data=b"\0" * 11), "needs 12 bytes, got 11"),
        (dict(data=b"\0" * 13), "needs 12 bytes, got 13"),
        (dict(shape=[-3]), "non-negative"),
        (dict(shape=[1.5]), "non-negative"),
        (dict(shape="3"), "non-negative"),
        (dict(shape=[1] * 9), "at most"),
        (dict(shape=[2**40, 2**40]), "needs"),
        (dict(data="text"), "must be bytes"),
    ],
)
def test_refuses_bad_typed_buffers(bad, match):
    with pytest.raises(ProtocolError, match=match) as e:
        unpackb(_buffer(**bad))
    assert e.value.code == BAD_ARRAY


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xff" * 10 + b"\x00", b"\x81\xa1x", "text"])
def test_garbage_is_a_protocol_error(data):
    with pytest.raises(ProtocolError) as e:
        decode_message(data)
    assert e.value.code == BAD_MESSAGE


def test_message_needs_map_with_type():
    with pytest.raises(ProtocolError, match="must be a map"):
        decode_message(packb([1, 2]))
    with pytest.raises(ProtocolError, match='string "type"'):
        decode_message(packb({"obs": {}}))
    assert decode_message(packb({"type": "reset"})) == {"type": "reset"}
