"""Benchmark one DAgger round's cost: rolling the policy out, relabelling every visited state with the
expert, extending the grown store's feature cache (only the round's new frames are encoded: the
cache of the store before the round is reused as a prefix) and retraining. Prints JSON, one row per
round.

    python scripts/bench_dagger.py [--image-size 64] [--demos 10] [--episodes 10] [--store data/...zarr]
    python scripts/bench_dagger.py --image-size 32 --demos 4 --episodes 2 --epochs 2   # a quick check

Random encoder weights (the cost does not depend on them); the policy is trained on the demos first.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=None, help="an existing demo store (default: collect a small one)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--demos", type=int, default=10, help="demos to collect when no --store is given")
    p.add_argument("--episodes", type=int, default=10, help="DAgger episodes per round")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--workers", type=int, default=None, help="env processes (default: one per core)")
    p.add_argument("--encoder", default="vit_t")
    p.add_argument("--encoder-size", type=int, default=64)
    p.add_argument("--scales", default="1,2")
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()

    from omegaconf import OmegaConf

    # timm segfaults when first imported after a MuJoCo EGL context exists: the encoders first
    import s2robot.encoders.backbone  # noqa: F401
    from s2robot.config import register_configs
    from s2robot.config.dagger import DaggerSchema
    from s2robot.dagger.rounds import run_dagger
    from s2robot.data.collect import collect_demos
    from s2robot.data.replay_buffer import ReplayBuffer

    register_configs()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        t0 = time.perf_counter()
        if store is None:
            store = f"{tmp}/demos.zarr"
            collect_demos({"cameras": ["agentview"], "image_size": args.image_size}, store, args.demos, progress=False)
        collect_s = time.perf_counter() - t0
        image_size = ReplayBuffer.open(store).shape("agentview")[0]
        train = [
            f"encoder={args.encoder}",
            "encoder.weights=random",
            f"encoder.img_size={args.encoder_size}",
            f"scales=[{args.scales}]",
            f"env.image_size={image_size}",
            f"data.store={Path(store).resolve()}",
            f"train.epochs={args.epochs}",
            "train.progress=false",
        ]
        yaml = OmegaConf.load(Path(__file__).resolve().parents[1] / "configs/dagger.yaml")
        cfg = OmegaConf.merge(
            OmegaConf.structured(DaggerSchema), {k: v for k, v in yaml.items() if k not in ("defaults", "hydra")}
        )
        cfg = OmegaConf.merge(
            cfg,
            {
                "rounds": args.rounds,
                "episodes_per_round": args.episodes,
                "progress": False,
                "n_workers": args.workers,
                "train_overrides": train,
                "device": "cpu",
            },
        )
        summary = run_dagger(cfg, f"{tmp}/dagger")
        rows = []
        for r in summary["rounds"]:
            t = r["rollout"]
            frames = r["store_steps"]
            rows.append(
                {
                    "round": r["round"],
                    "image_size": image_size,
                    "encoder": args.encoder,
                    "scales": args.scales,
                    "episodes": t["episodes"],
                    "steps": t["steps"],
                    "workers": args.workers,
                    "rollout_s": t["total_s"],
                    "worker_startup_s": t["startup_s"],
                    "policy_s": t["policy_s"],
                    "env_s": t["env_s"],
                    "relabel_s": t["relabel_s"],
                    "store_write_s": t["store_s"],
                    "relabel_ms_per_step": round(1e3 * t["relabel_s"] / max(1, t["steps"]), 3),
                    "recache_s": r["cache_s"],
                    "store_steps": frames,
                    "recache_new_frames": t["steps"],  # the cache before the round is reused
                    "recache_frames_per_s": round(t["steps"] / r["cache_s"], 1) if r["cache_s"] else None,
                    "train_s": r["train_s"],
                    "round_s": r["total_s"],
                }
            )
        print(
            json.dumps(
                {
                    "collect_s": round(collect_s, 1),
                    "round_0": summary.get("round_0", {}).get("total_s"),
                    "rounds": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":  # rollout workers are spawned and re-import this file
    main()
