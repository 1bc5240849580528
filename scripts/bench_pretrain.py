"""MAE pre-training throughput on this machine: single-scale vs S² for a preset, one run. Prints JSON.

    python scripts/bench_pretrain.py [--preset cpu] [--steps 5] [--rounds 3] [--threads 1] [overrides ...]

Times whole training steps (crop + normalise + MAE forward/backward + AdamW) on random frames
of the preset's frame size; the variants alternate round by round so that machine noise hits
both alike. images/s counts source images; S² also trains on their s*s tiles per scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return hydra_compose(config_name="pretrain_mae", overrides=overrides)


def main() -> None:
    from s2robot.device import resolve_device
    from s2robot.pretrain.loop import build_mae, make_batch
    from s2robot.pretrain.mae import param_groups, step_generator

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--scales", nargs="+", default=["[1]", "[1,2]"], help="variants to compare")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round and variant")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. train.batch_size=32")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    runs = {}
    for scales in args.scales:
        cfg = compose([f"+pretrain={args.preset}", f"scales={scales}", *args.overrides])
        device = resolve_device(cfg.device)
        torch.manual_seed(0)
        model = build_mae(cfg).to(device).train()
        opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4)
        size = cfg.data.frame_size or cfg.encoder.img_size
        frames = torch.randint(0, 256, (256, size, size, 3), dtype=torch.uint8)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

        def step(i, model=model, opt=opt, frames=frames, cfg=cfg, device=device, autocast=autocast):
            g = step_generator(0, i)
            x = make_batch(frames, model, cfg, g, device)
            with autocast:
                loss, _ = model(x, generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        step(0)  # warm-up
        tiles = sum(round(s) ** 2 for s in model.scales)
        runs[scales] = {"step": step, "times": [], "cfg": cfg, "tiles_per_image": tiles, "device": str(device)}

    for r in range(args.rounds):
        for run in runs.values():
            t = time.perf_counter()
            for i in range(args.steps):
                run["step"](1 + r * args.steps + i)
            run["times"].append((time.perf_counter() - t) / args.steps)

    out = {
        "preset": args.preset,
        "overrides": args.overrides,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "variants": {},
    }
    for scales, run in runs.items():
        cfg, sec = run["cfg"], statistics.median(run["times"])
        b = cfg.train.batch_size
        out["variants"][scales] = {
            "encoder": cfg.encoder.name,
            "img_size": cfg.encoder.img_size,
            "batch_size": b,
            "tiles_per_image": run["tiles_per_image"],
            "device": run["device"],
            "seconds_per_step": round(sec, 4),
            "images_per_s": round(b / sec, 1),
            "tiles_per_s": round(b * run["tiles_per_image"] / sec, 1),
            "steps_in_30_min": int(1800 / sec),
        }
    v = list(out["variants"].values())
    if len(v) == 2:
        out["images_per_s_ratio_first_over_second"] = round(v[0]["images_per_s"] / v[1]["images_per_s"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
