"""What an evaluation records and reports: per-episode records (with the measures that classify a
failure, s2robot/rollout/failures.py), videos of the first episodes, contact-sheet rows, timing, and
the eval.json result with its Wilson interval, failure counts and summary line."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2robot.rollout import video
from s2robot.rollout.failures import EpisodeTrace, classify, summarize
from s2robot.rollout.noise import EpisodeNoise, PrivilegedNoise
from s2robot.stats import wilson_interval

CONTACT_FRAMES = 5  # frames per episode on the contact sheet


@dataclass
class Episode:
    index: int
    seed: int
    worker: int
    trace: EpisodeTrace
    noise: EpisodeNoise | None = None  # the error on the privileged cube pose this episode's policy sees
    steps: int = 0
    first_success: int | None = None
    frames: list = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)


class Recorder:
    """Per-episode bookkeeping of one evaluation: records, videos of the first ``n_videos``
    episodes, contact-sheet rows, and the timing of everything."""

    def __init__(
        self,
        seeds: list[int],
        n_videos: int,
        camera: str | None,
        out_dir: Path,
        fps: int,
        bar,
        noise: PrivilegedNoise | None = None,
    ):
        self.seeds, self.n_videos, self.camera, self.out_dir, self.fps, self.bar = (
            seeds,
            n_videos,
            camera,
            out_dir,
            fps,
            bar,
        )
        self.noise = noise or PrivilegedNoise()
        self.records: list[dict] = []
        self.sheet_rows: list[dict] = []
        self.video_paths: list[str] = []
        self.timing = {
            "act_ms": [],
            "encode_ms": [],
            "head_ms": [],
            "env_step_ms": [],
            "env_wait_ms": [],
            "reset_ms": [],
            "video_s": 0.0,
        }

    def start(self, worker: int, index: int, obs: dict, info: Mapping[str, Any]) -> Episode:
        seed = self.seeds[index]
        ep = Episode(index, seed, worker, EpisodeTrace(info), self.noise.episode(seed))
        if index < self.n_videos:
            ep.frames.append(obs[self.camera])
        return ep

    def step(self, ep: Episode, obs: dict, info: Mapping[str, Any], action: np.ndarray) -> None:
        ep.steps += 1
        ep.trace.step(obs["proprio"], info, action)
        if info["is_success"] and ep.first_success is None:
            ep.first_success = ep.steps
        if self.camera and ep.frames:
            ep.frames.append(obs[self.camera])

    def finish(self, ep: Episode, info: Mapping[str, Any]) -> None:
        success = ep.first_success is not None
        self.records.append(
            {
                "episode": ep.index,
                "seed": ep.seed,
                "success": success,
                "length": ep.steps,
                "steps_to_success": ep.first_success,
                "final_cube_height": round(float(info["cube_height"]), 5),
                "worker": ep.worker,
                "seconds": round(time.perf_counter() - ep.t0, 3),
                **ep.trace.record(),
                **(ep.noise.record() if ep.noise else {}),
            }
        )
        self.records[-1]["outcome"] = classify(self.records[-1])
        if ep.frames:
            t0 = time.perf_counter()
            name = f"episode{ep.index:03d}_seed{ep.seed}_{'success' if success else 'fail'}.mp4"
            self.video_paths.append(
                str(
                    video.write_episode_video(self.out_dir / "videos" / name, ep.frames, ep.seed, success, fps=self.fps)
                )
            )
            steps = video.pick_frames(len(ep.frames), CONTACT_FRAMES)
            self.sheet_rows.append(
                {"seed": ep.seed, "success": success, "steps": steps, "frames": [ep.frames[t] for t in steps]}
            )
            ep.frames = []
            self.timing["video_s"] += time.perf_counter() - t0
        self.bar.update(1)
        self.bar.set_postfix(success=f"{sum(r['success'] for r in self.records)}/{len(self.records)}")


def format_summary(result: dict) -> str:
    lo, hi = result["success_ci95"]
    steps = result["mean_steps_to_success"]
    steps = f"{steps:.1f}" if steps is not None else "n/a"
    return (
        f"success {result['successes']}/{result['n_episodes']} = {100 * result['success_rate']:.1f}% "
        f"[95% CI {100 * lo:.1f}-{100 * hi:.1f}] mean steps to success {steps} | eval.json: {result['eval_json']}"
    )


def build_result(
    controller,
    rec: Recorder,
    env_cfg: dict,
    camera: str | None,
    env_overrides,
    n_workers: int,
    seed_start: int,
    out_dir: Path,
    timing_s: dict,
) -> dict:
    records = sorted(rec.records, key=lambda r: r["episode"])
    n_episodes = len(records)
    sheet_path = None
    if rec.sheet_rows:
        sheet_path = str(
            video.contact_sheet(out_dir / "contact_sheet.png", sorted(rec.sheet_rows, key=lambda r: r["seed"]))
        )
    successes = sum(r["success"] for r in records)
    to_success = [r["steps_to_success"] for r in records if r["success"]]
    enc = controller.ckpt.get("encoder") or {}
    total_steps = sum(r["length"] for r in records)
    timing, rollout_s = rec.timing, timing_s["rollout_s"]
    mean = lambda xs: round(float(np.mean(xs)), 3) if xs else None  # noqa: E731
    result = {
        "checkpoint": controller.ckpt["path"],
        "checkpoint_hash": controller.checkpoint_hash,
        "encoder": enc.get("encoder"),
        "encoder_weights": enc.get("weights"),
        "scales": enc.get("scales"),
        "inputs": list(controller.inputs),
        "policy": controller.ckpt["policy"]["name"],
        "camera": controller.camera,
        "video_camera": camera,
        "device": str(controller.device),
        "inference": controller.inference.describe(),  # what the encoders ran as, fallbacks applied
        "env": env_cfg,
        "env_overrides": dict(env_overrides or {}),
        "n_episodes": n_episodes,
        "n_workers": n_workers,
        "seed_start": seed_start,
        "seeds": [rec.seeds[0], rec.seeds[-1]],
        "successes": successes,
        "success_rate": successes / n_episodes,
        "success_ci95": list(wilson_interval(successes, n_episodes)),
        "mean_steps_to_success": float(np.mean(to_success)) if to_success else None,
        "mean_length": float(np.mean([r["length"] for r in records])),
        "perception_noise": rec.noise.describe(),
        # each episode's "outcome" counted (categories and thresholds: s2robot/rollout/failures.py)
        "failures": summarize(records),
        "timing": {
            "total_s": round(timing_s["total_s"], 3),
            "worker_startup_s": round(timing_s["worker_startup_s"], 3),
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
        "videos": sorted(rec.video_paths),
        "contact_sheet": sheet_path,
        "eval_json": str(out_dir / "eval.json"),
        "episodes": records,
    }
    result["summary"] = format_summary(result)
    return result


def report_lines(result: dict) -> list[str]:
    """What a command prints after an evaluation: the files to look at, then the summary."""
    counts = (result.get("failures") or {}).get("counts", {})
    failed = ", ".join(f"{c} {k}" for c, k in counts.items() if k and c != "success")
    return (
        [f"video: {p}" for p in result["videos"]]
        + ([f"contact sheet: {result['contact_sheet']}"] if result["contact_sheet"] else [])
        + ([f"failures: {failed} (categories: s2robot/rollout/failures.py)"] if failed else [])
        + [result["summary"]]
    )
