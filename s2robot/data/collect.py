"""Collect scripted-expert demonstrations of CubePick-v0 into a ReplayBuffer (resumable).

Two kinds of expert noise, recorded in the store's ``expert`` attrs:
- ``label_noise``: Gaussian noise on the arm action that is executed AND recorded as the label,
  so the demos themselves are noisy (the older ``expert_noise``/``expert.noise``);
- ``dart_noise`` (DART, Laskey et al. 2017): Gaussian noise on the EXECUTED arm action only,
  while the label stays the expert's clean action for the state reached. The demos then visit
  the off-course states a learned policy drifts into, each labelled with the way back. The
  executed action is stored too, as ``action_executed``. ``dart_per_episode``: each episode
  draws its std uniformly from [0, dart_noise] (a spread of noise levels in one store, as in
  DART's noise sweep), instead of dart_noise for every episode.
The gripper command is never noised.

Somewhat over 250 lines: ``collect_demos`` is one resumable loop (store checks, seeds, attempts,
atomic episodes, progress) whose parts share the state a resumed run must continue from.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from envs.cube_pick import DEFAULT_PLACEMENT, CubePickEnv, make_env
from envs.expert import ScriptedExpert
from envs.seeds import DEMO_SEED_START, EVAL_SEED_START, check_demo_seeds
from s2robot.data.replay_buffer import ReplayBuffer, StoreError

_DART_STREAM = 0xDA27  # DART noise: a generator of its own per seed, apart from the expert's label noise
_VERSIONED = ("s2robot", "robosuite", "mujoco", "numpy", "zarr", "gymnasium")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def env_config_dict(env_cfg: Mapping[str, Any] | Any) -> dict[str, Any]:
    """A complete, JSON-ready env config: the given keys over CubePickEnv's defaults.

    Stores record the full config, so a store made from a partial config (tests, benchmarks)
    still says exactly which env produced it, and resume checks compare like with like."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(env_cfg, DictConfig):
        env_cfg = OmegaConf.to_container(env_cfg, resolve=True)
    params = inspect.signature(CubePickEnv.__init__).parameters
    defaults = {name: p.default for name, p in params.items() if name not in ("self", "render_mode")}
    cfg = {**defaults, **dict(env_cfg)}
    cfg["id"] = cfg["id"] or "CubePick-v0"
    cfg["placement"] = {**DEFAULT_PLACEMENT, **(cfg["placement"] or {})}
    # a JSON round trip turns tuples into lists, as the store attrs will hold them
    return json.loads(json.dumps(cfg))


def dart_std(seed: int, dart_noise: float, per_episode: bool) -> float:
    """The DART noise std of the episode of ``seed``: ``dart_noise``, or with ``per_episode`` a
    reproducible draw from U[0, dart_noise]."""
    if dart_noise <= 0 or not per_episode:
        return float(max(dart_noise, 0.0))
    return float(dart_noise * np.random.default_rng((seed, _DART_STREAM, 1)).uniform())


def run_expert_episode(
    env: CubePickEnv, expert: ScriptedExpert, seed: int, dart_noise: float = 0.0, dart_per_episode: bool = False
) -> tuple[dict[str, np.ndarray], bool]:
    """One seeded expert rollout: per-step observation (before the action), the expert's action
    (the label), the cube pose and, with ``dart_noise`` > 0, the action executed instead
    (``action_executed``: the label plus Gaussian noise on the arm part, clipped to [-1, 1])."""
    obs, info = env.reset(seed=seed)
    expert.reset(seed=seed)
    std = dart_std(seed, dart_noise, dart_per_episode)
    rng = np.random.default_rng((seed, _DART_STREAM))  # apart from the label noise's generator
    keys = [*obs, "action", "cube_pos", "cube_quat"] + (["action_executed"] if dart_noise > 0 else [])
    steps: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    while True:
        action = expert.act(obs, info)
        executed = action
        if dart_noise > 0:
            executed = action.copy()
            executed[:6] = np.clip(executed[:6] + rng.normal(0.0, 1.0, 6) * std, -1.0, 1.0)
            steps["action_executed"].append(executed)
        for k, v in obs.items():
            steps[k].append(v)
        steps["action"].append(action)
        steps["cube_pos"].append(info["cube_pos"].astype(np.float32))
        steps["cube_quat"].append(info["cube_quat"].astype(np.float32))
        obs, _, terminated, truncated, info = env.step(executed)
        if terminated or truncated:
            break
    return {k: np.stack(v) for k, v in steps.items()}, bool(info["is_success"])


def expert_config(label_noise: float = 0.0, dart_noise: float = 0.0, dart_per_episode: bool = False) -> dict[str, Any]:
    """What a store records of the expert that made it (its ``expert`` attrs)."""
    return {
        "name": "ScriptedExpert",
        "label_noise": float(label_noise),
        "dart_noise": float(dart_noise),
        "dart_per_episode": bool(dart_per_episode and dart_noise > 0),
    }


