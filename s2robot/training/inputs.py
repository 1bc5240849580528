"""What the head trains on: the demonstration store (collected first if missing) and per-step
input arrays, vision being the frozen S² features cached once under the store."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders.config import EncoderConfig
from s2robot.observations import cube_yaw_features
from s2robot.training.distributed import barrier, is_main

log = logging.getLogger(__name__)


def prepare_store(cfg: DictConfig) -> ReplayBuffer:
    store = Path(cfg.data.store)
    if not store.exists() and is_main():
        from s2robot.data.collect import collect_demos

        log.info("demonstration store %s does not exist: collecting %d episodes with the scripted expert",
                 store, cfg.data.n_episodes)
        summary = collect_demos(cfg.env, store, cfg.data.n_episodes, seed_start=cfg.data.seed_start,
                                expert_noise=cfg.data.expert_noise, progress=cfg.train.progress)
        log.info("collected: %s", {k: v for k, v in summary.items() if not isinstance(v, dict)})
    barrier()
    return ReplayBuffer.open(store)


def load_inputs(cfg: DictConfig, store: ReplayBuffer, device: torch.device):
    """Per-step input arrays for the head (vision = cached frozen features) and encoder info."""
    arrays, encoder_info = {}, None
    if "vision" in cfg.inputs:
        from s2robot.data.feature_cache import cache_key, cache_path, cached_features

        enc_cfg = EncoderConfig.from_cfg(cfg.encoder, cfg.scales)
        encoder = enc_cfg.build(device)
        if is_main():
            arrays["vision"], path = cached_features(store, encoder, cfg.data.camera, cfg.encoder.batch_size,
                                                     progress=cfg.train.progress)
        barrier()
        if not is_main():
            arrays["vision"], path = cached_features(store, encoder, cfg.data.camera, progress=False)
        encoder_info = enc_cfg.to_checkpoint(encoder, camera=cfg.data.camera, feature_cache=path)
        del encoder  # frozen features are cached: no encoder in the training loop
    for key in ("proprio", "cube_pos"):
        if key in cfg.inputs:
            arrays[key] = store[key]
    if "cube_yaw" in cfg.inputs:
        arrays["cube_yaw"] = cube_yaw_features(store["cube_quat"])
    return arrays, encoder_info


