"""Benchmark evaluation: episodes/min with 1 env worker vs N, and where a control step's time goes.

    python scripts/bench_eval.py [--checkpoint runs/x] [--workers N] [--episodes-per-worker 2] [--horizon 40]
                                 [--torch-threads 1]

Without --checkpoint a tiny vit_t (random weights, S² scales 1,2) policy is trained at 64 px first.
Both evaluations run here, one after the other, on the same seeds, so their ratio is meaningful
even on a busy machine. Episodes run to the horizon unless the policy succeeds (random weights
never do), so episodes/min is roughly (steps/s) / horizon. Prints one JSON object.

Per control step: the main process runs the policy on the batch of all envs (encoder + head,
`act_ms`), then waits for every worker's env.step (`env_wait_ms`); each env.step costs
`env_step_ms` inside its worker, split below into physics and camera rendering (measured in
this process with and without the camera).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "encoder=vit_t",
    "encoder.weights=random",
    "encoder.img_size=64",
    "scales=[1,2]",
    "env.image_size=64",
    "data.n_episodes=4",
    "train.epochs=2",
    "train.progress=false",
]


def tiny_checkpoint(work: Path) -> Path:
    from hydra import compose, initialize_config_dir

    from s2robot.training.train import train

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train_policy", overrides=[*TINY, f"data.store={work / 'demos.zarr'}"])
    train(cfg, work / "run")
    return work / "run"


def env_step_split(env_cfg: dict, n_steps: int = 30) -> dict:
    """Median env.step with the camera and without: the difference is rendering."""
    from envs.cube_pick import make_env

    out = {}
    for name, cameras in (("with_camera", env_cfg["cameras"]), ("physics_only", [])):
        env = make_env(env_cfg, cameras=cameras)
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(n_steps):
            t = time.perf_counter()
            env.step(rng.uniform(-1, 1, 7))
            times.append(time.perf_counter() - t)
        env.close()
        out[name] = 1000 * float(np.median(times))
    out["render_ms"] = out["with_camera"] - out["physics_only"]
    return {f"{k}_ms" if not k.endswith("_ms") else k: round(v, 2) for k, v in out.items()}


def encoder_ms(checkpoint: Path, batch: int, image_size: int, repeats: int = 5) -> dict:
    """The frozen encoder alone on a batch of frames, as PolicyController calls it."""
    from s2robot.rollout.controller import PolicyController

    runner = PolicyController.from_checkpoint(checkpoint)
    if runner.encoder is None:
        return {}
    out = {}
    for b in sorted({1, batch}):
        frames = np.random.default_rng(0).integers(0, 256, (b, image_size, image_size, 3), dtype=np.uint8)
        runner.encoder(frames)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            runner.encoder(frames)
            times.append(time.perf_counter() - t)
        out[f"batch{b}_ms"] = round(1000 * float(np.median(times)), 2)
    return out


def main() -> None:
    from s2robot.rollout.env_pool import cpu_cores

    default_workers = cpu_cores()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="run directory or checkpoint.pt (default: train a tiny vit_t policy)")
    p.add_argument("--workers", type=int, default=default_workers, help="N for the N-worker run (default: cores)")
    p.add_argument("--episodes-per-worker", type=int, default=2)
    p.add_argument("--horizon", type=int, default=40, help="env horizon override (episode length cap)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads of the policy process; 0 = torch's default (one per core). More than one "
        "stalls for up to ~1 s per call when other processes load the cores (OpenMP barriers)",
    )
    args = p.parse_args()

    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    from s2robot.checkpoint import load_checkpoint
    from s2robot.rollout.evaluate import evaluate

    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        work = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else tiny_checkpoint(work)
        ckpt = load_checkpoint(checkpoint)
        n_episodes = args.episodes_per_worker * args.workers
        runs = {}
        for n_workers in (1, args.workers):
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON
                r = evaluate(
                    checkpoint,
                    work / f"eval_{n_workers}",
                    n_episodes=n_episodes,
                    n_workers=n_workers,
                    n_videos=0,
                    env_overrides={"horizon": args.horizon},
                    progress=False,
                )
            t = r["timing"]
            runs[n_workers] = {
                "episodes_per_min": t["episodes_per_min"],
                "episodes_per_min_with_startup": round(60 * n_episodes / (t["worker_startup_s"] + t["rollout_s"]), 3),
                "env_steps_per_s": t["env_steps_per_s"],
                "worker_startup_s": t["worker_startup_s"],
                "rollout_s": t["rollout_s"],
                "per_control_step_ms": {k: t[k] for k in ("act_ms", "encode_ms", "head_ms", "env_wait_ms")},
                "env_step_ms_in_worker": t["env_step_ms"],
                "records": [(e["success"], e["length"]) for e in r["episodes"]],
            }
        same = runs[1]["records"] == runs[args.workers]["records"]
        for run in runs.values():
            del run["records"]
        enc = ckpt.get("encoder") or {}
        image_size = ckpt["env"]["image_size"]
        result = {
            "checkpoint": str(checkpoint),
            "encoder": enc.get("encoder"),
            "scales": enc.get("scales"),
            "image_size": image_size,
            "horizon": args.horizon,
            "n_episodes": n_episodes,
            "cpu_cores": default_workers,
            "torch_threads": torch.get_num_threads(),
            "workers": {str(k): v for k, v in runs.items()},
            "speedup": round(runs[args.workers]["episodes_per_min"] / runs[1]["episodes_per_min"], 3),
            "same_records_1_vs_n_workers": same,
            "encoder_alone": encoder_ms(checkpoint, args.workers, image_size),
            "env_step_split": env_step_split({**ckpt["env"], "horizon": args.horizon}),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
