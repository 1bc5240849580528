"""The cameras a policy sees (``data.cameras``) and each camera's own encoder options
(``camera_encoders.<camera>``): their schema, their checks, and the options resolved per camera."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from s2robot.config import checks
from s2robot.config.encoder import check_pretrained_encoder, validate_encoder, validate_scales
from s2robot.config.policy import VISUAL_POOLS

# The ``encoder`` group's keys a camera may set for itself in ``camera_encoders.<camera>`` (beside
# its S² ``scales`` and the head's ``visual_pool`` over its features).
CAMERA_ENCODER_KEYS = ("name", "weights", "img_size", "feature", "output_grid", "seed", "allow_family_mismatch")


@dataclass
class CameraEncoderSchema:
    """The types of ``camera_encoders.<camera>``. That map is typed ``dict[str, Any]`` in the schema
    because Hydra cannot add ``+camera_encoders.<camera>.<key>=...`` to a map of dataclasses; each
    entry is checked against this in validate_cameras instead. A key not given takes the shared
    value (``encoder.<key>``, ``scales``, ``policy.visual_pool``); null is a value here
    (``img_size: null`` is the encoder's native size)."""

    name: str = MISSING
    weights: str | None = MISSING
    img_size: int | None = MISSING
    feature: str = MISSING
    output_grid: str = MISSING
    seed: int = MISSING
    allow_family_mismatch: bool = MISSING
    scales: list[int] = MISSING
    visual_pool: str = MISSING


# -- several cameras ------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraOptions:
    """One camera's encoder (the ``encoder`` group's keys), S² scales and head pool, after its
    ``camera_encoders`` overrides; ``overridden``: the keys that camera set itself."""

    encoder: dict
    scales: tuple[int, ...]
    visual_pool: str
    overridden: frozenset[str]


def policy_cameras(cfg: Any) -> list[str]:
    """The cameras the policy sees, in order: ``data.cameras`` (``[${data.camera}]`` by default, so
    ``data.camera=X`` is the single-camera spelling of ``data.cameras=[X]``)."""
    return [str(c) for c in cfg.data.cameras]


def camera_options(cfg: Any) -> dict[str, CameraOptions]:
    """``camera -> CameraOptions`` for every policy camera: the shared ``encoder``, ``scales`` and
    ``policy.visual_pool`` with what ``camera_encoders.<camera>`` sets."""
    shared = OmegaConf.to_container(cfg.encoder, resolve=True)
    out = {}
    for cam in policy_cameras(cfg):
        node = cfg.camera_encoders.get(cam)
        given = OmegaConf.to_container(node, resolve=True) if node is not None else {}
        out[cam] = CameraOptions(
            encoder={**shared, **{k: v for k, v in given.items() if k in CAMERA_ENCODER_KEYS}},
            scales=tuple(int(s) for s in given.get("scales", cfg.scales)),
            visual_pool=str(given.get("visual_pool", cfg.policy.visual_pool)),
            overridden=frozenset(given),
        )
    return out


def recorded_store(path: Any) -> bool:
    """A store recorded on (or imported from) a robot without the simulator: its cameras are the
    robot's, named by its description, not robosuite's. Read from the root's JSON, zarr unloaded."""
    try:
        with open(os.path.join(str(path), "zarr.json")) as f:
            attrs = json.load(f).get("attributes", {})
    except (OSError, ValueError):
        return False
    return "robot" in attrs and "env" not in attrs


def validate_cameras(cfg: Any) -> None:
    """The policy's camera list: known names, each once, options only for cameras in it. A recorded
    store's cameras are checked against the store itself, by train's validate()."""
    d = cfg.data
    recorded = recorded_store(d.store)
    if not recorded:
        checks.camera(d, "camera", prefix="data.")  # first: named as typed when data.cameras comes from it
    cams = list(d.cameras)
    checks.require(
        len(cams) > 0,
        "data.cameras",
        cams,
        "give at least one camera, e.g. data.cameras=[agentview,robot0_eye_in_hand]",
    )
    if not recorded:
        checks.cameras(cams, "data.cameras")
    checks.require(
        len(set(cams)) == len(cams),
        "data.cameras",
        cams,
        "each camera at most once: a camera listed twice would feed the head the same view twice",
    )
    fields = CameraEncoderSchema.__dataclass_fields__
    for cam, node in cfg.camera_encoders.items():
        key = f"camera_encoders.{cam}"
        checks.require(
            cam in cams,
            key,
            node,
            f"options for a camera the policy does not see (data.cameras={checks.show(cams)})"
            f"{checks.did_you_mean(cam, cams)}; add {cam} to data.cameras or drop {key}",
        )
        checks.require(
            isinstance(node, DictConfig),
            key,
            node,
            f"must be a map of options, e.g. +{key}.scales=[1,2,3]; keys: {', '.join(fields)}",
        )
        for name in node:
            checks.require(
                name in fields,
                f"{key}.{name}",
                node[name],
                f"not a per-camera option{checks.did_you_mean(name, fields)}; keys: {', '.join(fields)}",
            )
        try:
            OmegaConf.merge(OmegaConf.structured(CameraEncoderSchema), node)
        except Exception as e:  # omegaconf's ValidationError: a value of the wrong type
            name = getattr(e, "full_key", None)
            raise checks.fail(
                f"{key}.{name}" if name else key, node[name] if name in node else node, str(e).splitlines()[0]
            ) from None


def validate_camera_encoders(cfg: Any) -> None:
    """Each camera's own encoder options, and its head pool against its features (what
    validate_policy checks for the shared pool and feature)."""
    if not cfg.camera_encoders:
        return  # every camera uses the shared encoder, scales and pool: already checked
    for cam, opts in camera_options(cfg).items():
        p = f"camera_encoders.{cam}."
        if "scales" in opts.overridden:
            validate_scales(opts.scales, p + "scales")
        if opts.overridden - {"scales", "visual_pool"}:
            enc = OmegaConf.create(opts.encoder)
            validate_encoder(enc, opts.scales, prefix=p)
            check_pretrained_encoder(enc)
        pool_key = p + "visual_pool" if "visual_pool" in opts.overridden else "policy.visual_pool"
        pool, feature = opts.visual_pool, opts.encoder["feature"]
        checks.require(pool in VISUAL_POOLS, pool_key, pool, f"must be one of {', '.join(VISUAL_POOLS)}")
        if feature == "tokens":
            checks.require(
                pool != "none",
                pool_key,
                pool,
                f"camera {cam}'s features are tokens: pool them with attn or keypoints (or set {p}feature=cls)",
            )
        else:
            checks.require(
                pool == "none",
                pool_key,
                pool,
                f"pools over the token grid, and camera {cam}'s features are {feature}: set "
                f"{p}feature=tokens or {pool_key}=none",
            )
        if pool == "attn":  # policies.obs_encoder.AttentionPool: 4 heads over policy.hidden
            checks.require(
                cfg.policy.hidden % 4 == 0,
                "policy.hidden",
                cfg.policy.hidden,
                f"must be a multiple of 4 with attn pooling (camera {cam})",
            )
