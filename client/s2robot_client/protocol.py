"""The wire format shared by the action server and the robot: MessagePack maps, numpy arrays as
typed buffers ``{"__ndarray__": True, "dtype": "float32", "shape": [9], "data": <bytes>}``.

Never pickle: a message is data only. Decoding checks each buffer's dtype against an allow-list
and that its byte length matches its shape, so a malformed message raises `ProtocolError`
instead of building a wrong array.

Messages (every one a map with a "type"):

    server -> client   {"type": "metadata", "protocol": 1, ...}          on connect and on request
    client -> server   {"type": "infer", "obs": {...}, "id": 7, "chunk": false, "reset": false}
    server -> client   {"type": "action", "id": 7, "action": (A,), "actions": (N, A) when chunk,
                        "timing": {"encode_ms", "head_ms", "total_ms", "queue_ms", "server_ms"}}
    client -> server   {"type": "reset", "id": 8}        ->  {"type": "reset", "id": 8}
    client -> server   {"type": "metadata", "id": 9}     ->  the metadata message again
    server -> client   {"type": "error", "code": "bad_shape", "message": "...", "id": 7}
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
NDARRAY_KEY = "__ndarray__"
# Arrays travel little-endian; these are the only dtypes a peer may send.
ALLOWED_DTYPES = frozenset(
    {
        "bool",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "int64",
        "float16",
        "float32",
        "float64",
    }
)
MAX_NDIM = 8

# Error codes in {"type": "error", "code": ...} replies.
BAD_MESSAGE = "bad_message"  # not MessagePack, not a map, or no/invalid "type"
BAD_ARRAY = "bad_array"  # a typed buffer with a refused dtype, shape or byte length
MESSAGE_TOO_LARGE = "message_too_large"
UNKNOWN_TYPE = "unknown_type"
MISSING_KEY = "missing_key"
BAD_DTYPE = "bad_dtype"
BAD_SHAPE = "bad_shape"
NON_FINITE = "non_finite"
UNSUPPORTED = "unsupported"
INTERNAL = "internal"


class ProtocolError(ValueError):
    """A message that cannot be decoded or does not follow the protocol; ``code`` is one of the
    error codes above, ``str(e)`` says what was wrong."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _pack_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in ALLOWED_DTYPES:
            raise TypeError(f"cannot send a {obj.dtype} array; allowed dtypes: {sorted(ALLOWED_DTYPES)}")
        arr = obj.astype(obj.dtype.newbyteorder("<"), order="C", copy=False)  # keeps 0-d arrays 0-d
        return {NDARRAY_KEY: True, "dtype": obj.dtype.name, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot send an object of type {type(obj).__name__}")


def packb(obj: Any) -> bytes:
    """Python/numpy message -> bytes. Raises TypeError for anything but plain data and arrays."""
    return msgpack.packb(obj, default=_pack_default, use_bin_type=True)


def _unpack_array(d: dict) -> np.ndarray:
    dtype, shape, data = d.get("dtype"), d.get("shape"), d.get("data")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise ProtocolError(BAD_ARRAY, f"array dtype {dtype!r} is not allowed; use one of {sorted(ALLOWED_DTYPES)}")
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) > MAX_NDIM
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ProtocolError(
            BAD_ARRAY, f"array shape {shape!r} is not a list of at most {MAX_NDIM} non-negative integers"
        )
    if not isinstance(data, bytes):
        raise ProtocolError(BAD_ARRAY, f"array data must be bytes, got {type(data).__name__}")
    dt = np.dtype(dtype).newbyteorder("<")
    want = dt.itemsize * int(np.prod(shape, dtype=np.int64)) if shape else dt.itemsize
    if len(data) != want:
        raise ProtocolError(
            BAD_ARRAY, f"array of dtype {dtype} and shape {list(shape)} needs {want} bytes, got {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dt).reshape(tuple(shape))
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _object_hook(d: dict) -> Any:
    if NDARRAY_KEY in d:
        return _unpack_array(d)
    return d


def unpackb(data: bytes) -> Any:
    """bytes -> message, arrays rebuilt (read-only views of the message). Raises ProtocolError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(BAD_MESSAGE, "expected a binary MessagePack frame, got a text frame")
    try:
        return msgpack.unpackb(data, object_hook=_object_hook, raw=False, strict_map_key=False, use_list=True)
    except ProtocolError:
        raise
    except Exception as e:  # msgpack raises many types (ExtraData, FormatError, StackError, ValueError, ...)
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise ProtocolError(BAD_MESSAGE, f"not a MessagePack message ({detail})"[:300]) from None


def decode_message(data: bytes) -> dict:
    """A message must be a map with a string "type"."""
    msg = unpackb(data)
    if not isinstance(msg, dict):
        raise ProtocolError(BAD_MESSAGE, f"a message must be a map, got {type(msg).__name__}")
    if not isinstance(msg.get("type"), str):
        raise ProtocolError(BAD_MESSAGE, 'a message must have a string "type"')
    return msg


def error_message(code: str, message: str, request_id: Any = None) -> dict:
    out = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        out["id"] = request_id
    return out
