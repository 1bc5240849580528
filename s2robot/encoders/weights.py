"""Finding, checking and loading encoder checkpoints (local files only, or an explicit download)."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import torch
import torch.nn as nn

from s2robot.encoders.registry import EncoderSpec
from s2robot.errors import UserError
from s2robot.fileio import atomic_write, file_hash

log = logging.getLogger(__name__)

# Keys a full MAE pre-training or classification checkpoint carries beside the encoder.
_IGNORED_PREFIXES = ("decoder", "mask_token", "head.", "fc_norm.", "pre_logits.")


class WeightsError(UserError, RuntimeError):
    """A missing, corrupt or mismatching checkpoint; the message says what to do."""


def weights_cache_dir(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("S2ROBOT_WEIGHTS")
    return Path(env) if env else Path.home() / ".cache" / "s2robot"


def file_md5(path: str | Path) -> str:
    return file_hash(path, "md5")


def _how_to_get(spec: EncoderSpec, target: Path) -> str:
    if spec.url:
        where = f"download {spec.url} (MD5 {spec.md5}) to {target}"
    elif spec.timm_name:
        where = (f"on a machine with internet, save timm.create_model('{spec.timm_name}', pretrained=True)"
                 f".state_dict() with safetensors to {target}")
    else:
        where = f"put the checkpoint at {target}"
    return (f"{where}, or pass a local file with encoder.weights=/path/to/checkpoint "
            f"(or encoder.weights=random for a pipeline check without meaningful features)")


def _download(url: str, target: Path, md5: str | None, timeout: float) -> None:
    from tqdm import tqdm

    import hashlib

    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    # atomic: a killed download, or one with the wrong MD5, never leaves a file under the real name
    with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_write(target) as f:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {target.name}") as bar:
            while block := resp.read(1 << 20):
                f.write(block)
                h.update(block)
                bar.update(len(block))
        if md5 and (got := h.hexdigest()) != md5:
            raise WeightsError(f"downloaded {url} has MD5 {got}, expected {md5}; the file was discarded")


def find_weights(spec: EncoderSpec, cache_dir: str | Path | None = None, timeout: float = 10.0) -> Path:
    """``weights=auto``: the cached checkpoint (MD5-checked), else the published address."""
    if not spec.checkpoint:
        raise WeightsError(f"encoder {spec.name!r} has no published checkpoint; pass encoder.weights=/path")
    target = weights_cache_dir(cache_dir) / spec.checkpoint
    if target.exists():
        if spec.md5 and (got := file_md5(target)) != spec.md5:
            raise WeightsError(
                f"{target} has MD5 {got}, but {spec.name} expects {spec.md5}: the file is corrupt or a "
                f"different checkpoint. Delete it and fetch it again: {_how_to_get(spec, target)}"
            )
        return target
    offline = os.environ.get("S2ROBOT_OFFLINE", "") not in ("", "0")
    if spec.url and not offline:
        try:
            _download(spec.url, target, spec.md5, timeout)
            return target
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = f"download failed ({e})"
    else:
        reason = "offline (S2ROBOT_OFFLINE is set)" if spec.url else "no download address is known"
    raise WeightsError(
        f"weights for encoder {spec.name!r} not found at {target} and {reason}. To fix: {_how_to_get(spec, target)}"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """MVP format (``{"model": sd}``), ``{"state_dict": sd}``, a plain state dict, or safetensors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; pass an existing checkpoint with encoder.weights=...")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch and safetensors raise many types for a bad file
        raise WeightsError(f"cannot read checkpoint {path}: {e}. Is it a torch or safetensors file?") from e
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict (expected {{'model': state_dict}} or a plain state dict)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_dict_strict(model: nn.Module, sd: dict[str, torch.Tensor], spec: EncoderSpec, source: str) -> None:
    """Load, naming every missing, unexpected or mis-shaped key; refuse any mismatch."""
    ignored = sorted(k for k in sd if k.startswith(_IGNORED_PREFIXES))
    sd = {k: v for k, v in sd.items() if k not in set(ignored)}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(sd) & set(own) if sd[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        def few(xs):
            return ", ".join(xs[:8]) + (f" ... ({len(xs)} in all)" if len(xs) > 8 else "")

        problems = [f"missing keys: {few(missing)}" if missing else "",
                    f"unexpected keys: {few(unexpected)}" if unexpected else "",
                    f"shape mismatches: {few(shapes)}" if shapes else ""]
        raise WeightsError(
            f"checkpoint {source} does not match encoder {spec.name} (ViT patch {spec.patch_size}, dim "
            f"{spec.embed_dim}, depth {spec.depth}, {spec.img_size} px): "
            + "; ".join(p for p in problems if p)
            + ". Pick the encoder that matches the checkpoint (or encoder.img_size=...)."
        )
    if ignored:
        log.info("%s: ignored %d non-encoder keys (%s...)", source, len(ignored), ignored[0])
    model.load_state_dict(sd, strict=True)


def resolve_weights(spec: EncoderSpec, weights, cache_dir: str | Path | None = None) -> Path | None:
    """``weights`` (path | "auto" | "random") -> the checkpoint file, or None for random init.
    Raises WeightsError with the how-to when nothing was given or the file is not there."""
    if weights is None or str(weights) == "":
        raise WeightsError(
            f"no weights given for encoder {spec.name!r}: pass encoder.weights=/path/to/checkpoint, "
            f"encoder.weights=auto or, explicitly, encoder.weights=random"
        )
    weights = str(weights)
    if weights == "random":
        return None
    if weights == "auto":
        return find_weights(spec, cache_dir)
    path = Path(weights).expanduser()
    if not path.is_file():
        src = f"download {spec.url} (MD5 {spec.md5}), then " if spec.url else ""
        raise WeightsError(
            f"encoder.weights={weights}: no such file (weights file {path} does not exist). {src}pass "
            f"encoder.weights=/path/to/file, or encoder.weights=random for a pipeline check without meaningful features"
        )
    return path


def load_weights(model: nn.Module, spec: EncoderSpec, weights, *, seed: int = 0,
                 cache_dir: str | Path | None = None) -> str:
    """Fill ``model`` from ``weights`` (path | "auto" | "random"); return the weights identity."""
    path = resolve_weights(spec, weights, cache_dir)
    if path is None:
        log.warning(
            "encoder %s uses RANDOM weights (seed %d): features are not meaningful, results say "
            "nothing about the method; use for pipeline checks only", spec.name, seed)
        return f"random:seed{seed}"
    load_state_dict_strict(model, read_state_dict(path), spec, str(path))
    return f"md5:{file_md5(path)}"
