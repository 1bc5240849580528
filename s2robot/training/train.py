"""Behaviour cloning on cached frozen S² features: validate the config, make sure the demos
and features exist, train the head, checkpoint atomically. Runs under torchrun (DDP) too."""

from __future__ import annotations

import logging
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

# timm's first import (through triton's LLVM) segfaults once a MuJoCo EGL context exists, and training
# builds its encoders after collecting demos in this process (data.collect_if_missing): load it first.
import s2robot.encoders.backbone  # noqa: F401
from policies import make_policy
from s2robot.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from s2robot.data.replay_buffer import StoreError
from s2robot.device import resolve_device
from s2robot.errors import ConfigError
from s2robot.observations import PRIVILEGED_KEYS
from s2robot.robot_description import from_store_attrs
from s2robot.training.distributed import barrier, init_distributed
from s2robot.training.heldout import val_action_error, val_loss
from s2robot.training.inputs import load_inputs, prepare_store, visual_pools
from s2robot.training.metrics import MetricsLog
from s2robot.training.preflight import validate
from s2robot.training.schedule import warmup_cosine
from s2robot.training.windows import WindowData, split_episodes

log = logging.getLogger(__name__)
INPUTS = ("vision", "proprio", *PRIVILEGED_KEYS)
EXECUTION_KEYS = ("n_action_steps", "temporal_ensemble")
METRIC_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "lr", "seconds")


# -- the loop -----------------------------------------------------------------------------


