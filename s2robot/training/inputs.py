"""What the head trains on: the demonstration store (collected first if missing) and per-step
input arrays, vision being the frozen S² features of each policy camera, cached once under the store."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from s2robot.checkpoint import vision_fields, vision_input
from s2robot.config.cameras import camera_options
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders.config import EncoderConfig
from s2robot.errors import ConfigError
from s2robot.observations import cube_yaw_features
from s2robot.training.distributed import barrier, is_main

log = logging.getLogger(__name__)


def prepare_store(cfg: DictConfig) -> ReplayBuffer:
    store = Path(cfg.data.store)
    if not store.exists() and is_main():
        from s2robot.data.collect import collect_demos

        log.info(
            "demonstration store %s does not exist: collecting %d episodes with the scripted expert",
            store,
            cfg.data.n_episodes,
        )
        summary = collect_demos(
            cfg.env,
            store,
            cfg.data.n_episodes,
            seed_start=cfg.data.seed_start,
            expert_noise=cfg.data.expert_noise,
            progress=cfg.train.progress,
        )
        log.info("collected: %s", {k: v for k, v in summary.items() if not isinstance(v, dict)})
    barrier()
    buffer = ReplayBuffer.open(store)
    take_imported_env(cfg, buffer)
    return buffer


def take_imported_env(cfg: DictConfig, store: ReplayBuffer) -> None:
    """An imported store that names its simulator (``s2robot-import --sim``) sets ``cfg.env``: the
    policy is evaluated in the env the data was made in (cameras, image size, cube placement), which
    the config's defaults (224 px, CubePick's wide placement) are not. A collected store keeps
    ``cfg.env``, which collected it. Evaluation overrides (eval's ``env.*``) still apply on top."""
    env = store.attrs.get("env")
    if "source" not in store.attrs or not isinstance(env, dict):
        return
    given = OmegaConf.to_container(cfg.env, resolve=True)
    if differ := sorted(k for k in env if given.get(k) != env[k]):
        log.info("%s was imported for the env %s; it replaces env %s of the config", store.path, env, differ)
    try:
        cfg.env = OmegaConf.merge(cfg.env, env)  # the schema-typed node takes a config, not a dict
    except OmegaConfBaseException as e:
        raise ConfigError(
            f"{store.path}: its env attrs {env} are not an env config ({str(e).splitlines()[0]}); import it again"
        ) from e


def load_inputs(cfg: DictConfig, store: ReplayBuffer, device: torch.device) -> tuple[dict, dict]:
    """Per-step input arrays for the head and the checkpoint's camera fields (`vision_fields`).

    Vision is one input per policy camera (``vision`` for one camera, ``vision_<camera>`` for
    several): the cached frozen features of that camera's frames, from its own encoder options.
    Cameras with the same options share one built encoder."""
    arrays, entries = {}, []
    if "vision" in cfg.inputs:
        from s2robot.data.feature_cache import cached_features

        options = camera_options(cfg)
        built: dict[EncoderConfig, object] = {}
        for cam, opts in options.items():
            enc_cfg = EncoderConfig.from_cfg(opts.encoder, opts.scales)
            if enc_cfg not in built:
                built[enc_cfg] = enc_cfg.build(device)
            encoder, key = built[enc_cfg], vision_input(cam, list(options))
            if is_main():
                arrays[key], path = cached_features(
                    store, encoder, cam, cfg.encoder.batch_size, progress=cfg.train.progress, dtype=cfg.encoder.dtype
                )
            barrier()
            if not is_main():
                arrays[key], path = cached_features(store, encoder, cam, progress=False, dtype=cfg.encoder.dtype)
            entries.append(enc_cfg.to_checkpoint(encoder, camera=cam, feature_cache=path, input=key))
        del built  # frozen features are cached: no encoder in the training loop
    for key in ("proprio", "cube_pos"):
        if key in cfg.inputs:
            arrays[key] = store[key]
    if "cube_yaw" in cfg.inputs:
        arrays["cube_yaw"] = cube_yaw_features(store["cube_quat"])
    return arrays, vision_fields(entries)


def visual_pools(cfg: DictConfig) -> dict[str, str]:
    """The head's pool per vision input, for the cameras that set their own (``camera_encoders``);
    the others use ``policy.visual_pool``. Empty for a single camera without overrides, so such a
    head's arguments are what they were before several cameras."""
    if "vision" not in cfg.inputs:
        return {}
    options = camera_options(cfg)
    return {
        vision_input(cam, list(options)): o.visual_pool for cam, o in options.items() if "visual_pool" in o.overridden
    }