def recorded_expert(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """A store's ``expert`` attrs in today's form: stores made before DART recorded
    ``{"name", "noise"}``, their noise being label noise."""
    made = attrs.get("expert")
    if isinstance(made, Mapping) and "noise" in made and "label_noise" not in made:
        return expert_config(label_noise=made["noise"])
    return dict(made) if isinstance(made, Mapping) else made


def _add_episode(buffer: ReplayBuffer, episode: dict[str, np.ndarray], seed: int, success: bool) -> None:
    try:
        buffer.add_episode(episode, seed=seed, success=success)
    except OSError as e:  # a full disk, a store made read-only: add_episode rolled the episode back
        raise StoreError(
            f"{buffer.path}: writing the episode of seed {seed} failed ({type(e).__name__}: {e}); the store "
            f"keeps its {buffer.n_episodes} committed episodes: free disk space (or fix permissions) and "
            f"run the same command again to resume"
        ) from e


def collect_demos(
    env_cfg: Mapping[str, Any] | Any,
    store_path: str | os.PathLike,
    n_episodes: int,
    seed_start: int = DEMO_SEED_START,
    expert_noise: float = 0.0,
    keep_failures: bool = False,
    progress: bool = True,
    max_attempts: int | None = None,
    background_writes: bool = True,
    label_noise: float = 0.0,
    dart_noise: float = 0.0,
    dart_per_episode: bool = False,
) -> dict[str, Any]:
    """Fill the store at `store_path` up to `n_episodes` expert episodes; returns a summary.

    Seeds run consecutively from `seed_start`. An existing store made with the same settings
    is resumed after the last demo seed it ran (stored or skipped; DAgger episodes in it have seeds
    of their own range); one made with other settings raises StoreError. Failed episodes are
    skipped (their seeds recorded) unless `keep_failures`. `label_noise`, `dart_noise` and
    `dart_per_episode`: see the module docstring; `expert_noise` is the older name of `label_noise`.
    With `background_writes`, an episode is compressed and written by one worker thread while
    the next one is simulated (at most one episode in flight, written in order).
    """
    store_path = os.fspath(store_path)
    env_dict = env_config_dict(env_cfg)
    if expert_noise and label_noise and expert_noise != label_noise:
        raise ValueError(f"expert_noise={expert_noise} is the older name of label_noise={label_noise}: give one")
    label_noise = label_noise or expert_noise
    expert_cfg = expert_config(label_noise, dart_noise, dart_per_episode)
    collection = {"seed_start": int(seed_start), "keep_failures": bool(keep_failures)}
    if os.path.exists(store_path):
        buffer = ReplayBuffer.open(store_path, mode="a")
        made_with = buffer.attrs
        made_with = {**made_with, "expert": recorded_expert(made_with)}
        for name, want in [("env", env_dict), ("expert", expert_cfg), ("collection", collection)]:
            if made_with.get(name) != want:
                raise StoreError(
                    f"{store_path}: existing store was collected with {name}={made_with.get(name)}, "
                    f"now asked for {name}={want}; choose another store path or delete this one"
                )
    else:
        os.makedirs(os.path.dirname(os.path.abspath(store_path)), exist_ok=True)
        buffer = ReplayBuffer.create(
            store_path,
            attrs={
                "env": env_dict,
                "expert": expert_cfg,
                "collection": collection,
                "eval_seed_start": EVAL_SEED_START,
                "versions": package_versions(),
            },
        )
    ran = np.concatenate([buffer.episode_seeds, buffer.skipped_seeds])
    ran = ran[ran < EVAL_SEED_START]  # demo seeds only: DAgger episodes added to the store have their own
    seed = max(int(seed_start), int(ran.max()) + 1 if len(ran) else 0)
    n_before = int((buffer.episode_round == 0).sum())  # demos: DAgger episodes do not count
    to_collect = max(0, n_episodes - n_before)
    max_attempts = max_attempts if max_attempts is not None else 2 * to_collect + 10
    summary = {"store": store_path, "n_episodes_before": n_before, "attempts": 0, "successes": 0}
    env_seconds = store_seconds = 0.0
    new_steps = 0
    if to_collect:
        check_demo_seeds(seed, to_collect)
        env = make_env(env_dict)
        expert = ScriptedExpert(noise=label_noise)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n_episodes, initial=n_before, desc="demos", unit="ep")
        writer = ThreadPoolExecutor(max_workers=1) if background_writes else None
        pending: Future | None = None
        n_kept = n_before

        def wait_pending() -> None:
            nonlocal pending, store_seconds
            if pending is not None:
                t = time.perf_counter()
                pending.result()  # re-raises a write error here
                store_seconds += time.perf_counter() - t
                pending = None

        try:
            while n_kept < n_episodes:
                if summary["attempts"] >= max_attempts:
                    raise RuntimeError(
                        f"expert succeeded {summary['successes']}/{summary['attempts']} times, too few to "
                        f"reach {n_episodes} demos; check the env config (placement, horizon) or expert noise"
                    )
                check_demo_seeds(seed, 1)
                t0 = time.perf_counter()
                episode, success = run_expert_episode(env, expert, seed, dart_noise, dart_per_episode)
                t1 = time.perf_counter()
                env_seconds += t1 - t0
                wait_pending()
                t1 = time.perf_counter()
                if success or keep_failures:
                    if writer is not None:
                        pending = writer.submit(_add_episode, buffer, episode, seed, success)
                    else:
                        _add_episode(buffer, episode, seed, success)
                    n_kept += 1
                    new_steps += len(episode["action"])
                    if bar is not None:
                        bar.update(1)
                else:
                    buffer.add_skipped_seed(seed)
                store_seconds += time.perf_counter() - t1
                summary["attempts"] += 1
                summary["successes"] += int(success)
                seed += 1
                if bar is not None:
                    bar.set_postfix(success=f"{summary['successes']}/{summary['attempts']}")
            wait_pending()
        finally:
            if writer is not None:
                writer.shutdown(wait=True)  # an interrupted run still commits the episode in flight
            if bar is not None:
                bar.close()
            env.close()
    summary.update(
        n_episodes=buffer.n_episodes,
        n_steps=buffer.n_steps,
        new_steps=new_steps,
        expert_success_rate=summary["successes"] / summary["attempts"] if summary["attempts"] else None,
        next_seed=seed,
        env_seconds=env_seconds,
        store_seconds=store_seconds,
        bytes_on_disk=buffer.nbytes_on_disk(),
    )
    return summary