class _LossModule(torch.nn.Module):
    """DDP hooks run on forward(), so the loss is the forward of a thin wrapper."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs, actions):
        return self.policy.compute_loss(obs, actions)


def _policy_kwargs(cfg: DictConfig) -> dict:
    kw = OmegaConf.to_container(cfg.policy, resolve=True)
    for k in ("name", *EXECUTION_KEYS):
        kw.pop(k, None)
    if pools := visual_pools(cfg):  # only when a camera sets its own: other heads' arguments stay as they were
        kw["visual_pools"] = pools
    return kw


def train(cfg: DictConfig, run_dir: str | Path, validated: bool = False) -> dict:
    """Train the head described by ``cfg``; returns the final metrics. Writes ``run_dir/checkpoint.pt``,
    ``metrics.csv`` and TensorBoard logs under ``run_dir/tb``. ``validated``: the caller already ran
    ``validate(cfg)`` (weights=auto checks a large file's MD5)."""
    run_dir = Path(run_dir)
    device, rank, world, distributed = init_distributed(resolve_device(cfg.device))

    if not validated:
        validate(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    store = prepare_store(cfg)
    robot = from_store_attrs(store.attrs)
    if store.n_episodes < 2:
        raise StoreError(f"{store.path}: {store.n_episodes} episode(s); training needs at least 2 (train + val)")
    arrays, camera_fields = load_inputs(cfg, store, device)
    actions = store["action"]
    if actions.shape[1] != robot.action_dim:
        raise StoreError(
            f"{store.path}: actions have {actions.shape[1]} elements but the store's robot {robot.name!r} declares "
            f"{robot.action_dim}; the store is inconsistent, record or import it again"
        )
    input_shapes = {k: tuple(v.shape[1:]) for k, v in arrays.items()}
    train_eps, val_eps = split_episodes(store.n_episodes, cfg.data.val_fraction, cfg.seed)
    inputs_t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    actions_t = torch.from_numpy(np.ascontiguousarray(actions, dtype=np.float32))
    pcfg = cfg.policy
    tr = WindowData(inputs_t, actions_t, store.episode_ends, train_eps, pcfg.n_obs_steps, pcfg.horizon)
    va = WindowData(inputs_t, actions_t, store.episode_ends, val_eps, pcfg.n_obs_steps, pcfg.horizon)

    policy = make_policy(pcfg.name, input_shapes, actions.shape[1], **_policy_kwargs(cfg))
    train_rows = np.concatenate([np.arange(*store.episode_slice(int(e)).indices(store.n_steps)) for e in train_eps])
    policy.normalizer.fit({**{k: v[train_rows] for k, v in arrays.items()}, "action": actions[train_rows]})
    policy.to(device).train()
    model = _LossModule(policy)
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    steps_per_epoch = max(1, math.ceil(len(tr) / world / cfg.train.batch_size))
    total_steps = steps_per_epoch * cfg.train.epochs
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, partial(warmup_cosine, warmup=cfg.train.warmup_steps, total=total_steps)
    )

    ckpt_path = run_dir / CHECKPOINT_NAME
    start_epoch, step = 0, 0
    if cfg.train.resume:
        if not ckpt_path.exists():
            raise ConfigError(
                f"train.resume=true but {ckpt_path} does not exist; set hydra.run.dir to the run to resume"
            )
        ckpt = load_checkpoint(ckpt_path)
        policy.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["train_state"]["optimizer"])
        sched.load_state_dict(ckpt["train_state"]["scheduler"])
        start_epoch, step = ckpt["train_state"]["epoch"], ckpt["train_state"]["step"]
        log.info("resuming %s at epoch %d (step %d)", ckpt_path, start_epoch, step)

    def payload(epoch: int, metrics: dict) -> dict:
        return {
            "policy": {"name": pcfg.name, "kwargs": _policy_kwargs(cfg)},
            "execution": {k: pcfg[k] for k in EXECUTION_KEYS},
            "input_shapes": input_shapes,
            "action_dim": int(actions.shape[1]),
            "inputs": list(cfg.inputs),
            **camera_fields,  # "encoder", and "cameras" for several (s2robot.checkpoint.vision_fields)
            # No simulator behind a recorded store: no env to roll out in (eval skips it).
            "env": OmegaConf.to_container(cfg.env, resolve=True) if "env" in store.attrs else None,
            "robot": robot.to_dict(),
            "store": {
                "path": str(store.path),
                "n_episodes": store.n_episodes,
                "train_episodes": train_eps.tolist(),
                "val_episodes": val_eps.tolist(),
            },
            "state_dict": policy.state_dict(),
            "train_state": {
                "epoch": epoch,
                "step": step,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
            },
            "metrics": metrics,
            "config": OmegaConf.to_container(cfg, resolve=True),
        }

    metrics_log = None
    if rank == 0:
        # Rows after the resumed checkpoint's epoch were never made permanent: they are dropped
        # and logged again, so metrics.csv holds each epoch once.
        metrics_log = MetricsLog(
            run_dir / "metrics.csv",
            METRIC_COLUMNS,
            tensorboard_dir=run_dir / "tb",
            tensorboard_keys=("train_loss", "val_loss", "lr"),
            resume_after=start_epoch if cfg.train.resume else None,
        )
    bar = None
    if rank == 0 and cfg.train.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.train.epochs, initial=start_epoch, desc="train", unit="epoch")
    log.info(
        "training %s on %s: %d train / %d val samples, inputs %s, %d epochs, device %s, world %d",
        pcfg.name,
        store.path,
        len(tr),
        len(va),
        input_shapes,
        cfg.train.epochs,
        device,
        world,
    )
    metrics: dict = {}
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if cfg.train.torch_threads:
        # A small head gains nothing from more threads, and on a busy CPU OpenMP barriers stall
        # every step (measured: 5 epochs 13.5 s with 2 threads vs 2.0 s with 1 at load 4).
        torch.set_num_threads(int(cfg.train.torch_threads))
    for epoch in range(start_epoch, cfg.train.epochs):
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)  # same order on every rank and on resume
        perm = torch.randperm(len(tr), generator=g)[rank::world]
        losses = []
        for rows in perm.split(cfg.train.batch_size):
            obs, act = tr.batch(rows, device)
            loss = model(obs, act)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.train.grad_clip)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
        if rank == 0:
            metrics = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": float(np.mean(losses)),
                "val_loss": val_loss(policy, va, 4 * cfg.train.batch_size, device),
                "lr": sched.get_last_lr()[0],
                "seconds": round(time.perf_counter() - t0, 2),
            }
            metrics_log.write(metrics, tb_step=step)
            if "env" not in store.attrs and epoch + 1 == cfg.train.epochs:
                metrics["val_action_mae"] = val_action_error(policy, va, 4 * cfg.train.batch_size, device)
                log.info(
                    "%s has no simulator (recorded or imported data): no rollout evaluation; held-out action "
                    "error (mean |a - a*| over %d val windows) %.4f",
                    store.path,
                    len(va),
                    metrics["val_action_mae"],
                )
            if bar is not None:
                bar.set_postfix(train=f"{metrics['train_loss']:.4f}", val=f"{metrics['val_loss']:.4f}")
                bar.update(1)
            if (epoch + 1) % cfg.train.save_every == 0 or epoch + 1 == cfg.train.epochs:
                save_checkpoint(ckpt_path, payload(epoch + 1, metrics))
    torch.set_num_threads(threads)
    if rank == 0:
        if bar is not None:
            bar.close()
        metrics_log.close()
        log.info("finished: %s; checkpoint %s", metrics, ckpt_path)
    barrier()
    return metrics
