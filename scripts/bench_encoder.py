"""Benchmark the S² wrapper: one backbone call vs a per-scale loop, and S² overhead over
the bare backbone run on the same tiles. Prints JSON.

    python scripts/bench_encoder.py [--encoders vit_s vit_b] [--scales 1 2] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from s2robot.encoders import build_backbone, resolve_spec
from s2robot.encoders.costs import encoder_costs
from s2robot.s2 import resize_to, s2_forward, scale_sizes, split_chessboard


def _time(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e3


def bench_one(name: str, scales: list[int], batch: int, repeats: int, device: torch.device) -> dict:
    spec = resolve_spec(name)
    torch.manual_seed(0)
    backbone = build_backbone(spec).eval().to(device)
    fwd = backbone.forward_features
    x = torch.rand(batch, 3, spec.img_size, spec.img_size, device=device)
    tiles = torch.cat(
        [split_chessboard(resize_to(x, size), size // spec.img_size) for size in scale_sizes(scales, spec.img_size)]
    )

    variants = {
        "s2_one_call": lambda: s2_forward(fwd, x, scales, tile_size=spec.img_size, num_prefix_tokens=1),
        "s2_per_scale_loop": lambda: s2_forward(
            fwd, x, scales, tile_size=spec.img_size, num_prefix_tokens=1, one_call=False
        ),
        "bare_backbone_same_tiles": lambda: fwd(tiles),
    }
    times = {k: [] for k in variants}
    with torch.inference_mode():
        for fn in variants.values():  # warm-up
            fn()
        # Interleaved so that machine noise hits every variant alike.
        for _ in range(repeats):
            for k, fn in variants.items():
                times[k].append(_time(fn, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    costs = encoder_costs(name, scales)
    return {
        "encoder": name,
        "scales": scales,
        "batch": batch,
        "tiles_per_image": tiles.shape[0] // batch,
        "params_M": round(costs["params"] / 1e6, 2),
        "gmacs_per_image": round(costs["gmacs"], 2),
        "ms_median": {k: round(v, 2) for k, v in med.items()},
        "loop_over_one_call": round(med["s2_per_scale_loop"] / med["s2_one_call"], 3),
        "s2_overhead_over_bare": round(med["s2_one_call"] / med["bare_backbone_same_tiles"] - 1, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoders", nargs="+", default=["vit_s", "vit_b"])
    p.add_argument("--scales", nargs="+", type=int, default=[1, 2])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    results = [bench_one(n, args.scales, args.batch, args.repeats, device) for n in args.encoders]
    print(
        json.dumps(
            {
                "machine": {
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "cpu": platform.processor(),
                    "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                },
                "target": "s2_overhead_over_bare <= 0.05",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
