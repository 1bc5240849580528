"""Roll a trained checkpoint out on fixed evaluation seeds: envs in worker processes, the policy
(frozen encoder batched across envs) in this process. Writes eval.json, episode videos and a
contact sheet; returns the results.

    from s2robot.rollout.evaluate import evaluate
    result = evaluate("runs/my_run", "runs/my_run/eval", n_episodes=50)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.seeds import EVAL_SEED_START
from s2robot.errors import ConfigError
from s2robot.fileio import atomic_write
from s2robot.observations import policy_obs
from s2robot.rollout.env_pool import EnvPool, cpu_cores
from s2robot.rollout.noise import PrivilegedNoise
from s2robot.rollout.records import Episode, Recorder, build_result, report_lines  # noqa: F401  (report_lines: for the commands)

DEFAULT_CAMERA = "agentview"


def default_workers(n_episodes: int, n_workers: int | None = None) -> int:
    """One env process per core unless told otherwise, never more than there are episodes."""
    if n_workers is None:
        n_workers = cpu_cores()
    if n_workers < 1:
        raise ConfigError(f"n_workers={n_workers} must be at least 1 (or null for one per CPU core)")
    return max(1, min(int(n_workers), int(n_episodes)))


def eval_env_config(
    ckpt: dict,
    overrides: Mapping[str, Any] | None,
    policy_cameras: str | Sequence[str] | None,
    want_video: bool,
    video_camera: str | None = None,
) -> tuple[dict, str | None]:
    """The env the policy was trained in (``ckpt["env"]``) plus ``overrides``; -> (config, video camera).

    The env renders every camera the policy sees, plus the video camera when videos are wanted, and
    nothing else (rendering is most of a step; the physics is the same). The video camera is
    ``video_camera``, else the policy's first camera, or for vision-free baselines the (first)
    camera of its demos. Overrides that list ``cameras`` must keep every policy camera."""
    from omegaconf import DictConfig, OmegaConf

    from envs.cube_pick import env_keys

    if isinstance(overrides, DictConfig):
        overrides = OmegaConf.to_container(overrides, resolve=True)
    cfg = {**dict(ckpt["env"]), **dict(overrides or {})}
    unknown = sorted(set(cfg) - env_keys())
    if unknown:
        raise ConfigError(f"unknown env overrides {unknown}; the env takes {sorted(env_keys() - {'id'})}")
    needed = [policy_cameras] if isinstance(policy_cameras, str) else list(policy_cameras or [])
    listed = list(cfg.get("cameras", [DEFAULT_CAMERA]))
    if "cameras" in (overrides or {}) and (dropped := [c for c in needed if c not in listed]):
        raise ConfigError(
            f"the policy looks through cameras {needed} but the env overrides leave only {listed}; "
            f"keep {dropped} in env cameras"
        )
    data = (ckpt.get("config") or {}).get("data", {})
    camera = (
        video_camera
        or (needed or data.get("cameras") or [data.get("camera")])[0]
        or (listed[0] if listed else DEFAULT_CAMERA)
    )
    cameras = needed + ([camera] if want_video and camera not in needed else [])
    cfg["cameras"] = cameras
    return cfg, (camera if camera in cameras else None)


def evaluate(
    checkpoint: str | Path,
    out_dir: str | Path,
    n_episodes: int = 50,
    n_workers: int | None = None,
    seed_start: int = EVAL_SEED_START,
    n_videos: int = 4,
    device: str = "cpu",
    env_overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    encoder_weights: str | None = None,
    cube_pos_noise_m: float = 0.0,
    cube_yaw_noise_deg: float = 0.0,
    noise_mode: str = "per_episode",
    cube_pos_noise_axes: str = "xyz",
    dtype: str = "fp32",
    compile: bool | None = False,
) -> dict:
    """Run ``n_episodes`` episodes with seeds ``seed_start + i`` and write ``out_dir/eval.json``,
    ``out_dir/videos/*.mp4`` (the first ``n_videos`` episodes) and ``out_dir/contact_sheet.png``.

    Same checkpoint, seeds and ``n_workers`` -> same records. ``progress``: a tqdm bar over
    episodes. Returns what eval.json holds; ``report_lines(result)`` is what a command prints.

    ``cube_pos_noise_m`` (on ``cube_pos_noise_axes`` xyz or xy) / ``cube_yaw_noise_deg``: perception
    error on a privileged policy's cube pose, drawn ``noise_mode`` = per_episode (a fixed offset) or
    per_step (s2robot/rollout/noise.py). ``dtype`` / ``compile``: the encoders' inference path
    (`s2robot.encoders.fast`; fp32 eager by default, the numerics the policy was trained on)."""
    from tqdm import tqdm

    from s2robot.rollout.controller import PolicyController

    if n_episodes < 1:
        raise ConfigError(f"n_episodes={n_episodes} must be at least 1")
    if seed_start < EVAL_SEED_START:
        raise ConfigError(
            f"seed_start={seed_start} reaches into the demonstration seeds [0, {EVAL_SEED_START}); "
            f"evaluation seeds must be >= {EVAL_SEED_START} so no episode repeats a demo"
        )
    if n_videos < 0:
        raise ConfigError(f"n_videos={n_videos} must be >= 0")
    n_videos = min(n_videos, n_episodes)
    t_start = time.perf_counter()
    noise = PrivilegedNoise(cube_pos_noise_m, cube_yaw_noise_deg, noise_mode, cube_pos_noise_axes)
    controller = PolicyController.from_checkpoint(
        checkpoint, device=device, encoder_weights=encoder_weights, dtype=dtype, compile=compile
    )
    noise.check_inputs(controller.inputs)
    env_cfg, camera = eval_env_config(controller.ckpt, env_overrides, controller.cameras, n_videos > 0)
    n_workers = default_workers(n_episodes, n_workers)
    seeds = [seed_start + i for i in range(n_episodes)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=n_episodes, desc="eval", unit="ep", disable=not progress)
    rec = Recorder(seeds, n_videos, camera, out_dir, int(env_cfg.get("control_freq", 20)), bar, noise)
    try:
        t_pool = time.perf_counter()
        with EnvPool(n_workers, env_cfg) as pool:
            t_rollout = time.perf_counter()
            _rollout(pool, controller, rec, n_workers)
            rollout_s = time.perf_counter() - t_rollout
        startup_s = t_rollout - t_pool
    finally:
        bar.close()
    result = build_result(
        controller,
        rec,
        env_cfg,
        camera,
        env_overrides,
        n_workers,
        seed_start,
        out_dir,
        timing_s={"total_s": time.perf_counter() - t_start, "worker_startup_s": startup_s, "rollout_s": rollout_s},
    )
    with atomic_write(out_dir / "eval.json", "w") as f:
        f.write(json.dumps(result, indent=2))
    return result


def _rollout(pool: EnvPool, controller, rec: Recorder, n_workers: int) -> None:
    """All episodes, each worker starting the next seed as soon as its episode ends."""
    seeds, keys, timing = rec.seeds, controller.obs_keys, rec.timing
    ids = list(range(n_workers))
    first = pool.reset(ids, seeds[:n_workers])
    timing["reset_ms"] += [dt * 1e3 for _, _, dt in first]
    episodes: list[Episode | None] = [rec.start(i, i, obs, info) for i, (obs, info, _) in enumerate(first)]
    last = [_seen(ep, policy_obs(obs, info, keys)) for ep, (obs, info, _) in zip(episodes, first)]
    next_index = n_workers
    controller.reset(n_workers)
    while any(ep is not None for ep in episodes):
        live = [i for i, ep in enumerate(episodes) if ep is not None]
        batch = {k: np.stack([last[i][k] for i in live]) for k in last[0]}
        actions = controller.act(batch, env_ids=live)
        for k in ("encode_ms", "head_ms"):
            timing[k].append(controller.last_timing[k])
        timing["act_ms"].append(controller.last_timing["total_ms"])
        t0 = time.perf_counter()
        results = pool.step(live, actions)
        timing["env_wait_ms"].append((time.perf_counter() - t0) * 1e3)
        done = []
        for i, action, (obs, terminated, truncated, info, dt) in zip(live, actions, results):
            timing["env_step_ms"].append(dt * 1e3)
            rec.step(episodes[i], obs, info, action)
            last[i] = _seen(episodes[i], policy_obs(obs, info, keys))
            if terminated or truncated:
                rec.finish(episodes[i], info)
                done.append(i)
        restart = done[: max(0, len(seeds) - next_index)]
        for i in done[len(restart) :]:
            episodes[i] = None
        if restart:
            indices = list(range(next_index, next_index + len(restart)))
            next_index += len(restart)
            for i, index, (obs, info, dt) in zip(restart, indices, pool.reset(restart, [seeds[j] for j in indices])):
                timing["reset_ms"].append(dt * 1e3)
                episodes[i] = rec.start(i, index, obs, info)
                last[i] = _seen(episodes[i], policy_obs(obs, info, keys))
                controller.reset_env(i)


def _seen(ep: Episode, obs: dict) -> dict:
    """What the policy sees: the observation, with the episode's perception error if it has one."""
    return ep.noise.apply(obs) if ep.noise else obs
