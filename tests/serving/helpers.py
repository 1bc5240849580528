"""Shared by the serving and client tests: one tiny trained checkpoint per session, a server in a
thread, and a model-free runner for tests of the robot side."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

# timm pulls in triton, whose LLVM clashes with Mesa's (EGL rendering on the CPU): importing it after
# a simulator made a GL context segfaults. Import it first, as the training tests do.
import s2robot.training.train  # noqa: F401,E402

_RUNS: dict[str, Path] = {}


def tiny_run(tiny_store: Path, base: Path) -> Path:
    """A vision checkpoint (vit_t, random weights, 32 px, scales [1, 2]) trained for one epoch, once."""
    key = str(tiny_store)
    if key not in _RUNS:
        from s2robot.training.train import train
        from tests.conftest import TINY, compose
        from tests.shared import build_once

        cfg = compose([*TINY, f"data.store={tiny_store}", "scales=[1,2]", "train.epochs=1"])
        _RUNS[key] = build_once(base, "serving_run", lambda d: (d.mkdir(), train(cfg, d)))
    return _RUNS[key]


@contextlib.contextmanager
def serving(runner, **kw):
    from s2robot.serving import PolicyServer

    server = PolicyServer(runner, port=0, **kw)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()


class StubRunner:
    """PolicyController's serving surface without a model: a fixed action, optionally stalled."""

    n_obs_steps = 1
    n_action_steps = 2

    def __init__(self, action=(0.3, 0.0, -0.2, 0.0, 0.0, 0.0, 1.0)):
        self.action = np.asarray(action, dtype=np.float32)
        self.control = {"stall_s": 0.0, "calls": 0}  # shared by the server's per-connection copies
        self.last_timing = {}

    metadata = {
        "obs_keys": ["proprio"],
        "camera_keys": [],
        "image_shape": None,
        "proprio_dim": 9,
        "vector_dims": {"proprio": 9},
        "action_dim": 7,
        "action_low": [-1.0] * 7,
        "action_high": [1.0] * 7,
        "control_freq": 20,
        "action_horizon": 2,
        "n_action_steps": 2,
        "temporal_ensemble": False,
        "encoder": None,
        "scales": None,
        "checkpoint": "stub",
    }

    def reset(self, n_envs=1):
        pass

    def act(self, batch):
        self.control["calls"] += 1
        if self.control["stall_s"]:
            time.sleep(self.control["stall_s"])
        self.last_timing = {"encode_ms": 0.0, "head_ms": 0.0, "total_ms": 0.0}
        return self.action[None].copy()
