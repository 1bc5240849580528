"""Collections killed with SIGKILL at many points, the first episode of a new store included: every
store opens, every committed episode is byte-equal to a clean collection's, a rerun completes.

The simulator's GL context takes ~3 s per process, so one driver process imports the collection
stack once and forks each collection: a clean reference, and two chains of five killed runs and a
final rerun, each chain on its own store, the three side by side. Kills come two ways, from a
seeded RNG:
- at the k-th file zarr writes (half of it written to the temporary file zarr renames from, as a
  kill mid-write leaves it): hits creation, a first episode, a commit, exactly;
- at a random time (< 0.2 s) after the run writes its first frame: lands wherever the run is,
  writing the episode or simulating the next.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# A short horizon: the expert cannot finish, so every episode is kept (keep_failures) and is
# HORIZON steps: HORIZON frame files plus ~15 others written per episode.
HORIZON = 15
ENV = {"image_size": 32, "cameras": ["agentview"], "horizon": HORIZON}
N_EPISODES = 4
N_KILLS = 10


def _episode_digests(path: str) -> dict:
    from s2robot.data.replay_buffer import ReplayBuffer

    store = ReplayBuffer.open(path)
    digests = {}
    for i, seed in enumerate(store.episode_seeds):
        episode = store.get_episode(i)
        h = hashlib.sha1()
        for key in sorted(episode):
            h.update(key.encode() + episode[key].tobytes())
        digests[int(seed)] = h.hexdigest()
    return {"n_episodes": store.n_episodes, "digests": digests, "problems": store.verify()}


def _child(store: str, kill: tuple, ready_fd: int) -> None:
    """One collection (never returns). kill = ("write", k) | ("time", s) | ("none", 0). A "time"
    child tells the parent (one byte on ready_fd) when it writes its first frame."""
    import zarr.storage._local as local

    import s2robot.data.collect as collect

    put, count = local._put, [0]

    def put_or_die(path, value, exclusive=False):
        count[0] += 1
        if kill[0] == "write" and count[0] == kill[1]:
            data = bytes(value.as_buffer_like())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(f".{os.getpid()}.partial").write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        if kill[0] == "time" and "/data/agentview/c/" in path.as_posix() and not told:
            told.append(os.write(ready_fd, b"w"))
        return put(path, value, exclusive)

    told: list = []
    local._put = put_or_die
    collect.collect_demos(ENV, store, n_episodes=N_EPISODES, keep_failures=True, progress=False)
    os._exit(0)


def _fork(store: str, kill: tuple) -> tuple[int, int]:
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        try:
            _child(store, kill, ready_w)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(ready_w)
    return pid, ready_r


def _wait(pid: int, ready_r: int, delay: float | None) -> int:
    """Exit status of the child (negative: killed by that signal); SIGKILL it `delay` s after it tells."""
    if delay is not None and os.read(ready_r, 1):  # b"" when it ended before
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    os.close(ready_r)  # only now: the child may write to it
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _state(store: str) -> dict:
    if not os.path.exists(store):
        return {"exists": False, "n_episodes": 0}
    data = sorted(e.name for e in os.scandir(os.path.join(store, "data")) if e.is_dir())
    return {"exists": True, "data_arrays": data, **_episode_digests(store)}


def _chain(store: str, first: list[tuple], n_kills: int, seed: int) -> dict:
    """Killed runs on one store until n_kills kills, then a run left to finish. After the `first`
    kills, each kill is drawn to land before the run could finish: at a write no later than
    HORIZON + 10 per episode still to collect, or, with three or more left, up to 0.2 s after the
    run's first frame write (two more episodes to simulate take longer)."""
    rng = np.random.default_rng(seed)
    trials = []
    while len(trials) < n_kills:
        left = N_EPISODES - _state(store)["n_episodes"]
        if len(trials) < len(first):
            kill = first[len(trials)]
        elif left >= 3 and rng.random() < 0.5:
            kill = ("time", round(float(rng.uniform(0.0, 0.2)), 3))
        else:
            kill = ("write", int(rng.integers(1, (HORIZON + 10) * left + 1)))
        status = _wait(*_fork(store, kill), kill[1] if kill[0] == "time" else None)
        trials.append({"kill": kill, "status": status, **_state(store)})
    return {"trials": trials, "final_status": _wait(*_fork(store, ("none", 0)), None), "final": _state(store)}


