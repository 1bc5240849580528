"""Recording on the robot's computer: episodes of camera frames (native resolution), proprio,
applied actions and timestamps, checked step by step against the robot's description and written
one file per episode into a *spool* folder.

Why not the Zarr store itself: this package must run on a robot computer that has neither torch
nor s2robot, often a ROS machine on Python 3.10, where the store's zarr 3 cannot be installed; and
the store's layout and crash recovery have one owner, ``s2robot.data.replay_buffer``, which a
second writer here would have to copy and keep in step. A spool needs numpy only: each episode is
one ``.npz`` written to a temporary name, fsynced and renamed, so a crash or Ctrl-C loses only the
episode in progress. ``s2robot-record --import <spool> --store <store>`` (s2robot.recording.spool)
then commits the episodes into the store through the ReplayBuffer, atomically one by one.

Layout: ``<spool>/robot.json`` (the robot description as a dict) and ``episode_NNNNNN.npz``
holding ``data/<key>`` arrays (T, ...) and ``meta`` (JSON: success, seed, steps, source).

The description is the dict form of ``s2robot.robot_description.RobotDescription`` (``to_dict``):
``name, action_dim, action_low, action_high, action_kind, control_hz, cameras {name: [H, W]},
proprio_dim, proprio_names, units, gripper_index``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

SPOOL_DESCRIPTION = "robot.json"
_EPISODE = re.compile(r"^episode_(\d{6})\.npz$")
# What a policy depends on: two descriptions that differ here cannot share a store or a policy.
POLICY_FIELDS = ("action_dim", "action_low", "action_high", "cameras", "proprio_dim")


class RecordingError(ValueError):
    """A robot, a step or a spool that does not fit the description: one line, what to do."""


def description_dict(desc: Any) -> dict[str, Any]:
    """A description as its dict: a ``RobotDescription`` (anything with ``to_dict``) or a mapping."""
    d = desc.to_dict() if hasattr(desc, "to_dict") else desc
    if not isinstance(d, Mapping):
        raise RecordingError(f"a robot description must be a RobotDescription or a dict, got {type(desc).__name__}")
    d = json.loads(json.dumps(dict(d)))  # tuples -> lists, as a store or a spool would hold it
    missing = [k for k in ("name", "action_dim", "action_low", "action_high") if k not in d]
    if missing:
        raise RecordingError(f"robot description lacks {missing}")
    d.setdefault("cameras", {})
    d.setdefault("proprio_dim", 0)
    d.setdefault("gripper_index", None)
    d.setdefault("action_kind", "unspecified")
    if len(d["action_low"]) != d["action_dim"] or len(d["action_high"]) != d["action_dim"]:
        raise RecordingError(f"robot description {d['name']!r}: action bounds need {d['action_dim']} values each")
    return d


def robot_description(robot: Any) -> dict[str, Any] | None:
    """The adapter's ``description()`` as a dict, or None when it has none."""
    fn = getattr(robot, "description", None)
    return description_dict(fn()) if callable(fn) else None


def mismatch(mine: Mapping, theirs: Mapping) -> str | None:
    """The first field a policy depends on where two descriptions differ, as ``key: a vs b``."""
    for key in POLICY_FIELDS:
        a, b = mine.get(key), theirs.get(key)
        if key in ("action_low", "action_high"):
            same = len(a) == len(b) and np.allclose(a, b, rtol=0, atol=1e-6)
        elif key == "cameras":
            same = {c: list(hw) for c, hw in a.items()} == {c: list(hw) for c, hw in b.items()}
        else:
            same = a == b
        if not same:
            return f"{key}: {a!r} vs {b!r}"
    return None


def check_robot_for_policy(robot_desc: Mapping, metadata: Mapping) -> None:
    """Before the arm moves: the robot sends every camera the policy needs at its shape, and its
    action space is the policy's. Raises RecordingError (one line) otherwise."""
    cams = robot_desc.get("cameras", {})
    shapes = metadata.get("image_shapes") or {}
    for cam in metadata.get("camera_keys") or []:
        if cam not in cams:
            raise RecordingError(
                f"the policy {metadata.get('checkpoint')} was trained on camera {cam!r}, which robot "
                f"{robot_desc['name']!r} does not send (it has {sorted(cams)}); serve a checkpoint trained on "
                f"this robot's cameras"
            )
        want = list(shapes.get(cam) or metadata.get("image_shape") or [])[:2]
        if want and list(cams[cam]) != want:
            raise RecordingError(
                f"camera {cam!r}: the robot sends {list(cams[cam])} (H, W), the policy was trained on {want}; "
                f"record at the policy's resolution or retrain"
            )
    dim = metadata.get("action_dim")
    low, high = metadata.get("action_low"), metadata.get("action_high")
    if dim != robot_desc["action_dim"] or not (
        np.allclose(low, robot_desc["action_low"], atol=1e-6)
        and np.allclose(high, robot_desc["action_high"], atol=1e-6)
    ):
        raise RecordingError(
            f"the policy's actions ({dim} in [{low}, {high}]) are not robot {robot_desc['name']!r}'s "
            f"({robot_desc['action_dim']} in [{robot_desc['action_low']}, {robot_desc['action_high']}]); "
            f"serve a checkpoint trained on this robot"
        )


