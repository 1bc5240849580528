"""The store DAgger grows: whether a store can take DAgger's episodes (``check_store``), and the
copy it grows instead of the original with store_mode=copy (``copy_store``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from s2robot.config.checks import show
from s2robot.dagger.rollout import PRIVILEGED_STATE, recordable_keys
from s2robot.data.replay_buffer import ReplayBuffer, StoreError


def check_store(store: Path, cameras: Sequence[str]) -> None:
    """A store DAgger can add to: the expert's privileged state, its env config, nothing a rollout
    could not record, and every camera the policy looks through."""
    buffer = ReplayBuffer.open(store)
    if missing := [k for k in PRIVILEGED_STATE if k not in buffer.keys]:
        raise StoreError(
            f"{store}: no {', '.join(missing)} in this store (it has {buffer.keys}): DAgger's expert "
            f"labels states from the cube's pose, and every episode of a store has the same keys; "
            f"use a store made by scripts/collect_demos.py, which records them"
        )
    env = buffer.attrs.get("env")
    if not isinstance(env, Mapping):
        raise StoreError(
            f"{store}: does not record the env it was collected in (attrs 'env'), so its episodes "
            f"cannot be continued in the same env; collect it again with scripts/collect_demos.py"
        )
    if extra := sorted(set(buffer.keys) - recordable_keys(env)):
        raise StoreError(
            f"{store}: holds {extra}, which a DAgger rollout cannot record; use a store made by "
            f"scripts/collect_demos.py"
        )
    if missing := [c for c in cameras if c not in env.get("cameras", ())]:
        raise StoreError(
            f"{store}: collected with cameras {show(list(env.get('cameras', ())))}, the policy looks "
            f"through {show(missing)} too; use the store the policy was trained on"
        )


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def copy_store(src: Path, dst: Path) -> Path:
    """``src`` written aside and renamed into place so that a half copy never looks like a store. Its
    finished feature caches come along as hard links (never changed in place, only replaced): the
    grown store's cache then encodes only the new episodes' frames (feature_cache's prefix reuse)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.copying-", dir=dst.parent))
    try:
        unfinished = lambda d, names: [n for n in names if ".building-" in n or n.endswith(".lock")]  # noqa: E731
        shutil.copytree(src, tmp / "store", ignore=lambda d, names: ["features"] if Path(d) == src else [])
        if (src / "features").is_dir():
            shutil.copytree(
                src / "features", tmp / "store" / "features", ignore=unfinished, copy_function=_link_or_copy
            )
        os.rename(tmp / "store", dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst
