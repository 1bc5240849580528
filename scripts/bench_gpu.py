"""The device check of the fast path: one JSON object, in about 4 minutes on one GPU.

    python scripts/bench_gpu.py              # a CUDA GPU: S² ViT-B [1,2] and friends (scripts/gpu_check.sh)
    python scripts/bench_gpu.py --cpu-smoke  # anywhere, ~20 s: tiny sizes, no compile; checks the JSON shape

All weights are random (nothing is downloaded); timings do not depend on them. Measured:
  - S² ViT-B [1,2] at batch 1, frames in to features out: eager fp32, the per-scale loop (the official
    wrapper's way: one backbone call per scale), and the fast path (bf16 + torch.compile, CUDA graphs);
  - plain ViT-B and ViT-L (one scale) at batch 1, eager fp32 and eager bf16;
  - feature caching (batch 32, bf16) in TFLOP/s and as a share of a measured bf16 matmul peak;
  - the action server over loopback (fast path, warmed up): request latency p50/p99 with one client,
    and requests/s with 16 clients, batched (max_batch=16) and unbatched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_server's helpers


def timed(fn, seconds: float, warmup: int = 3, sync=lambda: None) -> dict:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": round(float(np.median(times)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}


def matmul_peak(torch, device, dtype, n: int, seconds: float, sync) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    t = timed(lambda: a @ b, seconds, sync=sync)
    return 2 * n**3 / (t["p50_ms"] / 1e3) / 1e12


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU, no compile: the JSON shape")
    p.add_argument("--out", help="also write the JSON here, after every section (partial results survive a timeout)")
    p.add_argument("--seconds", type=float, default=None, help="per timing (default 3 on a GPU, 0.3 smoke)")
    args = p.parse_args(argv)
    smoke = args.cpu_smoke
    if smoke:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from bench_server import synthetic_checkpoint, throughput

    from s2robot.encoders import build_encoder
    from s2robot.encoders.costs import encoder_costs
    from s2robot.encoders.fast import accelerate, resolve_inference
    from s2robot.s2 import s2_forward

    if not smoke and not torch.cuda.is_available():
        print("error: no CUDA GPU here; run with --cpu-smoke for the reduced CPU check", file=sys.stderr)
        return 2
    device = "cpu" if smoke else "cuda"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    secs = args.seconds or (0.3 if smoke else 3.0)
    # smoke: ViT-Ti at 32 px stands in for ViT-B and ViT-L; 224 px otherwise
    base, large, img = ("vit_t", "vit_t", 32) if smoke else ("vit_b", "vit_l", None)
    size = img or 224
    frames = {b: np.random.default_rng(b).integers(0, 256, (b, size, size, 3), dtype=np.uint8) for b in (1, 32)}
    out: dict = {
        "mode": "cpu-smoke" if smoke else "gpu",
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "weights": "random",
    }
    t_start = time.perf_counter()

    def save(section: str, value) -> None:
        out[section] = value
        print(f"bench_gpu: {section} done after {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(out, indent=1) + "\n")

    def enc(name, scales, dtype="fp32", compile=False):
        e = build_encoder(name, weights="random", scales=scales, img_size=img, device=device)
        return accelerate(e, resolve_inference(device, dtype, compile), max_batch=32)

    # 1. S² ViT-B [1,2], batch 1
    eager = enc(base, [1, 2])
    x1 = eager.preprocess(frames[1])

    def loop():  # the official wrapper's way: one backbone call per scale
        with torch.inference_mode():
            s2_forward(eager.backbone.forward_features, x1, [1, 2], tile_size=eager.spec.img_size, one_call=False)

    fast = enc(base, [1, 2], "bf16", compile=not smoke)
    s2 = {
        "encoder": f"{base} S2 [1,2]",
        "eager_fp32": timed(lambda: eager(frames[1]), secs, sync=sync),
        "per_scale_loop_fp32": timed(loop, secs, sync=sync),
        "fast": {**fast.inference.describe(), **timed(lambda: fast(frames[1]), secs, warmup=5, sync=sync)},
    }
    s2["speedup_fast_vs_eager"] = round(s2["eager_fp32"]["p50_ms"] / s2["fast"]["p50_ms"], 2)
    s2["features_rel_err_fast_vs_fp32"] = round(
        float((fast(frames[1]).cpu() - eager(frames[1]).cpu()).norm() / eager(frames[1]).cpu().norm()), 4
    )
    save("s2_batch1", s2)
    fast = None  # its GPU memory, before the next models

    # 2. plain ViTs, batch 1
    plain = {}
    for name in (base, large):
        row = {}
        for dtype in ("fp32", "bf16"):
            e = enc(name, [1], dtype)
            row[f"eager_{dtype}"] = timed(lambda e=e: e(frames[1]), secs, sync=sync)
        plain[name] = row
    save("plain_batch1", plain)

    # 3. caching throughput: batch 32 in bf16 against the bf16 matmul peak
    cache_enc = enc(base, [1, 2], "bf16")
    t = timed(lambda: cache_enc(frames[32]), secs, sync=sync)
    flops = 2 * 32 * encoder_costs(base, [1, 2], img)["gmacs"] * 1e9
    peak = matmul_peak(torch, device, torch.bfloat16, 256 if smoke else 8192, secs, sync)
    achieved = flops / (t["p50_ms"] / 1e3) / 1e12
    save(
        "caching_bf16_batch32",
        {
            "frames_per_s": round(32 / (t["p50_ms"] / 1e3), 1),
            "tflops": round(achieved, 3),
            "matmul_peak_bf16_tflops": round(peak, 3),
            "share_of_peak": round(achieved / peak, 3),
        },
    )
    cache_enc = None

    # 4. the server over loopback: fast path, warmed up before listening
    from s2robot.rollout.controller import PolicyController
    from s2robot.serving import PolicyServer
    from s2robot_client import PolicyClient

    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic_checkpoint(os.path.join(tmp, "c.pt"), base, (1, 2), image_size=size, img_size=img)
        runner = PolicyController.from_checkpoint(path, device=device, dtype="auto" if not smoke else "fp32")
        server_out = {"inference": runner.inference.describe()}
        for name, max_batch in (("batched", 16), ("unbatched", 1)):
            server = PolicyServer(runner, port=0, max_batch=max_batch)
            t0 = time.perf_counter()
            server.start_in_thread()  # warm-up (compiling every batch shape) happens before it listens
            server_out[f"warm_up_s_{name}"] = round(time.perf_counter() - t0, 1)
            try:
                uri = f"ws://127.0.0.1:{server.port}"
                with PolicyClient(uri) as c:
                    md = c.metadata
                    if name == "batched":
                        obs = {"agentview": frames[1][0], "proprio": np.zeros(9, np.float32)}
                        server_out["request_latency_1_client"] = timed(
                            lambda c=c, obs=obs: c.infer(obs, reset=True), secs
                        )
                server_out[f"clients_16_{name}"] = throughput(uri, md, 16, secs, reset=True)
            finally:
                server.stop()
        server_out["ratio_16_clients"] = round(
            server_out["clients_16_batched"]["requests_per_s"] / server_out["clients_16_unbatched"]["requests_per_s"],
            2,
        )
        save("server", server_out)
    save("seconds", round(time.perf_counter() - t_start, 1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
