"""A dataset of another format into our store, one atomic episode at a time.

A reader (lerobot.py, robomimic.py) says what the dataset holds (``Source``) and yields its
episodes; this module makes the robot description, creates or resumes the store, and checks each
episode against the description (resolution, action bounds, lengths, finite values) before
``add_episode`` commits it. A bad episode raises one FormatError line; it was never written, and the
episodes committed before it stay. Running the same import again resumes after them."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np

from s2robot.data.formats import FormatError
from s2robot.data.formats.mapping import KeyMapping, bounds
from s2robot.data.formats.source import Source, SourceEpisode
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.robot_description import RobotDescription, RobotDescriptionError, from_store_attrs


def describe_robot(source: Source, mapping: KeyMapping) -> RobotDescription:
    """Action bounds from the mapping (or the data's min/max), cameras at the dataset's native
    resolution, control rate from its fps; the dataset's own description when it carries one."""
    if source.robot is not None and not mapping.robot and mapping.action_bounds == "data":
        return source.robot
    dim = source.key_dim(mapping.action)
    given = bounds(mapping.action_bounds, dim)
    if given is None:
        low, high = (np.asarray(v, dtype=np.float64) for v in source.action_range(mapping.action))
        flat = high - low < 1e-6  # a constant dimension still needs low < high
        low, high = np.where(flat, low - 1e-3, low), np.where(flat, high + 1e-3, high)
        given = (low.tolist(), high.tolist())
    proprio_names = [f"{k}[{i}]" for k in mapping.proprio for i in range(source.key_dim(k))]
    fields = {
        "name": source.robot_name,
        "action_dim": dim,
        "action_low": tuple(given[0]),
        "action_high": tuple(given[1]),
        "control_hz": float(source.fps),
        "cameras": {dst: source.camera_shape(src) for src, dst in mapping.cameras.items()},
        "proprio_dim": len(proprio_names),
        "proprio_names": tuple(proprio_names),
        **mapping.robot,
    }
    fields["proprio_names"] = tuple(fields["proprio_names"])
    try:
        return RobotDescription(**fields)
    except RobotDescriptionError as e:
        raise FormatError(f"{source.path}: {e}") from e


def source_record(source: Source, mapping: KeyMapping) -> dict[str, Any]:
    return {"format": source.format, "path": os.path.abspath(source.path), "mapping": mapping.to_dict()}


def _open_store(out: str, robot: RobotDescription, attrs: dict[str, Any]) -> tuple[ReplayBuffer, bool]:
    if not os.path.exists(out):
        return ReplayBuffer.create(out, attrs=attrs), True
    buffer = ReplayBuffer.open(out, mode="a")
    try:
        theirs = from_store_attrs(buffer.attrs)
    except RobotDescriptionError as e:
        raise FormatError(f"{out}: exists but {e}; choose another output path") from e
    try:
        robot.check_matches(theirs, what=out)
    except RobotDescriptionError as e:
        raise FormatError(f"{out}: exists with another robot description: {e}") from e
    if buffer.attrs.get("source") != attrs["source"]:
        raise FormatError(
            f"{out}: exists, imported from {buffer.attrs.get('source', {}).get('path', 'elsewhere')} or with "
            f"another mapping; choose another output path (or delete it) to import {attrs['source']['path']}"
        )
    if buffer.attrs.get("env") != attrs.get("env"):  # --sim given, dropped or changed since the first run
        had = "a simulator env" if "env" in buffer.attrs else "no simulator env"
        now = "another" if "env" in attrs else "none"
        raise FormatError(
            f"{out}: exists with {had}, this import records {now}; run it with the --sim of the first import "
            f"or choose another output path"
        )
    return buffer, False


def _episode(ep: SourceEpisode, mapping: KeyMapping, robot: RobotDescription) -> dict[str, np.ndarray]:
    lengths = {k: len(v) for k, v in ep.arrays.items()}
    if len(set(lengths.values())) != 1 or min(lengths.values()) < 1:
        raise FormatError(f"{ep.name}: keys of different lengths {lengths}")
    steps = next(iter(lengths.values()))
    out: dict[str, np.ndarray] = {}
    for src, cam in mapping.cameras.items():
        frames, want = ep.arrays[src], (*robot.cameras[cam], 3)
        if frames.dtype != np.uint8 or frames.shape[1:] != want:
            raise FormatError(
                f"{ep.name}: camera {cam!r} ({src}) has {frames.dtype} frames of {frames.shape[1:]}, the camera's "
                f"native resolution is uint8 {want}; resize the dataset's frames or import it into another store"
            )
        out[cam] = frames
    if mapping.proprio:
        out["proprio"] = np.concatenate([ep.arrays[k].reshape(steps, -1) for k in mapping.proprio], axis=1)
        out["proprio"] = out["proprio"].astype(np.float32)
    action = ep.arrays[mapping.action].reshape(steps, -1).astype(np.float32)
    for key in ("proprio", "action"):
        values = action if key == "action" else out.get(key)
        if values is not None and not np.isfinite(values).all():
            step = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
            raise FormatError(f"{ep.name}: {key} is not finite at step {step}")
    bad = np.argwhere((action < robot.low - 1e-6) | (action > robot.high + 1e-6))
    if bad.size:
        t, i = (int(v) for v in bad[0])
        raise FormatError(
            f"{ep.name}: action[{i}]={action[t, i]:.4g} at step {t} is outside the declared bounds "
            f"[{robot.action_low[i]:g}, {robot.action_high[i]:g}]; give other bounds (--action-bounds data takes "
            f"them from the data) or drop the episode"
        )
    out["action"] = action
    out.update({dst: ep.arrays[src] for src, dst in mapping.extra.items()})
    return out


def import_dataset(
    source: Source,
    out: str | os.PathLike,
    mapping: KeyMapping,
    max_episodes: int | None = None,
    sim: str | None = None,
) -> dict[str, Any]:
    """Import ``source`` into the store at ``out`` (created, or resumed when it holds an earlier
    import of the same dataset with the same mapping); returns a summary. ``sim`` ("cube_pick"):
    record the simulator env the dataset was collected in (``sim.py``), so training evaluates in it."""
    out = os.fspath(out)
    mapping = source.resolve(mapping)
    robot = describe_robot(source, mapping)
    attrs = {**source.attrs, "robot": robot.to_dict(), "source": source_record(source, mapping)}
    if sim is not None:
        from envs.seeds import EVAL_SEED_START
        from s2robot.data.formats.sim import sim_env

        attrs.update(env=sim_env(sim, source, mapping, robot), eval_seed_start=EVAL_SEED_START)
    buffer, created = _open_store(out, robot, attrs)
    before = buffer.n_episodes
    keys = [*mapping.cameras, *mapping.proprio, mapping.action, *mapping.extra]
    episodes = source.episodes(keys, start=before)
    try:
        while max_episodes is None or buffer.n_episodes < max_episodes:
            try:
                ep = next(episodes, None)
                if ep is None:
                    break
                episode = _episode(ep, mapping, robot)
            except FormatError as e:
                kept = f"{buffer.n_episodes} episodes committed before it stay in {out}"
                raise FormatError(f"{source.path}: {e}; nothing of this episode was written, {kept}") from e
            buffer.add_episode(episode, seed=ep.seed, success=ep.success, episode_round=ep.round)
    except BaseException:
        if created and buffer.n_episodes == 0:
            shutil.rmtree(out, ignore_errors=True)  # a store we made that holds nothing is no result
        raise
    finally:
        episodes.close()
    return {
        "store": out,
        "format": source.format,
        "episodes_before": before,
        "episodes_added": buffer.n_episodes - before,
        "episodes": buffer.n_episodes,
        "steps": buffer.n_steps,
        "robot": robot.name,
        "env": attrs.get("env"),
    }


FORMATS = ("lerobot", "robomimic")


def open_source(path: str | os.PathLike, format: str = "auto", filter_key: str | None = None) -> Source:
    """The reader of the dataset at ``path``: ``format`` "auto" tells a LeRobot folder (meta/info.json)
    from a robomimic .hdf5 file."""
    from s2robot.data.formats.lerobot import LeRobotSource, is_lerobot
    from s2robot.data.formats.robomimic import RobomimicSource, is_robomimic

    path = os.fspath(path)
    if format == "auto":
        if is_lerobot(path):
            format = "lerobot"
        elif is_robomimic(path):
            format = "robomimic"
        else:
            raise FormatError(
                f"{path}: neither a LeRobot dataset folder (with meta/info.json) nor a robomimic .hdf5 file; "
                f"fix the path or name the format with --format {{{','.join(FORMATS)}}}"
            )
    if format == "lerobot":
        return LeRobotSource(path)
    if format == "robomimic":
        return RobomimicSource(path, filter_key=filter_key)
    raise FormatError(f"--format {format}: unknown; choose one of auto, {', '.join(FORMATS)}")
