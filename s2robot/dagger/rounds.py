"""DAgger rounds as one job: from a trained run (or one trained here first), each round rolls the
current policy out on seeds of its own range (envs.seeds), labels every visited state with the
scripted expert, adds those episodes to the store (or a copy of it) marked with the round number,
extends the cached features by the new frames and retrains a head from scratch on everything.

Layout of the output directory:
    store.zarr/       store_mode=copy: the run's store (caches hard-linked) plus every round's episodes
    round_0/          the first policy, when trained here (run=null)
    round_<k>/        the policy retrained after round k (checkpoint.pt, metrics.csv, eval/)
    dagger.json       per round: seeds, rollout successes, timings (rollout, relabel, re-cache, train)

Everything a user can get wrong is checked by ``plan`` before any rollout or training.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from envs.seeds import dagger_seeds
from s2robot.checkpoint import load_checkpoint
from s2robot.cli import CONFIG_DIR
from s2robot.config.checks import show
from s2robot.dagger.store import check_store, copy_store
from s2robot.data.replay_buffer import ReplayBuffer, StoreError
from s2robot.errors import ConfigError
from s2robot.fileio import atomic_write

log = logging.getLogger(__name__)
GROUPS = ("env", "encoder", "policy", "experiment")  # train_policy's config groups
SUMMARY = "dagger.json"


@dataclass
class Start:
    base: DictConfig  # the training config of every round (data.store is replaced by the DAgger store)
    run_dir: Path | None  # the trained policy of round 0; None: train it here first
    store: Path  # the store that policy trained on (made by round 0's training when missing)


def compose_train(overrides: Sequence[str]) -> DictConfig:
    """configs/train_policy.yaml with ``overrides``, as train_policy.py composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from s2robot.config import register_configs

    register_configs()
    if GlobalHydra.instance().is_initialized():  # inside a Hydra command: its search path is configs/
        return compose("train_policy", overrides=list(overrides))
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train_policy", overrides=list(overrides))


def train_config(overrides: Sequence[str], base: Mapping[str, Any] | None = None) -> DictConfig:
    """The training config: train_policy.yaml with ``overrides`` or, given ``base`` (a checkpoint's
    config), that config with ``overrides`` (key=value only: its config groups are already chosen)."""
    if base is None:
        return compose_train(overrides)
    groups = [o for o in overrides if o.startswith(("+", "~")) or o.split("=", 1)[0] in GROUPS or "=" not in o]
    if groups:
        raise ConfigError(
            f"train_overrides={show(list(overrides))}: {show(groups)} add keys or choose config groups, "
            f"which a run's stored config cannot take; give key=value overrides (train.epochs=50), "
            f"or set run=null to train the first policy here with them"
        )
    cfg = compose_train([f"policy={base['policy']['name']}"])
    try:
        cfg = OmegaConf.merge(cfg, base)
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except Exception as e:  # omegaconf: a key or type the schema no longer has
        raise ConfigError(
            f"the run's training config does not fit today's train_policy schema "
            f"({str(e).splitlines()[0]}); retrain the run, or set run=null"
        ) from e


def _cameras(cfg: DictConfig) -> list[str]:
    if "vision" not in cfg.inputs:
        return []
    return [str(c) for c in cfg.data.get("cameras") or [cfg.data.camera]]


def plan(dcfg: DictConfig, out_dir: Path) -> Start:
    """Every check before work: the run, its config and store, the store's keys, the output."""
    from s2robot.training.preflight import validate

    overrides = list(dcfg.train_overrides)
    if dcfg.run:
        run_dir = Path(dcfg.run)
        ckpt = load_checkpoint(run_dir)
        if not ckpt.get("config"):
            raise ConfigError(
                f"run={dcfg.run}: its checkpoint holds no training config to retrain with; use a run "
                f"of train_policy.py, or set run=null to train the first policy here"
            )
        store = Path(os.path.abspath(ckpt["store"]["path"]))
        if not store.exists():
            raise StoreError(
                f"{store}: the store run={dcfg.run} was trained on is missing; DAgger adds its episodes "
                f"to that store (or a copy of it): put it back there, or set run=null to start anew"
            )
        base = train_config(overrides, ckpt["config"])
    else:
        run_dir, base = None, train_config(overrides)
        store = Path(os.path.abspath(base.data.store))
    base = OmegaConf.merge(base, {"data": {"store": str(store)}, "train": {"resume": False}})
    validate(base)  # the weights and the store the training config points at
    if store.exists():
        check_store(store, _cameras(base))
    if dcfg.store_mode == "copy" and (out_dir / "store.zarr").exists():
        raise StoreError(
            f"{out_dir / 'store.zarr'}: already exists; give DAgger a new run directory (hydra.run.dir=...)"
        )
    return Start(base=base, run_dir=run_dir, store=store)


def _write_summary(out_dir: Path, summary: dict) -> None:
    with atomic_write(out_dir / SUMMARY, "w") as f:
        f.write(json.dumps(summary, indent=2))


