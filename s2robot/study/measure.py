"""Per-encoder measurements for the study's report: the linear probe of the frozen features and
the latency per frame, cached in ``measurements.json`` so rebuilding a report is cheap."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from s2robot.fileio import atomic_write

MEASURE_NAME = "measurements.json"


def device_label(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))} (fp32)"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model or 'unknown'}, {torch.get_num_threads()} torch thread(s), {os.cpu_count()} cores"


def measure_encoder(
    info: dict, device: str, *, probe: bool = True, latency: bool = True, repeats: int = 20, warmup: int = 3
) -> dict:
    """Linear probe (cube x, y from first frames, cm) and median ms per frame of ``encoder(frame)``
    at batch 1, for the encoder of a run (its weights, img_size, scales, store)."""
    import torch

    from s2robot.data.replay_buffer import ReplayBuffer
    from s2robot.encoders.probe import probe_encoder

    enc = info["encoder_config"].build(device)
    store = ReplayBuffer.open(info["store"], required_keys=(info["camera"], "cube_pos"))
    out: dict = {"weights_id": enc.weights_id}
    if probe:
        try:
            p = probe_encoder(enc, store, info["camera"])
            out.update(
                probe_cm=p["probe"]["rms_dist_cm"],
                probe_mean_cm=p["mean_baseline"]["rms_dist_cm"],
                probe_r2=p["r2"],
                probe_n=p["n"],
            )
        except Exception as e:  # e.g. too few episodes for the folds: latency is still worth having
            out["error"] = f"probe: {type(e).__name__}: {e}"
    if latency:
        frame = store.read(info["camera"], 0, 1)  # 1 x H x W x 3 uint8, as the policy sees it
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        times = []
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            enc(frame)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        out.update(
            latency_ms=round(float(np.median(times)), 3),
            latency_repeats=repeats,
            latency_device=device_label(str(device)),
        )
    return out


def measure_groups(
    rows: list[dict], study_dir: Path, device: str, measure: Callable | None, log: Callable[[str], None] = print
) -> None:
    """Fill each vision row's probe and latency columns, cached in ``measurements.json`` (keyed by
    encoder, scales, size, weights, store and device) so rebuilding the report is cheap."""
    path = study_dir / MEASURE_NAME
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    for row in rows:
        if row["kind"] != "vision":
            continue
        info = row["_info"]
        key = "|".join(
            str(x)
            for x in (
                info["encoder"],
                list(info["scales"]),
                info["img_size"],
                info["weights_id"] or info["weights_arg"],
                info["store"],
                device,
                info.get("feature") or "cls",
                info.get("output_grid") or "native",
            )
        )
        if key not in cache and measure is not None:
            log(f"measuring {row['encoder']} {list(row['scales'])}: linear probe and latency on {device}")
            try:
                cache[key] = measure(info, device)
            except Exception as e:  # missing weights or store: the columns say why, the report goes on
                cache[key] = {"error": f"{type(e).__name__}: {e}"}
            with atomic_write(path, "w") as f:
                f.write(json.dumps(cache, indent=1))
        row.update({k: v for k, v in cache.get(key, {}).items() if k != "weights_id"})