def drive(workdir: str) -> None:
    """Runs in its own process; forks a clean reference and two chains of killed runs (one store
    each) side by side, each forking its collections. Prints a JSON report."""
    import omegaconf  # noqa: F401  -- imported before forking: each child skips that time
    import robosuite  # noqa: F401
    import zarr.storage._local as local

    import s2robot.data.collect  # noqa: F401
    from s2robot.data.replay_buffer import ReplayBuffer

    # how many files a store's creation writes, to aim kills before and after it
    put, count = local._put, [0]
    local._put = lambda *a, **k: (count.__setitem__(0, count[0] + 1), put(*a, **k))[1]
    ReplayBuffer.create(os.path.join(workdir, "probe.zarr"))
    local._put, create = put, count[0]

    rng = np.random.default_rng(0)
    ref, a, b = (os.path.join(workdir, name) for name in ("ref.zarr", "a.zarr", "b.zarr"))
    # a: killed during its creation, then mid first episode; b: late in its first episode (meta, commit)
    first_a = [("write", int(rng.integers(1, create + 1))), ("write", create + int(rng.integers(2, HORIZON + 2)))]
    first_b = [("write", create + int(rng.integers(HORIZON + 3, 2 * HORIZON + 6)))]
    jobs = {
        "reference": lambda: {"final_status": _wait(*_fork(ref, ("none", 0)), None), "final": _state(ref)},
        "a": lambda: _chain(a, first_a, N_KILLS // 2, 1),
        "b": lambda: _chain(b, first_b, N_KILLS - N_KILLS // 2, 2),
    }
    started, pids = time.perf_counter(), {}
    for name, job in jobs.items():
        pid = os.fork()
        if pid == 0:
            try:
                Path(workdir, name + ".json").write_text(json.dumps(job()))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(0)
        pids[name] = pid
    for pid in pids.values():
        os.waitpid(pid, 0)
    report = {name: json.loads(Path(workdir, name + ".json").read_text()) for name in jobs}
    report["create_writes"], report["seconds"] = create, round(time.perf_counter() - started, 1)
    print("REPORT " + json.dumps(report))


@pytest.mark.slow
def test_collection_survives_kill_9_anywhere(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", f"from tests.data.test_collect_crash import drive; drive({str(tmp_path)!r})"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "OMP_NUM_THREADS": "1"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT ") :])
    assert report["reference"]["final_status"] == 0 and report["reference"]["final"]["n_episodes"] == N_EPISODES
    reference = report["reference"]["final"]["digests"]
    trials = report["a"]["trials"] + report["b"]["trials"]
    assert all(t["status"] == -signal.SIGKILL for t in trials) and len(trials) >= N_KILLS, trials
    first = report["a"]["trials"]
    assert not first[0]["exists"], "a store killed during its creation must not exist half-made"
    assert first[1]["n_episodes"] == 0 and first[1]["data_arrays"], "meant to die mid first episode"
    assert any(t["n_episodes"] > 0 for t in trials), "no kill after a committed episode"
    for chain in (report["a"], report["b"]):
        committed = 0
        for t in chain["trials"]:
            if t["exists"]:
                assert t["problems"] == [], t  # it opens (read-only), every committed chunk intact
                assert t["n_episodes"] >= committed, "a committed episode was lost"
                committed = t["n_episodes"]
                for seed, digest in t["digests"].items():
                    assert reference[seed] == digest, f"episode of seed {seed} differs from the clean collection"
        assert chain["final_status"] == 0  # a rerun reaches the requested count
        assert chain["final"]["digests"] == reference and chain["final"]["problems"] == []
