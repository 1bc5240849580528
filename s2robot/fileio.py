"""Files written whole or not at all, and file hashes.

Every artefact a crash could leave half-written (checkpoints, encoder exports, eval.json, study
status, images) goes through ``atomic_write``: write a temporary beside the target, fsync, rename.
A reader sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """``with atomic_write(p) as f: f.write(...)``: ``p`` appears only once the block finished."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """For writers that want a file name (matplotlib, imageio): yields a temporary path with
    ``suffix`` (so the writer picks the format), renamed to ``path`` when the block finished."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{suffix or path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    import torch

    with atomic_write(path) as f:
        torch.save(obj, f)


def file_hash(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest of a file read in chunks (weights files are gigabytes)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
