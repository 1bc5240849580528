"""Command-line error tests: each entry point as a user runs it (a subprocess), refusing bad input
with one ``error: ...`` line on stderr, exit code 2, no traceback, and no run directory left."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    script: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 180
) -> subprocess.CompletedProcess:
    """``python <script> args`` from ``cwd`` (default: the repository root), without a
    HYDRA_FULL_ERROR of the caller's unless ``env`` sets it."""
    base = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env = {**base, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl", **(env or {})}
    argv = [script] if script.startswith("-") else [str(ROOT / script)]  # "-c" runs code
    return subprocess.run(
        [sys.executable, *argv, *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 and exactly one ``error: ...`` line on stderr, holding every needle; returns it."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
