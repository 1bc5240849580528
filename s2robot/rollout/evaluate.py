"""Roll a trained checkpoint out on fixed evaluation seeds: envs in worker processes, the policy
(frozen encoder batched across envs) in this process. Writes eval.json, episode videos and a
contact sheet; returns the results.

    from s2robot.rollout.evaluate import evaluate
    result = evaluate("runs/my_run", "runs/my_run/eval", n_episodes=50)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.seeds import EVAL_SEED_START
from s2robot.errors import ConfigError
from s2robot.fileio import atomic_write
from s2robot.observations import policy_obs
from s2robot.rollout import video
from s2robot.rollout.env_pool import EnvPool, cpu_cores
from s2robot.stats import wilson_interval

CONTACT_FRAMES = 5  # frames per episode on the contact sheet
DEFAULT_CAMERA = "agentview"


def default_workers(n_episodes: int, n_workers: int | None = None) -> int:
    """One env process per core unless told otherwise, never more than there are episodes."""
    if n_workers is None:
        n_workers = cpu_cores()
    if n_workers < 1:
        raise ConfigError(f"n_workers={n_workers} must be at least 1 (or null for one per CPU core)")
    return max(1, min(int(n_workers), int(n_episodes)))


def eval_env_config(ckpt: dict, overrides: Mapping[str, Any] | None, policy_camera: str | None,
                    want_video: bool) -> tuple[dict, str | None]:
    """The env the policy was trained in (``ckpt["env"]``) plus ``overrides``; -> (config, video camera).

    The camera for videos is the policy's, or for vision-free baselines the camera of its demos.
    It is added to the env when videos are wanted; a baseline without videos renders nothing."""
    from omegaconf import DictConfig, OmegaConf

    from envs.cube_pick import env_keys

    if isinstance(overrides, DictConfig):
        overrides = OmegaConf.to_container(overrides, resolve=True)
    cfg = {**dict(ckpt["env"]), **dict(overrides or {})}
    unknown = sorted(set(cfg) - env_keys())
    if unknown:
        raise ConfigError(f"unknown env overrides {unknown}; the env takes {sorted(env_keys() - {'id'})}")
    cameras = list(cfg.get("cameras", [DEFAULT_CAMERA]))
    camera = policy_camera or (ckpt.get("config") or {}).get("data", {}).get("camera") or \
        (cameras[0] if cameras else DEFAULT_CAMERA)
    if policy_camera and policy_camera not in cameras:
        raise ConfigError(f"the policy looks through camera {policy_camera!r} but the env overrides leave only "
                          f"{cameras}; keep {policy_camera!r} in env cameras")
    if want_video and camera not in cameras:
        cameras.append(camera)
    if not policy_camera and not want_video:
        cameras = []  # nothing looks at images: skip rendering, the physics is the same
    cfg["cameras"] = cameras
    return cfg, (camera if cameras else None)


@dataclass
class _Episode:
    index: int
    seed: int
    worker: int
    steps: int = 0
    first_success: int | None = None
    frames: list = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)


def _record(ep: _Episode, info: Mapping[str, Any]) -> dict:
    return {"episode": ep.index, "seed": ep.seed, "success": ep.first_success is not None, "length": ep.steps,
            "steps_to_success": ep.first_success, "final_cube_height": round(float(info["cube_height"]), 5),
            "worker": ep.worker, "seconds": round(time.perf_counter() - ep.t0, 3)}


def format_summary(result: dict) -> str:
    lo, hi = result["success_ci95"]
    steps = result["mean_steps_to_success"]
    steps = f"{steps:.1f}" if steps is not None else "n/a"
    return (f"success {result['successes']}/{result['n_episodes']} = {100 * result['success_rate']:.1f}% "
            f"[95% CI {100 * lo:.1f}-{100 * hi:.1f}] mean steps to success {steps} | eval.json: {result['eval_json']}")


def evaluate(checkpoint: str | Path, out_dir: str | Path, n_episodes: int = 50, n_workers: int | None = None,
             seed_start: int = EVAL_SEED_START, n_videos: int = 4, device: str = "cpu",
             env_overrides: Mapping[str, Any] | None = None, progress: bool = True,
             encoder_weights: str | None = None) -> dict:
    """Run ``n_episodes`` episodes with seeds ``seed_start + i`` and write ``out_dir/eval.json``,
    ``out_dir/videos/*.mp4`` (the first ``n_videos`` episodes) and ``out_dir/contact_sheet.png``.

    Same checkpoint, seeds and ``n_workers`` -> same records. ``progress``: a tqdm bar over
    episodes. Returns what eval.json holds; ``report_lines(result)`` is what a command prints."""
    from tqdm import tqdm

    from s2robot.rollout.controller import PolicyController

    if n_episodes < 1:
        raise ConfigError(f"n_episodes={n_episodes} must be at least 1")
    if seed_start < EVAL_SEED_START:
        raise ConfigError(f"seed_start={seed_start} reaches into the demonstration seeds [0, {EVAL_SEED_START}); "
                          f"evaluation seeds must be >= {EVAL_SEED_START} so no episode repeats a demo")
    if n_videos < 0:
        raise ConfigError(f"n_videos={n_videos} must be >= 0")
    n_videos = min(n_videos, n_episodes)
    t_start = time.perf_counter()
    runner = PolicyController.from_checkpoint(checkpoint, device=device, encoder_weights=encoder_weights)
    env_cfg, camera = eval_env_config(runner.ckpt, env_overrides, runner.camera, n_videos > 0)
    n_workers = default_workers(n_episodes, n_workers)
    seeds = [seed_start + i for i in range(n_episodes)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    records: list[dict] = []
    sheet_rows: list[dict] = []
    video_paths: list[str] = []
    timing = {"act_ms": [], "encode_ms": [], "head_ms": [], "env_step_ms": [], "env_wait_ms": [], "reset_ms": [],
              "video_s": 0.0}
    bar = tqdm(total=n_episodes, desc="eval", unit="ep", disable=not progress)

    def start(i: int, index: int, obs: dict, info: dict) -> _Episode:
        ep = _Episode(index, seeds[index], i)
        if index < n_videos:
            ep.frames.append(obs[camera])
        return ep

    def finish(ep: _Episode, info: dict) -> None:
        records.append(_record(ep, info))
        if ep.frames:
            t0 = time.perf_counter()
            success = records[-1]["success"]
            name = f"episode{ep.index:03d}_seed{ep.seed}_{'success' if success else 'fail'}.mp4"
            video_paths.append(str(video.write_episode_video(out_dir / "videos" / name, ep.frames, ep.seed, success,
                                                             fps=int(env_cfg.get("control_freq", 20)))))
            steps = video.pick_frames(len(ep.frames), CONTACT_FRAMES)
            sheet_rows.append({"seed": ep.seed, "success": success, "steps": steps,
                               "frames": [ep.frames[t] for t in steps]})
            ep.frames = []
            timing["video_s"] += time.perf_counter() - t0
        bar.update(1)
        bar.set_postfix(success=f"{sum(r['success'] for r in records)}/{len(records)}")

    try:
        t_pool = time.perf_counter()
        with EnvPool(n_workers, env_cfg) as pool:
            t_rollout = time.perf_counter()
            startup_s = t_rollout - t_pool
            ids = list(range(n_workers))
            first = pool.reset(ids, seeds[:n_workers])
            timing["reset_ms"] += [dt * 1e3 for _, _, dt in first]
            episodes: list[_Episode | None] = [start(i, i, obs, info) for i, (obs, info, _) in enumerate(first)]
            last = [policy_obs(obs, info, runner.obs_keys) for obs, info, _ in first]
            next_index = n_workers
            runner.reset(n_workers)
            while any(ep is not None for ep in episodes):
                live = [i for i, ep in enumerate(episodes) if ep is not None]
                batch = {k: np.stack([last[i][k] for i in live]) for k in last[0]}
                actions = runner.act(batch, env_ids=live)
                for k in ("encode_ms", "head_ms"):
                    timing[k].append(runner.last_timing[k])
                timing["act_ms"].append(runner.last_timing["total_ms"])
                t0 = time.perf_counter()
                results = pool.step(live, actions)
                timing["env_wait_ms"].append((time.perf_counter() - t0) * 1e3)
                done = []
                for i, (obs, terminated, truncated, info, dt) in zip(live, results):
                    ep = episodes[i]
                    timing["env_step_ms"].append(dt * 1e3)
                    ep.steps += 1
                    if info["is_success"] and ep.first_success is None:
                        ep.first_success = ep.steps
                    if camera and ep.frames:
                        ep.frames.append(obs[camera])
                    last[i] = policy_obs(obs, info, runner.obs_keys)
                    if terminated or truncated:
                        finish(ep, info)
                        done.append(i)
                restart = done[: max(0, n_episodes - next_index)]
                for i in done[len(restart):]:
                    episodes[i] = None
                if restart:
                    indices = list(range(next_index, next_index + len(restart)))
                    next_index += len(restart)
                    for i, index, (obs, info, dt) in zip(restart, indices,
                                                         pool.reset(restart, [seeds[j] for j in indices])):
                        timing["reset_ms"].append(dt * 1e3)
                        episodes[i] = start(i, index, obs, info)
                        last[i] = policy_obs(obs, info, runner.obs_keys)
                        runner.reset_env(i)
            rollout_s = time.perf_counter() - t_rollout
    finally:
        bar.close()

    records.sort(key=lambda r: r["episode"])
    sheet_path = None
    if sheet_rows:
        sheet_rows.sort(key=lambda r: r["seed"])
        sheet_path = str(video.contact_sheet(out_dir / "contact_sheet.png", sheet_rows))
    video_paths.sort()
    successes = sum(r["success"] for r in records)
    to_success = [r["steps_to_success"] for r in records if r["success"]]
    enc = runner.ckpt.get("encoder") or {}
    total_steps = sum(r["length"] for r in records)
    mean = lambda xs: round(float(np.mean(xs)), 3) if xs else None  # noqa: E731
    result = {
        "checkpoint": runner.ckpt["path"],
        "checkpoint_hash": runner.checkpoint_hash,
        "encoder": enc.get("encoder"),
        "encoder_weights": enc.get("weights"),
        "scales": enc.get("scales"),
        "inputs": list(runner.inputs),
        "policy": runner.ckpt["policy"]["name"],
        "camera": runner.camera,
        "video_camera": camera,
        "device": str(runner.device),
        "env": env_cfg,
        "env_overrides": dict(env_overrides or {}),
        "n_episodes": n_episodes,
        "n_workers": n_workers,
        "seed_start": seed_start,
        "seeds": [seeds[0], seeds[-1]],
        "successes": successes,
        "success_rate": successes / n_episodes,
        "success_ci95": list(wilson_interval(successes, n_episodes)),
        "mean_steps_to_success": float(np.mean(to_success)) if to_success else None,
        "mean_length": float(np.mean([r["length"] for r in records])),
        "timing": {
            "total_s": round(time.perf_counter() - t_start, 3),
            "worker_startup_s": round(startup_s, 3),
            "rollout_s": round(rollout_s, 3),
            "episodes_per_min": round(60 * n_episodes / rollout_s, 3),
            "env_steps": total_steps,
            "env_steps_per_s": round(total_steps / rollout_s, 3),
            "control_steps": len(timing["act_ms"]),
            # per control step, main process: the policy (encoder + head) on the whole batch ...
            "act_ms": mean(timing["act_ms"]),
            "encode_ms": mean(timing["encode_ms"]),
            "head_ms": mean(timing["head_ms"]),
            # ... and the wait for all workers' env.step (physics + rendering, in parallel)
            "env_wait_ms": mean(timing["env_wait_ms"]),
            # per env.step inside a worker (physics + camera rendering)
            "env_step_ms": mean(timing["env_step_ms"]),
            "reset_ms": mean(timing["reset_ms"]),
            "video_s": round(timing["video_s"], 3),
        },
        "videos": video_paths,
        "contact_sheet": sheet_path,
        "eval_json": str(out_dir / "eval.json"),
        "episodes": records,
    }
    result["summary"] = format_summary(result)
    with atomic_write(out_dir / "eval.json", "w") as f:
        f.write(json.dumps(result, indent=2))
    return result


def report_lines(result: dict) -> list[str]:
    """What a command prints after an evaluation: the files to look at, then the summary."""
    return ([f"video: {p}" for p in result["videos"]]
            + ([f"contact sheet: {result['contact_sheet']}"] if result["contact_sheet"] else [])
            + [result["summary"]])
