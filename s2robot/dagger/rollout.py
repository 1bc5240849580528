"""Closed-loop episodes of a trained policy, every visited state labelled by the scripted expert.

Envs run in worker processes (EnvPool, as in evaluation) and the policy batches across them in
this process. Each step records what a demonstration records (every camera of the env, proprio,
cube pose) with the expert's action for that state as ``action``; what was executed is the
policy's action, or with probability ``beta`` the expert's (DAgger's mixture policy), and is kept
as ``action_executed`` when the store records it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.expert import ScriptedExpert
from s2robot.observations import policy_obs
from s2robot.rollout.env_pool import EnvPool

PRIVILEGED_STATE = ("cube_pos", "cube_quat")  # what the expert reads besides proprio; DAgger stores need it
_BETA_STREAM = 0xBE7A  # the expert-or-policy coin: a generator of its own per seed


def recordable_keys(env_cfg: Mapping[str, Any]) -> set[str]:
    """The per-step keys a DAgger episode can record in an env made from ``env_cfg``."""
    return {*env_cfg.get("cameras", ()), "proprio", "action", "action_executed", *PRIVILEGED_STATE}


class _Episode:
    def __init__(self, seed: int, keys: Sequence[str]):
        self.seed = seed
        self.steps: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        self.rng = np.random.default_rng((seed, _BETA_STREAM))
        self.expert_steps = 0

    def record(
        self, obs: Mapping[str, np.ndarray], info: Mapping[str, Any], label: np.ndarray, executed: np.ndarray
    ) -> None:
        for key, values in self.steps.items():
            if key == "action":
                values.append(label)
            elif key == "action_executed":
                values.append(executed)
            elif key in PRIVILEGED_STATE:
                values.append(np.asarray(info[key], dtype=np.float32))
            else:
                values.append(obs[key])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.steps.items()}


def rollout_relabel(
    controller,
    env_cfg: Mapping[str, Any],
    seeds: Sequence[int],
    keys: Sequence[str],
    on_episode: Callable[[int, dict[str, np.ndarray], bool], None],
    n_workers: int = 1,
    beta: float = 0.0,
    expert: ScriptedExpert | None = None,
    progress: bool = False,
) -> dict:
    """Run one episode per seed with ``controller`` in ``n_workers`` envs made from ``env_cfg``;
    ``on_episode(seed, arrays, success)`` receives each finished episode (``arrays``: ``keys``, one
    row per step). ``success``: the episode's own outcome, under the executed actions.

    Returns counts and timings: ``policy_s`` (the controller), ``relabel_s`` (the expert),
    ``env_s`` (waiting on the workers), ``store_s`` (``on_episode``), ``startup_s`` (workers)."""
    from tqdm import tqdm

    unknown = sorted(set(keys) - recordable_keys(env_cfg))
    if unknown:
        raise ValueError(f"cannot record {unknown} in this env; it gives {sorted(recordable_keys(env_cfg))}")
    expert = expert or ScriptedExpert()
    t = {"startup_s": 0.0, "policy_s": 0.0, "relabel_s": 0.0, "env_s": 0.0, "store_s": 0.0}
    stats = {"episodes": 0, "successes": 0, "steps": 0, "expert_steps": 0}
    n_workers = max(1, min(int(n_workers), len(seeds)))
    bar = tqdm(total=len(seeds), desc="dagger rollouts", unit="ep", disable=not progress)
    t0 = time.perf_counter()
    try:
        with EnvPool(n_workers, dict(env_cfg)) as pool:
            t["startup_s"] = time.perf_counter() - t0
            _run(pool, controller, expert, list(seeds), list(keys), on_episode, n_workers, beta, t, stats, bar)
    finally:
        bar.close()
    return {**stats, **{k: round(v, 3) for k, v in t.items()}, "total_s": round(time.perf_counter() - t0, 3)}


def _run(
    pool: EnvPool,
    controller,
    expert: ScriptedExpert,
    seeds: list[int],
    keys: list[str],
    on_episode,
    n_workers: int,
    beta: float,
    t: dict,
    stats: dict,
    bar,
) -> None:
    """Every seed, each worker starting the next one as soon as its episode ends (as evaluation does)."""
    obs_keys = controller.obs_keys
    ids = list(range(n_workers))
    current: list[tuple[dict, dict] | None] = [(obs, info) for obs, info, _ in pool.reset(ids, seeds[:n_workers])]
    episodes: list[_Episode | None] = [_Episode(s, keys) for s in seeds[:n_workers]]
    next_index = n_workers
    controller.reset(n_workers)
    while any(ep is not None for ep in episodes):
        live = [i for i, ep in enumerate(episodes) if ep is not None]
        t0 = time.perf_counter()
        inputs = [policy_obs(*current[i], obs_keys) for i in live]
        batch = {k: np.stack([x[k] for x in inputs]) for k in obs_keys}
        actions = controller.act(batch, env_ids=live)
        t1 = time.perf_counter()
        labels = [expert.label(*current[i]) for i in live]
        t["policy_s"] += t1 - t0
        t["relabel_s"] += time.perf_counter() - t1
        executed = []
        for i, action, label in zip(live, actions, labels):
            ep = episodes[i]
            use_expert = beta > 0 and ep.rng.uniform() < beta
            ep.expert_steps += int(use_expert)
            chosen = label if use_expert else np.asarray(action, dtype=np.float32)
            ep.record(*current[i], label, chosen)
            executed.append(chosen)
        t0 = time.perf_counter()
        results = pool.step(live, np.stack(executed))
        t["env_s"] += time.perf_counter() - t0
        done = []
        for i, (obs, terminated, truncated, info, _) in zip(live, results):
            current[i] = (obs, info)
            if terminated or truncated:
                ep = episodes[i]
                arrays = ep.arrays()
                t0 = time.perf_counter()
                on_episode(ep.seed, arrays, bool(info["is_success"]))
                t["store_s"] += time.perf_counter() - t0
                stats["episodes"] += 1
                stats["successes"] += int(info["is_success"])
                stats["steps"] += len(arrays["action"])
                stats["expert_steps"] += ep.expert_steps
                bar.update(1)
                done.append(i)
        restart = done[: max(0, len(seeds) - next_index)]
        for i in done[len(restart) :]:
            episodes[i] = current[i] = None
        if restart:
            new_seeds = seeds[next_index : next_index + len(restart)]
            next_index += len(restart)
            for i, seed, (obs, info, _) in zip(restart, new_seeds, pool.reset(restart, new_seeds)):
                current[i], episodes[i] = (obs, info), _Episode(seed, keys)
                controller.reset_env(i)
