"""MAE pre-training run: frames from demo stores and image/video folders -> a trained encoder
checkpoint in the MVP format (``{"model": encoder_state_dict, "provenance": {...}}``).

A run directory holds ``mae_state.pt`` (everything needed to resume), ``encoder.pt`` (the
encoder alone, loadable by ``build_encoder(name, weights=path, img_size=...)``),
``metrics.csv`` (the loss curve) and ``reconstruction.png`` (masked inputs and
reconstructions). Both checkpoints are written atomically and refreshed every
``train.save_every`` steps, so a killed run leaves a usable encoder and resumes exactly
(``resume=true``): batches, crops and masks of step k come from a generator seeded by
(seed, k), not from a stream that a restart would lose.

Somewhat over 250 lines: ``pretrain`` is one resumable run (data, model, resume, steps,
checkpoints), and its parts share the state that resuming must restore exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from s2robot.config.pretrain import validate_pretrain_mae
from s2robot.device import resolve_device
from s2robot.encoders import resolve_spec
from s2robot.encoders.normalize import normalize_images
from s2robot.errors import ConfigError
from s2robot.fileio import atomic_torch_save
from s2robot.pretrain.frames import load_frames
from s2robot.pretrain.mae import MAE, param_groups, step_generator
from s2robot.pretrain.pictures import save_reconstructions
from s2robot.pretrain.views import random_resized_crop
from s2robot.s2 import scale_sizes
from s2robot.training.metrics import MetricsLog
from s2robot.training.schedule import warmup_cosine

log = logging.getLogger(__name__)
STATE_NAME = "mae_state.pt"
ENCODER_NAME = "encoder.pt"
STATE_FORMAT = "s2robot.mae_state"
ENCODER_FORMAT = "s2robot.mae_encoder"
# Settings a resumed run must share with the run it continues.
_RESUME_KEYS = ("encoder.name", "encoder.img_size", "scales", "mae")


# -- pieces of the run ------------------------------------------------------------------------


def lr_at(step: int, cfg: DictConfig) -> float:
    """Linear warm-up, then cosine from ``lr`` down to ``min_lr`` at ``steps``."""
    t = cfg.train
    return warmup_cosine(step, t.warmup_steps, t.steps, peak=t.lr, floor=t.min_lr)


def make_batch(
    frames: torch.Tensor, model: MAE, cfg: DictConfig, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A normalised batch of random crops at the model's view size."""
    idx = torch.randint(len(frames), (cfg.train.batch_size,), generator=g)
    aug = cfg.data.aug
    x = random_resized_crop(
        frames[idx.to(frames.device)].to(device),
        model.view_size,
        scale=tuple(aug.crop_scale),
        ratio=tuple(aug.crop_ratio),
        hflip=bool(aug.hflip),
        generator=g,
    )
    return normalize(x, model.spec)


def normalize(x: torch.Tensor, spec) -> torch.Tensor:
    return normalize_images(x, spec.mean, spec.std)


def build_mae(cfg: DictConfig) -> MAE:
    spec = resolve_spec(cfg.encoder.name, cfg.encoder.img_size)
    m = cfg.mae
    return MAE(
        spec,
        scales=list(cfg.scales),
        mask_ratio=m.mask_ratio,
        decoder_dim=m.decoder_dim,
        decoder_depth=m.decoder_depth,
        decoder_heads=m.decoder_heads,
        norm_pix_loss=m.norm_pix_loss,
    )


def export_encoder(model: MAE, path: Path, provenance: dict) -> None:
    """The MVP checkpoint format: ``{"model": encoder_state_dict, "provenance": ...}``."""
    atomic_torch_save({"model": model.encoder_state_dict(), "provenance": provenance}, path)


def _check_resume(cfg: DictConfig, saved: dict) -> None:
    now = OmegaConf.to_container(cfg, resolve=True)
    for key in _RESUME_KEYS:
        a, b = OmegaConf.select(OmegaConf.create(saved), key), OmegaConf.select(OmegaConf.create(now), key)
        if a != b:
            raise ConfigError(
                f"resume=true, but {key}={b} differs from the run being resumed ({a}); "
                f"use the same settings or a new run directory"
            )


def validate(cfg: DictConfig) -> None:
    """Keys, ranges and names of the run's config (s2robot.config.pretrain), before any data is read."""
    validate_pretrain_mae(cfg)


# -- the run ----------------------------------------------------------------------------------


