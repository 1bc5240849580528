"""Requests of several robots run as one forward pass, each robot's episode state kept apart.

`Batcher` owns the server's one inference thread. It takes the next request, then gathers more
for at most ``window_ms`` (stopping early once every open connection has one waiting: a robot
sends its next request only after its reply) and up to ``max_batch``, and runs them together.
With ``max_batch=1`` it is the unbatched server of before.

`act_together` runs the requests of connections whose runners are copies of one
`PolicyController` (the server's per-connection copies): their per-env state (observation
history, action queue, ensembled chunks) is lent to one combined controller as its env slots, so
each robot's actions are computed exactly as alone, only in one batch. Anything the batch raises
puts every robot's state back and runs the requests one by one, so each gets its own answer.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from s2robot.encoders.fast import bucket
from s2robot.serving.listen import ServingError

_STATE = ("_history", "_queue", "_chunks")  # PolicyController's per-env lists, one entry per slot
MAX_WINDOW_MS = 20.0  # a robot at 20 Hz has 50 ms per step: more waiting is a misconfiguration


def check_batching(max_batch: int, window_ms: float) -> None:
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ServingError(f"max_batch={max_batch}: must be an integer >= 1 (1 = no batching across robots)")
    if not isinstance(window_ms, (int, float)) or not 0 <= window_ms <= MAX_WINDOW_MS:
        raise ServingError(
            f"batch_window_ms={window_ms}: must be in [0, {MAX_WINDOW_MS:g}] (a few ms at most: every "
            f"robot's first request of a batch waits this long)"
        )


def warm_up(runner: Any, spec: dict, max_batch: int) -> list[int]:
    """Run the model on blank observations at every batch size it will be compiled for (1 only when
    eager): compiling and capturing happen now, not in a robot's first request. -> the sizes run."""
    inference = getattr(runner, "inference", None)
    if not hasattr(runner, "encoders") or inference is None:  # not a PolicyController: nothing to warm
        return []
    sizes = [1 << k for k in range(bucket(max_batch).bit_length())] if inference.compile else [1]
    for b in sizes:
        probe = copy.copy(runner)  # the shared modules, not the runner's episode state
        obs = {
            k: np.zeros((b, *shape), np.uint8 if kind == "image" else np.float32) for k, (kind, shape) in spec.items()
        }
        for _ in range(3 if inference.cuda_graphs else 1):  # CUDA graph trees record on the third call
            probe.reset(b)
            probe.act(obs)
    return sizes


@dataclass
class Request:
    runner: Any
    obs: dict[str, np.ndarray]
    chunk: bool = False
    reset: bool = False
    t_queued: float = field(default_factory=time.perf_counter)
    future: Future = field(default_factory=Future)


def run_alone(req: Request) -> dict:
    """One request by itself: the unbatched path, and the fallback of a failed batch."""
    queue_ms = (time.perf_counter() - req.t_queued) * 1e3
    runner = req.runner
    if req.reset or req.chunk:
        # A chunk request is stateless (memoryless head): predict afresh from this observation.
        runner.reset(1)
    batch = {k: v[None] for k, v in req.obs.items()}
    action = runner.act(batch)[0]
    return _reply(runner, action, batch, req.chunk, {**runner.last_timing, "queue_ms": queue_ms, "batch_size": 1})


def _reply(runner: Any, action: np.ndarray, batch: dict, chunk: bool, timing: dict) -> dict:
    out: dict[str, Any] = {"action": action, "timing": timing}
    if chunk:
        # The rest of the executed part of the chunk: act() pops the queued actions without running the model.
        out["actions"] = np.stack([action] + [runner.act(batch)[0] for _ in range(runner.n_action_steps - 1)])
    return out


def can_batch(runner: Any) -> bool:
    return all(hasattr(runner, k) for k in _STATE) and getattr(runner, "n_envs", 0) == 1


def _snapshot(runner: Any) -> tuple:
    chunks = [deque((deque(c) for c in ch), maxlen=ch.maxlen) for ch in runner._chunks]
    return ([deque(h, maxlen=h.maxlen) for h in runner._history], [deque(q) for q in runner._queue], chunks)


