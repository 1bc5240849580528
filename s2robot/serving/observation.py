"""What an observation must look like for a given policy, and the check of one received over the
wire: every needed key, images uint8 at the metadata's shape, vectors floating point and finite."""

from __future__ import annotations

from typing import Any

import numpy as np

from s2robot_client.protocol import BAD_DTYPE, BAD_MESSAGE, BAD_SHAPE, MISSING_KEY, NON_FINITE, ProtocolError


def observation_spec(metadata: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``key -> ("image" | "vector", shape)`` from `PolicyController.metadata`: every camera the
    policy sees, at its ``image_shapes`` entry (``image_shape`` in metadata from before several cameras)."""
    spec: dict[str, tuple[str, tuple[int, ...]]] = {}
    shapes = metadata.get("image_shapes") or {}
    for cam in metadata["camera_keys"]:
        spec[cam] = ("image", tuple(shapes.get(cam) or metadata["image_shape"]))
    for key, dim in metadata["vector_dims"].items():
        spec[key] = ("vector", (int(dim),))
    return spec


def validate_observation(obs: Any, spec: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """-> the arrays the policy needs (vectors as float32); extra keys are ignored.
    Raises ProtocolError naming the first problem."""
    if not isinstance(obs, dict):
        raise ProtocolError(BAD_MESSAGE, f'"obs" must be a map of arrays, got {type(obs).__name__}')
    missing = [k for k in spec if k not in obs]
    if missing:
        cams = [k for k, (kind, _) in spec.items() if kind == "image"]
        hint = (
            f"; send a frame of every camera it was trained on ({cams}), under the same names"
            if any(k in cams for k in missing)
            else ""
        )
        raise ProtocolError(
            MISSING_KEY,
            f"observation lacks {missing}; this policy needs {sorted(spec)} (got {sorted(map(str, obs))}){hint}",
        )
    out = {}
    for key, (kind, shape) in spec.items():
        value = obs[key]
        if not isinstance(value, np.ndarray):
            raise ProtocolError(BAD_DTYPE, f"obs[{key!r}] must be a typed array, got {type(value).__name__}")
        if kind == "image" and value.dtype != np.uint8:
            raise ProtocolError(BAD_DTYPE, f"obs[{key!r}] must be uint8 RGB, got {value.dtype}")
        if kind == "vector" and value.dtype.kind != "f":
            raise ProtocolError(BAD_DTYPE, f"obs[{key!r}] must be floating point (float32), got {value.dtype}")
        if value.shape != shape:
            raise ProtocolError(BAD_SHAPE, f"obs[{key!r}] must have shape {list(shape)}, got {list(value.shape)}")
        if kind == "vector":
            with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: refused below
                value = value.astype(np.float32, copy=False)
            if not np.all(np.isfinite(value)):
                raise ProtocolError(NON_FINITE, f"obs[{key!r}] contains NaN or inf (as float32): {value.tolist()}")
        out[key] = value
    return out
