"""Recording demonstrations through a `Robot` adapter: each tick observe, take the device's action,
check both against the robot's description, apply; at the end of an episode keep it (one atomic
ReplayBuffer commit), discard it or record it again.

A step that does not fit the description (a frame of another resolution, an action outside the
bounds) ends the session with one line; the episode in progress is dropped, the kept ones stay.
The action is checked before it reaches the arm."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.errors import UserError
from s2robot.recording.base import Device
from s2robot.robot_description import RobotDescription, from_store_attrs
from s2robot_client.recording import EpisodeBuffer, RecordingError

log = logging.getLogger(__name__)


class RecordError(UserError):
    """Recording stopped on data that does not fit the robot's description."""


def versions() -> dict[str, str]:
    out = {}
    for name in ("s2robot", "numpy", "zarr"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def open_store(path: str | os.PathLike, description: RobotDescription, attrs: Mapping[str, Any]) -> ReplayBuffer:
    """The store to record into: a new one carrying ``description`` (and ``attrs``), or an existing
    one whose robot is this one (else one line: record into a new store)."""
    if not os.path.exists(path):
        return ReplayBuffer.create(path, attrs={"robot": description.to_dict(), **attrs})
    store = ReplayBuffer.open(path, mode="a")
    description.check_matches(from_store_attrs(store.attrs), what=f"the store {os.fspath(path)}")
    return store


def record_episodes(
    robot: Any,
    device: Device,
    store: ReplayBuffer,
    description: RobotDescription,
    n_episodes: int,
    max_steps: int | None = None,
    rate_hz: float | None = None,
    seed_start: int = 0,
) -> dict[str, int]:
    """Record until ``n_episodes`` are kept or the device quits; -> counts. ``rate_hz`` None: as
    fast as the robot steps (simulation with a scripted device). ``robot.stop()`` and
    ``device.close()`` always run."""
    counts = {"kept": 0, "discarded": 0, "rerecorded": 0, "steps": 0}
    seed = max(seed_start, int(store.episode_seeds.max()) + 1 if store.n_episodes else seed_start)
    period = 1.0 / rate_hz if rate_hz else 0.0
    try:
        while counts["kept"] < n_episodes:
            if callable(getattr(robot, "reset", None)):
                robot.reset(seed)
            device.begin_episode(seed)
            episode, cmd, marked = EpisodeBuffer(description.to_dict()), None, None
            next_tick = time.monotonic()
            while not getattr(robot, "done", False) and (max_steps is None or len(episode) < max_steps):
                obs = robot.get_observation()
                cmd = device.poll()
                marked = cmd.success if cmd.success is not None else marked
                if cmd.event:
                    break
                if cmd.action is not None:
                    try:
                        episode.add(obs, cmd.action)  # checked here, before the arm moves
                    except RecordingError as e:
                        raise RecordError(
                            f"{e}; {counts['kept']} episode(s) kept before it stay in {store.path}"
                        ) from None
                    robot.apply_action(episode.steps["action"][-1])
                if period:
                    next_tick += period
                    time.sleep(max(0.0, next_tick - time.monotonic()))
            reported = getattr(robot, "success", None)
            if cmd is None or cmd.event in (None, "end"):
                cmd = device.decide(marked if marked is not None else reported)
            success = next((s for s in (cmd.success, marked, reported) if s is not None), False)
            if cmd.event == "keep" and len(episode):
                store.add_episode(episode.arrays(), seed=seed, success=bool(success))
                counts["kept"] += 1
                counts["steps"] += len(episode)
                log.info("kept episode %d (%d steps, success %s)", store.n_episodes - 1, len(episode), success)
            elif cmd.event == "rerecord":
                counts["rerecorded"] += 1
                log.info("recording that episode again")
                continue  # the same seed: the simulator puts the cube where it was
            elif cmd.event != "quit":
                counts["discarded"] += 1
                log.info("discarded an episode of %d steps", len(episode))
            if cmd.event == "quit":
                break
            seed += 1
    finally:
        try:
            robot.stop()
        finally:
            device.close()
    return counts
