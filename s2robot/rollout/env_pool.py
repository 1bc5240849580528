"""CubePick environments in worker processes, stepped in lockstep over pipes.

Each worker builds its own env (and so its own OpenGL context) after it starts: the pool
uses the ``spawn`` context because forking a process that already holds a GL context crashes.
This module imports only numpy at the top, so a spawned worker does not pay for torch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

INFO_KEYS = ("cube_pos", "cube_quat", "cube_height", "is_success")  # what the evaluator needs from `info`


class WorkerError(RuntimeError):
    """A worker process failed or died; the message carries its traceback."""


def _small_info(info: Mapping[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in INFO_KEYS}


def _worker(conn, env_cfg: dict, overrides: dict, render_threads: int) -> None:
    # Ctrl-C reaches the whole process group: the main process handles it and closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("MUJOCO_GL", "egl")
    # Mesa's CPU renderer (llvmpipe) starts one thread per core in every process: N workers on
    # N cores would fight over them (measured: 2 workers 1.46x the episodes/min of 1 with one
    # render thread each, 0.67x with the default). Read when the GL context is made; no effect on a GPU.
    os.environ.setdefault("LP_NUM_THREADS", str(render_threads))
    env = None
    try:
        from envs.cube_pick import make_env

        env = make_env(env_cfg, **overrides)
        conn.send(("ready", None))
        while True:
            try:
                cmd, arg = conn.recv()
            except EOFError:  # the main process is gone
                break
            if cmd == "reset":
                t0 = time.perf_counter()
                obs, info = env.reset(seed=int(arg))
                conn.send(("ok", (obs, _small_info(info), time.perf_counter() - t0)))
            elif cmd == "step":
                t0 = time.perf_counter()
                obs, _, terminated, truncated, info = env.step(arg)
                conn.send(("ok", (obs, terminated, truncated, _small_info(info), time.perf_counter() - t0)))
            elif cmd == "close":
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
    except Exception as e:  # report, then exit: the main process raises WorkerError
        try:
            conn.send(("error", (type(e).__name__, str(e), traceback.format_exc())))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if env is not None:
            env.close()
        conn.close()


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 1


class EnvPool:
    """``n`` CubePick envs in ``n`` processes. ``reset(ids, seeds)`` and ``step(ids, actions)``
    send to all the given workers first, then collect, so the envs run in parallel.

    Use as a context manager: leaving it (normally, on an exception or on KeyboardInterrupt)
    closes every worker and terminates any that do not exit in time, so none is orphaned.
    """

    def __init__(
        self,
        n: int,
        env_cfg: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        start_timeout: float = 300.0,
    ):
        self.n = int(n)
        ctx = mp.get_context("spawn")
        render_threads = max(1, cpu_cores() // self.n)
        self._conns, self.procs = [], []
        try:
            for i in range(self.n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=_worker,
                    args=(child, dict(env_cfg), dict(overrides or {}), render_threads),
                    name=f"s2robot-env-{i}",
                    daemon=True,
                )
                proc.start()
                child.close()  # only the worker holds its end: recv() sees EOF if it dies
                self._conns.append(parent)
                self.procs.append(proc)
            for i in range(self.n):
                self._recv(i, timeout=start_timeout)  # "ready": env built, or its error raised here
        except BaseException:
            self.close()
            raise

    def _recv(self, i: int, timeout: float | None = None):
        conn = self._conns[i]
        try:
            if timeout is not None and not conn.poll(timeout):
                raise WorkerError(f"env worker {i} did not answer within {timeout:.0f} s")
            status, payload = conn.recv()
        except (EOFError, ConnectionResetError) as e:
            self.procs[i].join(1.0)
            raise WorkerError(
                f"env worker {i} died (exit code {self.procs[i].exitcode}); its error is printed above. "
                "Workers are spawned and re-import the main script: guard a script that starts "
                "them with `if __name__ == '__main__':`"
            ) from e
        if status == "error":
            name, msg, tb = payload
            raise WorkerError(f"env worker {i} raised {name}: {msg}\n{tb}")
        return payload

    def reset(self, ids: Sequence[int], seeds: Sequence[int]) -> list:
        """-> per id: (obs, info, seconds)."""
        for i, seed in zip(ids, seeds):
            self._conns[i].send(("reset", int(seed)))
        return [self._recv(i) for i in ids]

    def step(self, ids: Sequence[int], actions: np.ndarray) -> list:
        """-> per id: (obs, terminated, truncated, info, seconds)."""
        for i, action in zip(ids, actions):
            self._conns[i].send(("step", np.asarray(action)))
        return [self._recv(i) for i in ids]

    def close(self, timeout: float = 10.0) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():  # stuck in a step or a blocked send: stop it
                proc.terminate()
                proc.join(5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._conns, self.procs = [], []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