class EpisodeBuffer:
    """One episode in memory, every step checked before it is kept: each camera of the description
    as uint8 (H, W, 3) at its native size, ``proprio`` finite of ``proprio_dim``, the action
    finite and inside the declared bounds. A step that fails raises RecordingError and is not
    added; the caller drops the episode."""

    def __init__(self, description: Mapping[str, Any]):
        self.desc = description_dict(description)
        self.low = np.asarray(self.desc["action_low"], dtype=np.float64)
        self.high = np.asarray(self.desc["action_high"], dtype=np.float64)
        self.steps: dict[str, list[np.ndarray]] = {}
        self.t0 = time.monotonic()

    def __len__(self) -> int:
        return len(self.steps.get("action", ()))

    def check_action(self, action: Any) -> np.ndarray:
        name = self.desc["name"]
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.desc["action_dim"],) or not np.isfinite(a).all():
            raise RecordingError(f"{name}: action {a.tolist()} must be {self.desc['action_dim']} finite numbers")
        if (bad := np.flatnonzero((a < self.low - 1e-6) | (a > self.high + 1e-6))).size:
            i = int(bad[0])
            raise RecordingError(
                f"{name}: action[{i}]={a[i]:.4g} outside the declared bounds [{self.low[i]:g}, {self.high[i]:g}] "
                f"at step {len(self)}; the episode was discarded (fix the device mapping or the bounds)"
            )
        return a.astype(np.float32)

    def check_observation(self, obs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        name, out = self.desc["name"], {}
        for cam, (h, w) in self.desc["cameras"].items():
            if cam not in obs:
                raise RecordingError(f"{name}: the observation at step {len(self)} lacks camera {cam!r}")
            frame = np.asarray(obs[cam])
            if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
                raise RecordingError(
                    f"{name}: camera {cam!r} sent a {frame.dtype} frame of shape {list(frame.shape)} at step "
                    f"{len(self)}, its description says uint8 [{h}, {w}, 3]; the episode was discarded"
                )
            out[cam] = frame
        if dim := self.desc.get("proprio_dim", 0):
            p = np.asarray(obs.get("proprio", np.zeros(0)), dtype=np.float32)
            if p.shape != (dim,) or not np.isfinite(p).all():
                raise RecordingError(f"{name}: proprio at step {len(self)} is {p.tolist()}, expected {dim} finite")
            out["proprio"] = p
        return out

    def add(self, obs: Mapping[str, Any], action: Any, t: float | None = None, **extra: Any) -> None:
        """The observation a step started from, the action applied in it, when (seconds since the
        episode began) and per-step extras (e.g. ``held``)."""
        row = {**self.check_observation(obs), "action": self.check_action(action)}
        row["timestamp"] = np.float64(time.monotonic() - self.t0 if t is None else t)
        row.update({k: np.asarray(v) for k, v in extra.items()})
        if self.steps and set(row) != set(self.steps):
            raise RecordingError(f"step {len(self)} has keys {sorted(row)}, earlier steps {sorted(self.steps)}")
        for k, v in row.items():
            self.steps.setdefault(k, []).append(v)

    def add_step(self, obs: Mapping[str, Any], action: Any, held: bool) -> None:
        """`run_control_loop`'s ``on_step``: a rollout step, with whether the watchdog held the arm."""
        self.add(obs, action, held=held)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.steps.items()}


def _fsync_replace(tmp: str, path: str) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class SpoolWriter:
    """Committed episodes of one robot, one file each. A folder recorded by another robot (its
    description differs on what a policy depends on) is refused before anything is written."""

    def __init__(self, path: str | os.PathLike, description: Mapping[str, Any]):
        self.path = os.fspath(path)
        self.desc = description_dict(description)
        os.makedirs(self.path, exist_ok=True)
        meta = os.path.join(self.path, SPOOL_DESCRIPTION)
        if os.path.exists(meta):
            with open(meta) as f:
                theirs = json.load(f)
            if why := mismatch(self.desc, theirs):
                raise RecordingError(
                    f"{self.path} holds episodes of robot {theirs.get('name')!r}, which disagrees with "
                    f"{self.desc['name']!r} on {why}; record into a new folder"
                )
        else:
            fd, tmp = tempfile.mkstemp(prefix=".robot.", dir=self.path)
            with os.fdopen(fd, "w") as f:
                json.dump(self.desc, f, indent=1)
            _fsync_replace(tmp, meta)

    def commit(self, buffer: EpisodeBuffer, success: bool | None, seed: int = -1, **meta: Any) -> str | None:
        """Write the episode (nothing when it has no step); -> its file."""
        if not len(buffer):
            return None
        taken = [int(m.group(1)) for n in os.listdir(self.path) if (m := _EPISODE.match(n))]
        path = os.path.join(self.path, f"episode_{max(taken, default=-1) + 1:06d}.npz")
        info = {"success": success, "seed": int(seed), "steps": len(buffer), **meta}
        arrays = {f"data/{k}": v for k, v in buffer.arrays().items()}
        fd, tmp = tempfile.mkstemp(prefix=".episode.", suffix=".npz.tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.array(json.dumps(info)), **arrays)  # uncompressed: fast between episodes
            _fsync_replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path


def read_spool(path: str | os.PathLike) -> tuple[dict, Iterator[tuple[str, dict[str, np.ndarray], dict]]]:
    """-> (description, iterator of (file name, arrays, meta)) in episode order; files still being
    written (temporary names) are not episodes."""
    path = os.fspath(path)
    meta = os.path.join(path, SPOOL_DESCRIPTION)
    if not os.path.isfile(meta):
        raise RecordingError(f"{path}: not a recording folder (no {SPOOL_DESCRIPTION}); pass what --record wrote")
    with open(meta) as f:
        desc = description_dict(json.load(f))
    names = sorted(n for n in os.listdir(path) if _EPISODE.match(n))

    def episodes():
        for name in names:
            with np.load(os.path.join(path, name), allow_pickle=False) as z:
                arrays = {k.removeprefix("data/"): z[k] for k in z.files if k.startswith("data/")}
                info = json.loads(str(z["meta"]))
            yield name, arrays, info

    return desc, episodes()