def act_together(reqs: list[Request]) -> list[dict | BaseException]:
    """Each request's reply (or the exception it alone raises), computed in one batch."""
    t_start = time.perf_counter()
    for req in reqs:
        if req.reset or req.chunk:
            req.runner.reset(1)
    saved = [_snapshot(req.runner) for req in reqs]
    combo = copy.copy(reqs[0].runner)
    combo.n_envs = len(reqs)
    for name in _STATE:
        setattr(combo, name, [getattr(req.runner, name)[0] for req in reqs])
    batch = {k: np.stack([req.obs[k] for req in reqs]) for k in reqs[0].obs}
    try:
        actions = combo.act(batch, env_ids=range(len(reqs)))
    except Exception:  # noqa: BLE001 -- whose request it was is found out one by one
        for req, state in zip(reqs, saved):
            for name, value in zip(_STATE, state):
                setattr(req.runner, name, value)
        return [_alone_or_error(req) for req in reqs]
    out: list[dict | BaseException] = []
    for k, req in enumerate(reqs):
        for name in _STATE:  # the ensemble replaces its deques: hand back what the slot holds now
            setattr(req.runner, name, [getattr(combo, name)[k]])
        timing = {
            **combo.last_timing,
            "queue_ms": (t_start - req.t_queued) * 1e3,
            "batch_size": len(reqs),
        }
        req.runner.last_timing = combo.last_timing
        single = {key: v[None] for key, v in req.obs.items()}
        try:
            out.append(_reply(req.runner, actions[k], single, req.chunk, timing))
        except Exception as e:  # noqa: BLE001 -- handed to that request's connection
            out.append(e)
    return out


def _alone_or_error(req: Request) -> dict | BaseException:
    try:
        return run_alone(req)
    except Exception as e:  # noqa: BLE001 -- handed to that request's connection
        return e


class Batcher:
    """The inference thread. ``submit(request)`` -> its future; ``call(fn, *args)`` runs ``fn`` on
    the same thread (warm-up: CUDA graphs belong to the thread that captured them)."""

    def __init__(self, max_batch: int = 1, window_ms: float = 0.0):
        self.max_batch, self.window_s = max(1, int(max_batch)), max(0.0, window_ms) / 1e3
        self.connections = 0  # open connections, kept by the server: nobody else can join a full batch
        self.stats = {"batches": 0, "batched_requests": 0, "largest_batch": 0}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="s2robot-infer", daemon=True)
        self._thread.start()

    def submit(self, req: Request) -> Future:
        self._queue.put(req)
        return req.future

    def call(self, fn, *args) -> Future:
        fut: Future = Future()
        self._queue.put((fn, args, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        later: deque = deque()  # items taken while gathering that cannot join this batch
        while True:
            item = later.popleft() if later else self._queue.get()
            if item is None:
                return
            if not isinstance(item, Request):
                _settle(item[2], item[0], *item[1])
                continue
            batch = [item]
            deadline = time.perf_counter() + (self.window_s if self.connections > 1 else 0.0)
            while len(batch) < min(self.max_batch, max(self.connections, 1)) and not later:
                try:
                    wait = deadline - time.perf_counter()
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(nxt, Request) and all(nxt.runner is not r.runner for r in batch):
                    batch.append(nxt)
                else:
                    later.append(nxt)
            self._run(batch)

    def _run(self, batch: list[Request]) -> None:
        batch = [r for r in batch if r.future.set_running_or_notify_cancel()]  # skip connections gone
        groups: dict[int, list[Request]] = {}
        for req in batch:  # copies of one controller share its policy module
            key = id(getattr(req.runner, "policy", req.runner)) if can_batch(req.runner) else id(req)
            groups.setdefault(key, []).append(req)
        for reqs in groups.values():
            self.stats["batches"] += 1
            self.stats["batched_requests"] += len(reqs)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(reqs))
            if len(reqs) == 1:
                _settle(reqs[0].future, run_alone, reqs[0], running=True)
                continue
            try:
                results = act_together(reqs)
            except BaseException as e:  # noqa: BLE001 -- every waiting connection must hear of it
                results = [e] * len(reqs)
            for req, res in zip(reqs, results):
                if isinstance(res, BaseException):
                    req.future.set_exception(res)
                else:
                    req.future.set_result(res)


def _settle(fut: Future, fn, *args, running: bool = False) -> None:
    if not running and not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(fn(*args))
    except BaseException as e:  # noqa: BLE001 -- delivered to the caller
        fut.set_exception(e)
