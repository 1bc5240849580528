"""Batching across robots: each client gets exactly the actions it would get alone (fp32 eager:
within 1e-5, the only difference being the batch size a GEMM sees), whatever it shares a batch with."""

import copy
import threading

import numpy as np
import pytest

from s2robot.rollout.controller import NonFiniteActionError, PolicyController
from s2robot.serving import ServingError
from s2robot.serving.batching import Request, act_together, check_batching, run_alone
from s2robot_client import PolicyClient
from tests.serving.helpers import serving, tiny_run

ATOL = 1e-5


@pytest.fixture(scope="module")
def runner(tiny_store, tmp_path_factory):
    return PolicyController.from_checkpoint(tiny_run(tiny_store, tmp_path_factory.getbasetemp()))


def _obs(rng):
    return {
        "agentview": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        "proprio": rng.normal(size=9).astype(np.float32),
    }


def _script(seed, n=7):
    """A client's requests: plain steps, an episode reset and a chunk request among them."""
    rng = np.random.default_rng(seed)
    flags = [{}, {}, {"reset": True}, {}, {"chunk": True}, {}, {}][:n]
    return [(_obs(rng), f) for f in flags]


def _alone(runner, script):
    own = copy.copy(runner)
    own.reset(1)
    out = []
    for obs, flags in script:
        reply = run_alone(Request(own, obs, **flags))
        out.append(reply.get("actions", reply["action"]))
    return out


def test_clients_served_together_get_their_own_actions(runner):
    scripts = {i: _script(i) for i in range(4)}
    want = {i: _alone(runner, s) for i, s in scripts.items()}
    got, errors = {}, []
    start = threading.Barrier(len(scripts))

    def client(i, port):
        try:
            with PolicyClient(f"ws://127.0.0.1:{port}", retries=0) as c:
                start.wait()
                got[i] = []
                for obs, flags in scripts[i]:
                    reply = c.infer(obs, **flags)
                    got[i].append(reply.get("actions", reply["action"]))
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    # A long window makes the four clients' requests meet in batches however the threads are scheduled.
    with serving(runner, max_batch=8, batch_window_ms=20) as server:
        threads = [threading.Thread(target=client, args=(i, server.port)) for i in scripts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = server.batcher.stats
    assert not errors, errors
    assert stats["largest_batch"] > 1, stats  # the test is void if nothing was batched
    for i in scripts:
        assert len(got[i]) == len(want[i])
        for g, w in zip(got[i], want[i]):
            np.testing.assert_allclose(g, w, atol=ATOL, rtol=0)


@pytest.mark.parametrize("ensemble", [False, True])
def test_act_together_keeps_each_episode_apart(runner, ensemble):
    """Step by step, three robots in one batch vs each alone, with the ensemble's per-step chunks."""
    base = copy.copy(runner)
    base.temporal_ensemble = ensemble
    scripts = [_script(10 + i, n=4 if ensemble else 7) for i in range(3)]
    if ensemble:  # chunk requests need a memoryless, unensembled head
        scripts = [[(o, {k: v for k, v in f.items() if k != "chunk"}) for o, f in s] for s in scripts]
    want = [_alone(base, s) for s in scripts]
    robots = [copy.copy(base) for _ in scripts]
    for r in robots:
        r.reset(1)
    for step in range(len(scripts[0])):
        replies = act_together([Request(r, *s[step][:1], **s[step][1]) for r, s in zip(robots, scripts)])
        for k, reply in enumerate(replies):
            np.testing.assert_allclose(reply.get("actions", reply["action"]), want[k][step], atol=ATOL, rtol=0)
            assert reply["timing"]["batch_size"] == 3


def test_a_failing_request_does_not_spoil_the_others(runner):
    robots = [copy.copy(runner) for _ in range(3)]
    for r in robots:
        r.reset(1)
    rng = np.random.default_rng(5)
    obs = [_obs(rng) for _ in robots]
    bad = {**obs[1], "proprio": np.full(9, np.nan, np.float32)}
    replies = act_together([Request(robots[0], obs[0]), Request(robots[1], bad), Request(robots[2], obs[2])])
    assert isinstance(replies[1], NonFiniteActionError)
    for k in (0, 2):
        np.testing.assert_allclose(replies[k]["action"], _alone(runner, [(obs[k], {})])[0], atol=ATOL, rtol=0)
    # the failed robot's episode is untouched: its next request is its first
    np.testing.assert_allclose(
        act_together([Request(robots[1], obs[1]), Request(robots[0], obs[0])])[0]["action"],
        _alone(runner, [(obs[1], {})])[0],
        atol=ATOL,
        rtol=0,
    )


def test_unbatched_server_still_answers(runner):
    obs = _obs(np.random.default_rng(7))
    with serving(runner, max_batch=1) as server, PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0) as c:
        reply = c.infer(obs)
        assert reply["timing"]["batch_size"] == 1 and c.metadata["max_batch"] == 1
    np.testing.assert_allclose(reply["action"], _alone(runner, [(obs, {})])[0], atol=0)


@pytest.mark.parametrize(("max_batch", "window"), [(0, 1.0), (2.5, 1.0), (True, 1.0), (4, -1), (4, 100)])
def test_bad_batching_options(max_batch, window):
    with pytest.raises(ServingError, match="max_batch|batch_window_ms"):
        check_batching(max_batch, window)


def test_a_compile_that_fails_at_warm_up_is_said_and_served_eager(runner, monkeypatch, caplog):
    import logging

    import torch

    def broken(fn, **kw):
        def run(x):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    compiled = PolicyController(runner.ckpt, compile=True)
    obs = _obs(np.random.default_rng(8))
    with caplog.at_level(logging.WARNING), serving(compiled, max_batch=2) as server:
        with PolicyClient(f"ws://127.0.0.1:{server.port}", retries=0) as c:
            assert c.metadata["inference"] == {"device": "cpu", "dtype": "fp32", "compile": False}
            action = c.infer(obs)["action"]
    assert "torch.compile failed for vit_t (RuntimeError: no C++ compiler); running eager fp32" in caplog.text
    np.testing.assert_allclose(action, _alone(runner, [(obs, {})])[0], atol=0)
