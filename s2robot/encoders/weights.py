"""Finding, checking and loading encoder checkpoints (local files only, or an explicit download).

A file is refused when it is another registered encoder's published file (by MD5), when it comes
from the other family (an MVP/MAE file into a timm ViT: same keys and shapes, other normalisation
and head count), or when it holds pickled objects and is not its encoder's published file.

Longer than ~250 lines because finding, reading and checking a file are one flow around one
decision, which file may be unpickled in full; split up, that decision would span modules."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from s2robot.encoders.registry import ENCODERS, EncoderSpec
from s2robot.errors import UserError
from s2robot.fileio import atomic_write, file_hash

log = logging.getLogger(__name__)

# Keys a full MAE pre-training or classification checkpoint carries beside the encoder.
_IGNORED_PREFIXES = ("decoder", "mask_token", "head.", "fc_norm.", "pre_logits.")
_MAE_DECODER_PREFIXES = ("decoder", "mask_token")
# What MAE's (and so MVP's) training loop saves beside "model".
_MAE_TRAINING_KEYS = ("args", "optimizer", "scaler", "epoch")
# Our own MAE pre-training's files (s2robot.pretrain.loop's ENCODER_FORMAT, STATE_FORMAT; not
# imported: that would pull the training stack into every encoder load). Their provenance names
# the normalisation they were trained with.
OWN_ENCODER_FORMAT = "s2robot.mae_encoder"
OWN_STATE_FORMAT = "s2robot.mae_state"


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
        where = (
            f"on a machine with internet, save timm.create_model('{spec.timm_name}', pretrained=True)"
            f".state_dict() with safetensors to {target}"
        )
    else:
        where = f"put the checkpoint at {target}"
    return (
        f"{where}, or pass a local file with encoder.weights=/path/to/checkpoint "
        f"(or encoder.weights=random for a pipeline check without meaningful features)"
    )


def _download(url: str, target: Path, md5: str | None, timeout: float) -> None:
    from tqdm import tqdm

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


@dataclass
class Checkpoint:
    """A weights file's encoder state dict and what the file says about where it came from."""

    state_dict: dict[str, torch.Tensor]
    md5: str
    extras: tuple[str, ...] = ()  # other top-level keys beside the state dict ("args", "optimizer", ...)
    own_format: bool = False  # written by our MAE pre-training (s2robot.pretrain.loop)
    provenance: dict = field(default_factory=dict)

    @property
    def mae_evidence(self) -> str:
        """Why this looks like an MAE pre-training file (MVP's or facebookresearch/mae's), or ""."""
        decoder = sorted(k for k in self.state_dict if k.startswith(_MAE_DECODER_PREFIXES))
        training = sorted(set(self.extras) & set(_MAE_TRAINING_KEYS))
        return ", ".join(
            ([f"MAE decoder keys ({decoder[0]}, ...)"] if decoder else [])
            + ([f"MAE training entries {training}"] if training else [])
        )


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:300] + " ..."


def _unpickle_refusal(e: BaseException) -> str | None:
    """The Python object a weights_only load refused ("argparse.Namespace"), if that was the error."""
    m = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(e))
    return m.group(1) if m else None


def _published_by(md5: str) -> list[EncoderSpec]:
    return [spec for spec in ENCODERS.values() if spec.md5 == md5]


def read_checkpoint(path: str | Path, spec: EncoderSpec | None = None) -> Checkpoint:
    """MVP format (``{"model": sd}``), ``{"state_dict": sd}``, a plain state dict, or safetensors.

    With ``spec``: a file that is another registered encoder's published checkpoint (by MD5) is
    refused unread; one that is ``spec``'s own published file is trusted to unpickle fully (the
    published MVP files may carry MAE's ``args`` Namespace). Anything else loads tensors only. The
    bytes hashed are the bytes loaded: one open file serves both."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist; pass an existing checkpoint with encoder.weights=...")
    with open(path, "rb") as f:
        h = hashlib.md5()
        while block := f.read(1 << 20):
            h.update(block)
        md5 = h.hexdigest()
        f.seek(0)
        others = [o for o in _published_by(md5) if spec is not None and o.name != spec.name]
        if others:
            other = others[0].name
            raise WeightsError(
                f"{path} has MD5 {md5}: this is {other}'s checkpoint; use encoder={other} "
                f"(not encoder={spec.name}, which it would load into with the wrong architecture "
                f"or input normalisation)"
            )
        trusted = spec is not None and spec.md5 == md5
        try:
            if path.suffix == ".safetensors":  # no pickle in it: nothing to trust
                from safetensors.torch import load_file

                obj = load_file(str(path))
            else:
                obj = torch.load(f, map_location="cpu", weights_only=not trusted)
        except Exception as e:  # torch and safetensors raise many types for a bad file
            if (what := _unpickle_refusal(e)) is not None:
                raise WeightsError(
                    f"checkpoint {path} holds {what} beside its tensors; unpickling that runs code from the file, "
                    f"so it is done only for a registered encoder's published file, and MD5 {md5} is none of "
                    f"them. If you trust the file, keep its tensors alone: torch.save({{'model': torch.load(path, "
                    f"weights_only=False)['model']}}, new_path), then pass encoder.weights=new_path"
                ) from e
            raise WeightsError(
                f"cannot read checkpoint {path}: {_one_line(e)}. Is it a torch or safetensors file?"
            ) from e
    extras: tuple[str, ...] = ()
    top = obj if isinstance(obj, dict) else {}
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                extras = tuple(str(k) for k in obj if k != key)
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict (expected {{'model': state_dict}} or a plain state dict)")
    provenance = top.get("provenance") if isinstance(top.get("provenance"), dict) else {}
    own = provenance.get("format") == OWN_ENCODER_FORMAT or top.get("format") == OWN_STATE_FORMAT
    return Checkpoint({k.removeprefix("module."): v for k, v in obj.items()}, md5, extras, own, provenance)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The encoder state dict of a weights file (tensors only)."""
    return read_checkpoint(path).state_dict