def pretrain(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Pre-train (or resume) the MAE described by ``cfg`` in ``run_dir``; returns a summary."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    validate(cfg)
    device = resolve_device(cfg.device)
    if cfg.train.get("num_threads"):
        torch.set_num_threads(int(cfg.train.num_threads))
    state_path, encoder_path = run_dir / STATE_NAME, run_dir / ENCODER_NAME

    if not cfg.resume and state_path.exists():
        raise ConfigError(
            f"{run_dir} already holds a pre-training run; pass resume=true to continue it "
            f"or choose another hydra.run.dir"
        )
    if cfg.resume and not state_path.exists():
        raise ConfigError(f"resume=true but {state_path} does not exist; set hydra.run.dir to the run to resume")
    # Data first: a missing store or folder fails before any model is built.
    spec = resolve_spec(cfg.encoder.name, cfg.encoder.img_size)
    frames, data_summary = load_frames(cfg.data, max(scale_sizes(list(cfg.scales), spec.img_size)))

    torch.manual_seed(cfg.seed)
    model = build_mae(cfg).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg.train.weight_decay), lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    step, elapsed_before = 0, 0.0
    if cfg.resume:
        state = torch.load(state_path, map_location="cpu", weights_only=True)  # our own format: tensors and plain data
        if state.get("format") != STATE_FORMAT:
            raise ConfigError(f"{state_path} is not an MAE pre-training state")
        _check_resume(cfg, state["config"])
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed_before = state["step"], state.get("seconds", 0.0)
        log.info("resuming %s at step %d", state_path, step)

    if device.type == "cuda":
        frames = frames.to(device)
    vis = frames[np.linspace(0, len(frames) - 1, min(cfg.vis.n_images, len(frames))).round().astype(np.int64)]
    log.info(
        "MAE pre-training %s at %d px, scales %s, on %d frames (%d px), %d steps of %d on %s",
        model.spec.name,
        model.spec.img_size,
        model.scales,
        len(frames),
        data_summary["frame_size"],
        cfg.train.steps,
        cfg.train.batch_size,
        device,
    )

    columns = ["step", "loss", *[f"loss_x{s:g}" for s in model.scales], "lr", "images_per_s", "seconds"]
    metrics = MetricsLog(run_dir / "metrics.csv", columns, resume_after=step if cfg.resume else None)

    def provenance(final_loss: float | None) -> dict:
        return {
            "format": ENCODER_FORMAT,
            "encoder": model.spec.name,
            "img_size": model.spec.img_size,
            "scales": list(model.scales),
            "steps": step,
            "batch_size": int(cfg.train.batch_size),
            "images_seen": step * int(cfg.train.batch_size),
            "final_loss": final_loss,
            "data": data_summary,
            "mae": OmegaConf.to_container(cfg.mae, resolve=True),
            "mean": list(model.spec.mean),
            "std": list(model.spec.std),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(final_loss: float | None) -> None:
        atomic_torch_save(
            {
                "format": STATE_FORMAT,
                "step": step,
                "seconds": elapsed_before + time.perf_counter() - t0,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "config": OmegaConf.to_container(cfg, resolve=True),
            },
            state_path,
        )
        export_encoder(model, encoder_path, provenance(final_loss))
        save_reconstructions(model, vis, run_dir / "reconstruction.png", cfg.seed)

    bar = None
    if cfg.train.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.train.steps, initial=step, desc="mae", unit="step")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    limit = cfg.train.get("time_limit_min")
    t0 = t_log = time.perf_counter()
    window: list[list[float]] = []
    last_loss, stopped_early = None, False
    model.train()
    while step < cfg.train.steps:
        g = step_generator(cfg.seed, step)
        lr = lr_at(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        x = make_batch(frames, model, cfg, g, device)
        with autocast:
            loss, details = model(x, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        step += 1
        last_loss = float(loss.detach())
        if not math.isfinite(last_loss):
            raise RuntimeError(f"MAE loss became {last_loss} at step {step}; lower train.lr or set train.grad_clip")
        window.append([last_loss, *details["scale_losses"]])
        if bar is not None:
            bar.set_postfix(loss=f"{last_loss:.4f}")
            bar.update(1)
        out_of_time = limit is not None and time.perf_counter() - t0 > 60 * limit
        if step % cfg.train.log_every == 0 or step == cfg.train.steps or out_of_time:
            now = time.perf_counter()
            mean = np.mean(window, axis=0)
            metrics.write(
                dict(
                    zip(
                        columns,
                        [
                            step,
                            *[round(float(v), 5) for v in mean],
                            f"{lr:.3g}",
                            round(len(window) * cfg.train.batch_size / (now - t_log), 1),
                            round(elapsed_before + now - t0, 1),
                        ],
                    )
                )
            )
            window, t_log = [], now
        if step % cfg.train.save_every == 0 or step == cfg.train.steps or out_of_time:
            save(last_loss)
        if out_of_time and step < cfg.train.steps:
            log.warning(
                "train.time_limit_min=%s reached at step %d of %d: stopping; resume=true continues",
                limit,
                step,
                cfg.train.steps,
            )
            stopped_early = True
            break
    if bar is not None:
        bar.close()
    metrics.close()
    if step == 0 or (cfg.resume and last_loss is None):  # nothing left to do, still refresh the outputs
        save(None)
    return {
        "encoder_weights": str(encoder_path.resolve()),
        "state": str(state_path.resolve()),
        "encoder": model.spec.name,
        "img_size": model.spec.img_size,
        "scales": list(model.scales),
        "steps": step,
        "final_loss": last_loss,
        "stopped_early": stopped_early,
        "seconds": round(elapsed_before + time.perf_counter() - t0, 1),
        "n_frames": len(frames),
    }
