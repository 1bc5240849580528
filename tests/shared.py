"""Expensive test inputs (demo stores, trained tiny runs) built once per test run, even when
pytest-xdist runs the suite in several worker processes: each worker would otherwise collect and
train its own copy (about 30 s each for the two-camera ones)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def run_root(base: Path) -> Path:
    """The folder every worker of this run shares: under xdist each worker's base temp is a child of it."""
    base = Path(base)
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(base: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``<run root>/<name>``, made by ``build(path)`` the first time any worker asks; the others wait
    for it under a file lock. A build that failed half-way is redone, not reused."""
    path = run_root(base) / name
    done = path.with_name(path.name + ".done")
    with FileLock(str(path) + ".lock"):
        if not done.exists():
            if path.exists():
                shutil.rmtree(path)
            build(path)
            done.touch()
    return path
