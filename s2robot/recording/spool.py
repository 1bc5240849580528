"""Recording folders (``s2robot-robot --record``, written on the robot's computer without zarr;
see s2robot_client.recording) into a demonstration store, one atomic ReplayBuffer commit per
episode. Importing the same folder again adds only the episodes not imported yet, so a folder
still being recorded into can be imported as it grows."""

from __future__ import annotations

import logging
import os

import numpy as np

from s2robot.recording.session import RecordError, open_store, versions
from s2robot.robot_description import RobotDescription
from s2robot_client.recording import RecordingError, read_spool

log = logging.getLogger(__name__)


def import_spool(spool: str | os.PathLike, store_path: str | os.PathLike) -> dict[str, int]:
    """-> counts ``imported``, ``already``. The folder's robot must be the store's."""
    spool = os.path.abspath(spool)
    try:
        desc_dict, episodes = read_spool(spool)
    except RecordingError as e:
        raise RecordError(str(e)) from None
    description = RobotDescription.from_dict(desc_dict)
    attrs = {"recording": {"source": "s2robot-robot --record"}, "versions": versions()}
    store = open_store(store_path, description, attrs)
    done = dict(store.attrs.get("imported", {}))
    seen = set(done.get(spool, []))
    counts = {"imported": 0, "already": 0}
    for name, arrays, meta in episodes:
        if name in seen:
            counts["already"] += 1
            continue
        if store.keys and set(store.keys) != set(arrays):
            if not set(store.keys) <= set(arrays):
                raise RecordError(
                    f"{spool}/{name} has keys {sorted(arrays)}, the store {store.path} has {store.keys}; "
                    f"import into a new store"
                )
            arrays = {k: arrays[k] for k in store.keys}  # e.g. a rollout's "held" into a demo store
        steps = {k: v for k, v in arrays.items() if v.ndim}
        store.add_episode(
            steps,
            seed=int(meta.get("seed", -1)),
            success=bool(meta.get("success") or False),
        )
        # Marked after the commit: a crash in between imports that one episode twice, never none.
        seen.add(name)
        done[spool] = sorted(seen)
        store.update_attrs(imported=done)
        counts["imported"] += 1
        log.info("imported %s (%d steps)", name, len(next(iter(steps.values()), np.zeros(0))))
    return counts
