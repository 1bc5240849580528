"""Benchmark training inputs: feature-caching throughput (frames/s) at scales [1] and [1,2],
and head-training throughput (samples/s) from the cache vs running the frozen encoder in the
loop, measured side by side in one run. Prints JSON.

    python scripts/bench_train.py [--encoder vit_t] [--image-size 64] [--store data/...zarr]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from policies import make_policy
from s2robot.data.feature_cache import cached_features
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders import build_encoder


def _store(args, tmp: str) -> ReplayBuffer:
    if args.store:
        return ReplayBuffer.open(args.store)
    from s2robot.data.collect import collect_demos

    env = {"cameras": ["agentview"], "image_size": args.image_size}
    collect_demos(env, f"{tmp}/bench.zarr", n_episodes=args.episodes, progress=False)
    return ReplayBuffer.open(f"{tmp}/bench.zarr")


def bench_caching(store, args, scales) -> tuple[float, np.ndarray]:
    enc = build_encoder(args.encoder, weights="random", scales=scales, img_size=args.encoder_size)
    t = time.perf_counter()
    feats, _ = cached_features(store, enc, "agentview", batch_size=args.batch, progress=False)
    return store.n_steps / (time.perf_counter() - t), feats


def bench_training(store, feats, args, scales) -> dict:
    enc = build_encoder(args.encoder, weights="random", scales=scales, img_size=args.encoder_size)
    proprio = torch.from_numpy(store["proprio"])
    actions = torch.from_numpy(store["action"]).float()
    frames = store["agentview"]
    feats_t = torch.from_numpy(feats)
    policy = make_policy("mlp", {"vision": feats.shape[1:], "proprio": (9,)}, 7, horizon=1)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)

    def step(rows, vision):
        obs = {"vision": vision[:, None], "proprio": proprio[rows][:, None]}
        loss = policy.compute_loss(obs, actions[rows][:, None])
        opt.zero_grad()
        loss.backward()
        opt.step()

    out = {}
    for mode in ("cached", "encoder_in_loop"):
        n_steps = args.train_steps if mode == "cached" else max(2, args.train_steps // 50)
        t = time.perf_counter()
        for _ in range(n_steps):
            rows = rng.integers(0, store.n_steps, args.batch)
            vision = feats_t[rows] if mode == "cached" else enc(frames[np.sort(rows)])
            step(rows, vision)
        out[mode] = n_steps * args.batch / (time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="vit_t")
    p.add_argument("--encoder-size", type=int, default=None, help="native size override (default: the encoder's)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--store", default=None, help="an existing demo store (default: collect a small one)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train-steps", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(args, tmp)
        result = {
            "encoder": args.encoder,
            "frames": store.n_steps,
            "frame_shape": list(store.shape("agentview")),
            "threads": torch.get_num_threads(),
            "caching_frames_per_s": {},
            "training_samples_per_s": {},
        }
        for scales in ([1], [1, 2]):
            fps, feats = bench_caching(store, args, scales)
            result["caching_frames_per_s"][str(scales)] = round(fps, 1)
            tput = bench_training(store, feats, args, scales)
            result["training_samples_per_s"][str(scales)] = {k: round(v, 1) for k, v in tput.items()}
            result["training_samples_per_s"][str(scales)]["cached_over_in_loop"] = round(
                tput["cached"] / tput["encoder_in_loop"], 1
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