def _retrain(cfg: DictConfig, run_dir: Path) -> dict:
    """Features of the grown store (timed apart: only the new episodes' frames are encoded, the rest
    come from the previous round's cache), then a head trained from scratch on all episodes."""
    from s2robot.device import resolve_device
    from s2robot.training.inputs import load_inputs, prepare_store
    from s2robot.training.train import train

    store = prepare_store(cfg)  # round 0 may collect the demos first
    t0 = time.perf_counter()
    if "vision" in cfg.inputs:
        load_inputs(cfg, store, resolve_device(cfg.device))  # train() then reuses the cache
    t1 = time.perf_counter()
    metrics = train(cfg, run_dir, validated=True)
    return {"cache_s": round(t1 - t0, 3), "train_s": round(time.perf_counter() - t1, 3), "metrics": metrics}


def run_dagger(dcfg: DictConfig, out_dir: str | Path) -> dict:
    """``dcfg``: configs/dagger.yaml. Returns what ``out_dir/dagger.json`` holds."""
    # timm segfaults when first imported after a MuJoCo EGL context exists (round 0 may collect demos here)
    import s2robot.encoders.backbone  # noqa: F401
    from s2robot.dagger.rollout import rollout_relabel
    from s2robot.device import resolve_device
    from s2robot.rollout.controller import PolicyController
    from s2robot.rollout.env_pool import cpu_cores

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = plan(dcfg, out_dir)
    summary: dict[str, Any] = {
        "run": str(start.run_dir) if start.run_dir else None,
        "store_mode": dcfg.store_mode,
        "beta": dcfg.beta,
        "episodes_per_round": dcfg.episodes_per_round,
        "rounds": [],
    }
    run_dir = start.run_dir
    if run_dir is None:  # round 0: the first policy, on expert demos only (collected if missing)
        run_dir = out_dir / "round_0"
        t0 = time.perf_counter()
        summary["round_0"] = {**_retrain(start.base, run_dir), "checkpoint": str(run_dir)}
        summary["round_0"]["total_s"] = round(time.perf_counter() - t0, 3)
        check_store(start.store, _cameras(start.base))
    store = copy_store(start.store, out_dir / "store.zarr") if dcfg.store_mode == "copy" else start.store
    summary["store"] = str(store)
    buffer = ReplayBuffer.open(store, mode="a")
    env_cfg, keys = buffer.attrs["env"], buffer.keys
    first = int(buffer.episode_round.max(initial=0)) + 1  # a store DAgger already grew goes on numbering
    cfg = OmegaConf.merge(start.base, {"data": {"store": str(store), "collect_if_missing": False}})
    device = resolve_device(dcfg.device)
    n_workers = dcfg.n_workers or cpu_cores()
    for r in range(first, first + dcfg.rounds):
        t0 = time.perf_counter()
        seeds = dagger_seeds(r, dcfg.episodes_per_round)
        controller = PolicyController.from_checkpoint(run_dir, device=device)

        def add(seed: int, arrays: dict, success: bool, r: int = r) -> None:
            try:
                buffer.add_episode(arrays, seed=seed, success=success, episode_round=r)
            except OSError as e:  # add_episode rolled the episode back
                raise StoreError(
                    f"{store}: writing the DAgger episode of seed {seed} failed ({type(e).__name__}: "
                    f"{e}); the store keeps its {buffer.n_episodes} committed episodes: free disk "
                    f"space and run DAgger again in a new run directory"
                ) from e

        log.info("DAgger round %d: %d rollouts of %s (seeds %d..%d)", r, len(seeds), run_dir, seeds[0], seeds[-1])
        rollout = rollout_relabel(
            controller, env_cfg, seeds, keys, add, n_workers=n_workers, beta=dcfg.beta, progress=dcfg.progress
        )
        del controller
        policy_dir, run_dir = run_dir, out_dir / f"round_{r}"
        row = {
            "round": r,
            "seeds": [seeds[0], seeds[-1]],
            "policy": str(policy_dir),
            "rollout": rollout,
            "rollout_success_rate": rollout["successes"] / max(1, rollout["episodes"]),
            "store_episodes": buffer.n_episodes,
            "store_steps": buffer.n_steps,
            **_retrain(cfg, run_dir),
            "checkpoint": str(run_dir),
        }
        if dcfg.eval_episodes:
            row["eval"] = _evaluate(run_dir, dcfg, device)
        row["total_s"] = round(time.perf_counter() - t0, 3)
        summary["rounds"].append(row)
        _write_summary(out_dir, summary)
    summary["final_checkpoint"] = str(run_dir)
    _write_summary(out_dir, summary)
    return summary


def _evaluate(run_dir: Path, dcfg: DictConfig, device) -> dict:
    from s2robot.rollout.evaluate import evaluate

    t0 = time.perf_counter()
    result = evaluate(
        run_dir,
        run_dir / "eval",
        n_episodes=dcfg.eval_episodes,
        n_workers=dcfg.n_workers,
        n_videos=0,
        device=str(device),
        progress=dcfg.progress,
    )
    return {
        "n_episodes": dcfg.eval_episodes,
        "successes": int(result.get("successes", 0)),
        "success_rate": result.get("success_rate"),
        "success_ci95": result.get("success_ci95"),
        "eval_s": round(time.perf_counter() - t0, 3),
    }