def load_state_dict_strict(model: nn.Module, sd: dict[str, torch.Tensor], spec: EncoderSpec, source: str) -> None:
    """Load, naming every missing, unexpected or mis-shaped key; refuse any mismatch."""
    ignored = sorted(k for k in sd if k.startswith(_IGNORED_PREFIXES))
    sd = {k: v for k, v in sd.items() if k not in set(ignored)}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(sd) & set(own)
        if sd[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:

        def few(xs):
            return ", ".join(xs[:8]) + (f" ... ({len(xs)} in all)" if len(xs) > 8 else "")

        problems = [
            f"missing keys: {few(missing)}" if missing else "",
            f"unexpected keys: {few(unexpected)}" if unexpected else "",
            f"shape mismatches: {few(shapes)}" if shapes else "",
        ]
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


def check_family(spec: EncoderSpec, ckpt: Checkpoint, source: str) -> None:
    """Refuse weights made for another input normalisation or head count. Key names and shapes
    cannot tell an MVP ViT-S (12 heads, ImageNet mean/std) from a timm one (6 heads, [-1, 1])."""
    how = "pass encoder.allow_family_mismatch=true if you are sure"
    if ckpt.own_format:
        mean, std = ckpt.provenance.get("mean"), ckpt.provenance.get("std")
        if mean is not None and std is not None and (tuple(mean), tuple(std)) != (spec.mean, spec.std):
            raise WeightsError(
                f"{source} was pre-trained as {ckpt.provenance.get('encoder', 'another encoder')} on images "
                f"normalised with mean {list(mean)}, std {list(std)}; encoder={spec.name} uses mean "
                f"{list(spec.mean)}, std {list(spec.std)}: use encoder={ckpt.provenance.get('encoder')}, or {how}"
            )
        return
    if spec.family == "timm" and (evidence := ckpt.mae_evidence):
        size = (spec.embed_dim, spec.depth, spec.patch_size)
        same = [o.name for o in ENCODERS.values() if o.family == "mvp" and (o.embed_dim, o.depth, o.patch_size) == size]
        use = f"use encoder={same[0]}" if same else "use the matching mvp_* encoder"
        raise WeightsError(
            f"{source} is an MAE/MVP pre-training checkpoint ({evidence}), but encoder={spec.name} is a timm ViT: "
            f"MVP's differ in ways its weights cannot show (ImageNet mean/std instead of [-1, 1]; 12 heads for "
            f"ViT-S, not 6), so features would be silently wrong. {use}, or, if this file was made for a timm "
            f"{spec.name}, {how}"
        )


def load_weights(
    model: nn.Module,
    spec: EncoderSpec,
    weights,
    *,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    allow_family_mismatch: bool = False,
) -> str:
    """Fill ``model`` from ``weights`` (path | "auto" | "random"); return the weights identity.

    ``allow_family_mismatch`` skips `check_family` (a file it misjudges); another encoder's
    published file (by MD5) is refused whatever it says."""
    path = resolve_weights(spec, weights, cache_dir)
    if path is None:
        log.warning(
            "encoder %s uses RANDOM weights (seed %d): features are not meaningful, results say "
            "nothing about the method; use for pipeline checks only",
            spec.name,
            seed,
        )
        return f"random:seed{seed}"
    ckpt = read_checkpoint(path, spec)
    if not allow_family_mismatch:
        check_family(spec, ckpt, str(path))
    load_state_dict_strict(model, ckpt.state_dict, spec, str(path))
    return f"md5:{ckpt.md5}"
