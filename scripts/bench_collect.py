"""Benchmark demo collection: env step rate with and without storing, bytes per frame, expert success.

    python scripts/bench_collect.py [--image-size 224] [--episodes 10] [--success-seeds 100]

Prints one JSON object. Storing overhead, two ways: the share of collection wall time spent
blocked on the store (robust to other load on the machine), and 1 - (steps/s collecting into a
store) / (steps/s of the same expert rollouts, same cameras, no store), measured in this run.
Expert success runs without cameras (physics does not depend on rendering), so 100 seeds are cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from envs.cube_pick import CubePickEnv
from envs.expert import ScriptedExpert
from s2robot.data.collect import collect_demos, run_expert_episode
from s2robot.data.replay_buffer import ReplayBuffer


def step_ms(env: CubePickEnv, n_steps: int, seed: int = 0) -> float:
    """Median wall time of env.step (expert actions) over `n_steps` steps."""
    expert = ScriptedExpert()
    obs, info = env.reset(seed=seed)
    times = []
    for _ in range(n_steps):
        action = expert.act(obs, info)
        t = time.perf_counter()
        obs, _, terminated, truncated, info = env.step(action)
        times.append(time.perf_counter() - t)
        if terminated or truncated:
            seed += 1
            obs, info = env.reset(seed=seed)
            expert.reset()
    return 1000 * float(np.median(times))


def expert_success(n_seeds: int, noise: float, env_kwargs: dict) -> dict:
    env = CubePickEnv(**{**env_kwargs, "cameras": []})
    expert = ScriptedExpert(noise=noise)
    successes, lengths = [], []
    for seed in range(n_seeds):
        episode, success = run_expert_episode(env, expert, seed)
        successes.append(success)
        lengths.append(len(episode["action"]))
    env.close()
    return {
        "noise": noise,
        "seeds": n_seeds,
        "success_rate": float(np.mean(successes)),
        "failed_seeds": [s for s, ok in enumerate(successes) if not ok],
        "mean_length": float(np.mean(lengths)),
        "max_length": int(np.max(lengths)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--cameras", nargs="+", default=["agentview"])
    parser.add_argument("--episodes", type=int, default=10, help="episodes for the throughput comparison")
    parser.add_argument("--step-samples", type=int, default=100, help="steps timed per render setting")
    parser.add_argument("--success-seeds", type=int, default=100)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1], help="expert noise levels to test")
    args = parser.parse_args()
    env_kwargs = {"image_size": args.image_size, "cameras": args.cameras}
    result: dict = {"image_size": args.image_size, "cameras": args.cameras}

    step = {}
    for name, kwargs in [
        ("no_camera", {**env_kwargs, "cameras": []}),
        ("default_render", {**env_kwargs, "fast_render": False}),
        ("fast_render", env_kwargs),
    ]:
        env = CubePickEnv(**kwargs)
        step_ms(env, 10)  # warm-up (first render, numba)
        step[name] = round(step_ms(env, args.step_samples), 2)
        env.close()
    result["env_step_ms_median"] = step

    # Same seeds, same expert, same cameras: rollouts alone (before and after, to average out
    # drift on a shared machine), and rollouts into a store.
    env = CubePickEnv(**env_kwargs)
    expert = ScriptedExpert()
    run_expert_episode(env, expert, 10_000)  # warm-up

    def raw_steps_per_s() -> float:
        t0, raw_steps = time.perf_counter(), 0
        for seed in range(args.episodes):
            episode, _ = run_expert_episode(env, expert, seed)
            raw_steps += len(episode["action"])
        return raw_steps / (time.perf_counter() - t0)

    raw_before = raw_steps_per_s()

    result["collection"] = {"episodes": args.episodes}
    stored = {}
    for mode, background in [("background_writes", True), ("synchronous_writes", False)]:
        with tempfile.TemporaryDirectory() as tmp:
            store = os.path.join(tmp, "bench.zarr")
            summary = collect_demos(
                env_kwargs, store, args.episodes, progress=False, keep_failures=True, background_writes=background
            )
            # env creation is excluded, as above; time blocked on writes counts in store_seconds
            store_rate = summary["n_steps"] / (summary["env_seconds"] + summary["store_seconds"])
            buffer = ReplayBuffer.open(store)
            image_bytes = sum(
                os.path.getsize(os.path.join(d, f))
                for cam in args.cameras
                for d, _, files in os.walk(os.path.join(store, "data", cam))
                for f in files
            )
            blocked = summary["store_seconds"]
            stored[mode] = store_rate
            result["collection"][mode] = {
                "steps": summary["n_steps"],
                "storing_steps_per_s": round(store_rate, 2),
                "seconds_blocked_on_store": round(blocked, 3),
                "env_seconds": round(summary["env_seconds"], 3),
                # robust to machine load: the share of collection wall time spent waiting on the store
                "store_share_of_step_time": round(blocked / (blocked + summary["env_seconds"]), 4),
            }
            result["collection"].update(
                bytes_per_frame_on_disk=round(image_bytes / buffer.n_steps / len(args.cameras)),
                raw_bytes_per_frame=args.image_size * args.image_size * 3,
                bytes_per_step_on_disk=round(buffer.nbytes_on_disk() / buffer.n_steps),
            )

    raw_rate = (raw_before + raw_steps_per_s()) / 2
    env.close()
    result["collection"]["raw_steps_per_s"] = round(raw_rate, 2)
    for mode, store_rate in stored.items():
        result["collection"][mode]["overhead_vs_raw_rate"] = round(1 - store_rate / raw_rate, 4)

    result["expert"] = [expert_success(args.success_seeds, noise, env_kwargs) for noise in args.noise]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
