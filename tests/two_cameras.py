"""Two-camera runs shared by the tests of training, the controller, evaluation and serving: each
trained once per session on the ``tiny_store_2cam`` fixture (agentview + the wrist camera, 32 px)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

# timm before any simulator GL context (see s2robot/training/train.py)
import s2robot.training.train  # noqa: F401

CAMERAS = ["agentview", "robot0_eye_in_hand"]
TWO = "data.cameras=[agentview,robot0_eye_in_hand]"
# The wrist camera with its own options: S² [1] where agentview keeps the shared [1,2], and its
# token grid pooled by keypoints where agentview gives a CLS vector.
WRIST_OWN = "+camera_encoders.robot0_eye_in_hand={scales:[1],feature:tokens,visual_pool:keypoints}"

_RUNS: dict[tuple, Path] = {}


def two_camera_run(store: Path, base: Path, *overrides: str) -> Path:
    """A vision checkpoint on both cameras (vit_t, random weights, shared scales [1,2]) trained for one
    epoch with ``overrides``, once per test run."""
    key = (str(store), overrides)
    if key not in _RUNS:
        from s2robot.training.train import train
        from tests.conftest import TINY, compose
        from tests.shared import build_once

        cfg = compose([*TINY, f"data.store={store}", TWO, "scales=[1,2]", "train.epochs=1", *overrides])
        name = "two_camera_run_" + hashlib.md5(repr(key).encode()).hexdigest()[:8]
        _RUNS[key] = build_once(base, name, lambda d: (d.mkdir(), train(cfg, d)))
    return _RUNS[key]


def two_camera_obs(b: int | None, seed: int = 0, size: int = 32) -> dict[str, np.ndarray]:
    """Random frames of both cameras and proprio; ``b=None``: one unbatched observation (the wire)."""
    rng = np.random.default_rng(seed)
    lead = () if b is None else (b,)
    obs = {cam: rng.integers(0, 256, (*lead, size, size, 3), dtype=np.uint8) for cam in CAMERAS}
    obs["proprio"] = rng.normal(size=(*lead, 9)).astype(np.float32)
    return obs
