"""Benchmark the action server over loopback against in-process inference of the same checkpoint.

    python scripts/bench_server.py --checkpoint runs/x [--requests 200] [--duration 3] [--clients 1 4 16]
    python scripts/bench_server.py --synthetic vit_t --only batching   # no demos, no training: ~1 min

``--synthetic NAME`` writes an untrained checkpoint (NAME at 224 px, random weights, an MLP head) instead
of reading one: what is timed is the same. A trained 224 px checkpoint (vit_t, random weights):
    python train_policy.py encoder=vit_t encoder.weights=random encoder.img_size=null env.image_size=224 \
        data.store=/tmp/demo224.zarr data.n_episodes=3 train.epochs=2 hydra.run.dir=/tmp/run224

Measured in one run, one phase after the other on the same machine:
  1+2. latency, alternating so both paths see the same machine load: PolicyController.act in this process
     (episode reset before each call, so every call runs the encoder and the head: what a chunk
     request costs) and the same request through scripts/serve_policy.py (a separate process, as in
     deployment) with PolicyClient; transport overhead = round trip - the server's own act() time;
     and the transport alone: round trips to a server whose act() returns at once;
  3. sustained requests/s with 1, 4, 16 concurrent connections (full model per request, and
     per-tick requests with the server executing the chunk: one model call per n_action_steps);
  4. malformed requests of every kind: all must get an error reply and the server must stay up;
  5. batching across robots: requests/s with 1, 4, 16 clients (full model per request) against two
     servers of the same checkpoint, batched (max_batch=16) and unbatched (max_batch=1), level by
     level alternately so that both see the same machine load; ``ratio`` = batched / unbatched.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
from websockets.asyncio.client import connect as aconnect

from s2robot_client import PolicyClient
from s2robot_client.protocol import decode_message, packb

ROOT = Path(__file__).resolve().parents[1]


def pct(xs, q):
    return round(float(np.percentile(xs, q)), 3) if len(xs) else None


def summary(xs) -> dict:
    return {"p50": pct(xs, 50), "p99": pct(xs, 99), "mean": round(float(np.mean(xs)), 3), "n": len(xs)}


def make_obs(md: dict, rng) -> dict:
    obs = {cam: rng.integers(0, 256, md["image_shape"], dtype=np.uint8) for cam in md["camera_keys"]}
    if "proprio" in md["obs_keys"]:
        obs["proprio"] = rng.normal(size=md["proprio_dim"]).astype(np.float32)
    if "cube_pos" in md["obs_keys"]:
        obs["cube_pos"] = rng.normal(size=3).astype(np.float32)
    return obs


def load_runner(checkpoint: str, device: str):
    from s2robot.rollout.controller import PolicyController

    return PolicyController.from_checkpoint(checkpoint, device=device)


def synthetic_checkpoint(path: str, encoder: str, scales=(1,), image_size: int = 224, img_size=None) -> str:
    """An untrained policy checkpoint of ``encoder`` (random weights; ``img_size``: its native size,
    None = the registry's) + an MLP head, seeing ``image_size`` px frames: for timing only."""
    from policies import make_policy
    from s2robot.checkpoint import save_checkpoint
    from s2robot.encoders.config import EncoderConfig

    cfg = EncoderConfig(name=encoder, weights="random", scales=tuple(scales), img_size=img_size)
    enc = cfg.build("cpu")
    shapes = {"vision": tuple(enc.feature_shape), "proprio": (9,)}
    kwargs = {"n_obs_steps": 1, "horizon": 8, "hidden": 256, "depth": 3, "dropout": 0.0, "visual_pool": "none"}
    payload = {
        "policy": {"name": "mlp", "kwargs": kwargs},
        "execution": {"n_action_steps": 4, "temporal_ensemble": False},
        "input_shapes": shapes,
        "action_dim": 7,
        "inputs": ["vision", "proprio"],
        "encoder": cfg.to_checkpoint(enc, camera="agentview"),
        "env": {"cameras": ["agentview"], "image_size": image_size, "control_freq": 20},
        "state_dict": make_policy("mlp", shapes, 7, **kwargs).state_dict(),
    }
    save_checkpoint(path, payload)
    return path


def start_server(checkpoint: str, device: str, run_dir: str, *overrides: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts/serve_policy.py"),
            f"checkpoint={checkpoint}",
            "port=0",
            f"device={device}",
            "token=null",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    for line in proc.stdout:
        if line.startswith("listening on ws://"):
            # Keep reading its log (one line per bad request) so a full pipe never blocks the server.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, int(line.strip().rsplit(":", 1)[1])
    raise RuntimeError(f"serve_policy.py exited ({proc.wait()}) before listening")


def paired_latency(runner, uri: str, n: int) -> dict:
    """In-process act() and the same request over loopback, alternately, so that both see the same
    machine load; every call runs the whole model (episode reset first)."""
    md = runner.metadata
    obs = make_obs(md, np.random.default_rng(0))
    batch = {k: v[None] for k, v in obs.items()}
    local, rtt, act, handler, overhead, paired = [], [], [], [], [], []
    with PolicyClient(uri) as client:
        for i in range(n + 10):
            runner.reset(1)
            t0 = time.perf_counter()
            want = runner.act(batch)[0]
            t1 = time.perf_counter()
            reply = client.infer(obs, reset=True)
            t2 = time.perf_counter()
            assert np.array_equal(reply["action"], want), "served and in-process actions differ"
            if i >= 10:  # warm-up
                local.append((t1 - t0) * 1e3)
                rtt.append((t2 - t1) * 1e3)
                act.append(reply["timing"]["total_ms"])
                handler.append(reply["timing"]["server_ms"])
                overhead.append(rtt[-1] - act[-1])
                paired.append(rtt[-1] - local[-1])
    return {
        "in_process_act_ms": summary(local),
        "loopback_round_trip_ms": summary(rtt),
        "server_act_ms": summary(act),
        "server_handler_ms": summary(handler),
        "transport_overhead_ms": summary(overhead),
        "round_trip_minus_in_process_ms": summary(paired),
        "request_bytes": len(packb({"type": "infer", "obs": obs})),
        "actions_identical": True,
    }


class _NoModel:
    """The server's view of a runner, without a model: what the transport alone costs."""

    n_obs_steps, n_action_steps, last_timing = 1, 1, {}

    def __init__(self, metadata: dict):
        self.metadata = metadata
        self._action = np.zeros((1, metadata["action_dim"]), np.float32)

    def reset(self, n_envs: int = 1) -> None:
        pass

    def act(self, batch: dict) -> np.ndarray:
        self.last_timing = {"encode_ms": 0.0, "head_ms": 0.0, "total_ms": 0.0}
        return self._action


def transport_only(md: dict, n: int) -> dict:
    """Round trips to a server (in a thread of this process) whose act() returns at once."""
    from s2robot.serving import PolicyServer

    server = PolicyServer(_NoModel({k: v for k, v in md.items() if k not in ("type", "protocol")}), port=0)
    server.start_in_thread()
    obs = make_obs(md, np.random.default_rng(0))
    rtt = []
    try:
        with PolicyClient(f"ws://127.0.0.1:{server.port}") as client:
            for i in range(n + 10):
                t0 = time.perf_counter()
                client.infer(obs, reset=True)
                if i >= 10:
                    rtt.append((time.perf_counter() - t0) * 1e3)
    finally:
        server.stop()
    return {"round_trip_ms": summary(rtt)}


async def _client_loop(uri: str, obs_bytes: bytes, stop_at: float, lat: list) -> int:
    done = 0
    async with aconnect(uri, proxy=None, compression=None, max_size=2**26) as ws:
        decode_message(await ws.recv())  # metadata
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await ws.send(obs_bytes)
            reply = decode_message(await ws.recv())
            assert reply["type"] == "action", reply
            lat.append((time.perf_counter() - t0) * 1e3)
            done += 1
    return done


def throughput(uri: str, md: dict, clients: int, duration: float, reset: bool) -> dict:
    obs_bytes = packb({"type": "infer", "obs": make_obs(md, np.random.default_rng(1)), "reset": reset})
    lat: list[float] = []

    async def run() -> int:
        t0 = time.perf_counter()
        counts = await asyncio.gather(*[_client_loop(uri, obs_bytes, t0 + duration, lat) for _ in range(clients)])
        return sum(counts), time.perf_counter() - t0

    total, elapsed = asyncio.run(run())
    return {
        "clients": clients,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "latency_ms": summary(lat),
    }


def malformed_requests(md: dict) -> dict[str, bytes | str]:
    good = make_obs(md, np.random.default_rng(2))
    cam = (md["camera_keys"] or [None])[0]

    def infer(**obs_over):
        return packb({"type": "infer", "obs": {**good, **obs_over}})

    def buffer(dtype, shape, nbytes):
        return msgpack.packb(
            {
                "type": "infer",
                "obs": {k: {"__ndarray__": True, "dtype": dtype, "shape": shape, "data": b"\0" * nbytes} for k in good},
            }
        )

    cases = {
        "garbage": os.urandom(64) + b"\xc1",
        "empty": b"",
        "text_frame": "hello",
        "not_a_map": packb([1, 2]),
        "no_type": packb({"obs": good}),
        "unknown_type": packb({"type": "fly"}),
        "truncated": packb({"type": "infer", "obs": good})[:50],
        "obs_not_map": packb({"type": "infer", "obs": 3}),
        "missing_keys": packb({"type": "infer", "obs": {}}),
        "chunk_not_bool": packb({"type": "infer", "obs": good, "chunk": 1}),
        "proprio_nan": infer(proprio=np.full(md["proprio_dim"], np.nan, np.float32)),
        "proprio_inf": infer(proprio=np.full(md["proprio_dim"], np.inf, np.float32)),
        "proprio_int": infer(proprio=np.zeros(md["proprio_dim"], np.int32)),
        "proprio_shape": infer(proprio=np.zeros(md["proprio_dim"] + 1, np.float32)),
        "buffer_dtype_object": buffer("object", [3], 24),
        "buffer_bad_length": buffer("float32", [3], 11),
        "buffer_negative_shape": buffer("uint8", [-1], 0),
        "oversized": infer(pad=np.zeros(md["max_message_bytes"] + 1, np.uint8)),
    }
    if cam:
        cases["image_float"] = infer(**{cam: np.zeros(md["image_shape"], np.float32)})
        cases["image_shape"] = infer(**{cam: np.zeros([8, 8, 3], np.uint8)})
    return cases


def batching(checkpoint: str, device: str, tmp: str, clients: list[int], duration: float) -> dict:
    """Requests/s of a batched and an unbatched server of one checkpoint, alternately per level."""
    servers = {
        name: start_server(checkpoint, device, os.path.join(tmp, name), f"max_batch={mb}")
        for name, mb in (("unbatched", 1), ("batched", 16))
    }
    try:
        levels = []
        for n in clients:
            row: dict = {"clients": n}
            for name, (_, port) in servers.items():
                uri = f"ws://127.0.0.1:{port}"
                with PolicyClient(uri) as c:
                    md = c.metadata
                row[name] = throughput(uri, md, n, duration, reset=True)
            row["ratio"] = round(row["batched"]["requests_per_s"] / row["unbatched"]["requests_per_s"], 2)
            levels.append(row)
            print(f"batching: {n} clients: ratio {row['ratio']}", file=sys.stderr, flush=True)
        stats = {name: json.loads(_get(port, "/healthz")) for name, (_, port) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "levels": levels,
        "ratio_at_most_clients": levels[-1]["ratio"],
        "largest_batch": stats["batched"]["largest_batch"],
        "mean_batch": round(stats["batched"]["batched_requests"] / max(1, stats["batched"]["batches"]), 2),
    }


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    return conn.getresponse().read().decode()


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/healthz")
    return conn.getresponse().status


def malformed(uri: str, port: int, md: dict, repeats: int, proc: subprocess.Popen) -> dict:
    from websockets.sync.client import connect

    cases = malformed_requests(md)
    sent = answered = 0
    codes: dict[str, int] = {}
    with PolicyClient(uri) as client:
        for _ in range(repeats):
            for data in cases.values():
                sent += 1
                reply = client.send_raw(data, timeout=30)
                if reply.get("type") == "error" and reply.get("code") and reply.get("message"):
                    answered += 1
                    codes[reply["code"]] = codes.get(reply["code"], 0) + 1
        still_serving = client.infer(make_obs(md, np.random.default_rng(3)))["type"] == "action"
    vanished = 0
    for _ in range(repeats):  # clients that send a request and leave before the reply
        with connect(uri, proxy=None, compression=None) as ws:
            ws.recv()
            ws.send(packb({"type": "infer", "obs": make_obs(md, np.random.default_rng(4)), "reset": True}))
        vanished += 1
    with PolicyClient(uri) as client:
        still_serving = still_serving and client.infer(make_obs(md, np.random.default_rng(5)))["type"] == "action"
    return {
        "kinds": len(cases),
        "sent": sent,
        "answered_with_error": answered,
        "codes": codes,
        "vanishing_clients": vanished,
        "server_alive": proc.poll() is None,
        "health_status": health(port),
        "still_serving": still_serving,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint")
    source.add_argument("--synthetic", metavar="ENCODER", help="an untrained checkpoint of this encoder (224 px)")
    p.add_argument("--scales", type=int, nargs="+", default=[1], help="with --synthetic")
    p.add_argument("--only", choices=["all", "batching"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--requests", type=int, default=200, help="latency samples per path")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per throughput level")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--malformed-repeats", type=int, default=5)
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="CPU threads for torch in both processes (OMP_NUM_THREADS); 0 = torch's default",
    )
    args = p.parse_args(argv)
    if args.torch_threads:
        # Set before torch loads, here and (inherited) in the server process. Two processes with a
        # 2-thread OpenMP team each on a 2-core machine spin against each other: 5-10x slower calls.
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.torch_threads)

    import torch

    out = {
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            args.checkpoint = synthetic_checkpoint(os.path.join(tmp, "checkpoint.pt"), args.synthetic, args.scales)
        runner = load_runner(args.checkpoint, args.device)
        md = runner.metadata
        out["model"] = {k: md[k] for k in ("encoder", "scales", "image_shape", "n_action_steps", "checkpoint")}
        out["batching"] = batching(args.checkpoint, args.device, tmp, args.clients, args.duration)
        if args.only == "batching":
            print(json.dumps(out, indent=1))
            return 0
        proc, port = start_server(args.checkpoint, args.device, tmp)
        try:
            uri = f"ws://127.0.0.1:{port}"
            with PolicyClient(uri) as c:
                md = c.metadata
            out["latency"] = paired_latency(runner, uri, args.requests)
            out["transport_only_no_model"] = transport_only(md, args.requests)
            out["throughput_full_model"] = [throughput(uri, md, n, args.duration, reset=True) for n in args.clients]
            out["throughput_per_tick"] = [throughput(uri, md, n, args.duration, reset=False) for n in args.clients]
            out["malformed"] = malformed(uri, port, md, args.malformed_repeats, proc)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
