"""The main command end to end, as a user runs it: collect -> cache features -> train -> evaluate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def _run(args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train_policy.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_end_to_end_with_evaluation(tmp_path):
    out = _run(
        [
            *TINY,
            "scales=[1,2]",
            f"data.store={tmp_path}/demos.zarr",
            "data.n_episodes=3",
            f"hydra.run.dir={tmp_path}/run",
            "eval.enabled=true",
            "eval.n_episodes=2",
            "eval.n_videos=1",
        ]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "run/eval/eval.json").read_text())
    assert result["n_episodes"] == 2 and len(result["episodes"]) == 2
    assert result["scales"] == [1, 2] and result["encoder_weights"] == "random:seed0"
    assert all(r["seed"] >= 100_000 and 0 < r["length"] <= 120 for r in result["episodes"])
    frames = iio.imread(result["videos"][0])
    assert frames.ndim == 4 and len(frames) == result["episodes"][0]["length"] + 1
    assert (tmp_path / "run/checkpoint.pt").is_file() and (tmp_path / "run/metrics.csv").is_file()
    assert "success" in out.stdout.strip().splitlines()[-2]  # the summary line, then the run directory


def test_user_error_is_one_line_and_exit_2(tmp_path):
    out = _run(["encoder=vit_t", "encoder.name=vit_zz", f"hydra.run.dir={tmp_path}"], timeout=120)
    assert out.returncode == 2
    assert "error: unknown encoder 'vit_zz'; known encoders:" in out.stderr
    assert "Traceback" not in out.stderr
