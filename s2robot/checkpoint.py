"""Self-describing policy checkpoints: written atomically, rebuilt without the original config."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from policies import BCPolicy, make_policy
from s2robot.errors import UserError
from s2robot.fileio import atomic_torch_save, file_hash

FORMAT = "s2robot.policy"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(UserError, RuntimeError):
    pass


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Atomic: a crash mid-save keeps the old checkpoint."""
    atomic_torch_save({"format": FORMAT, "version": VERSION, **payload}, path)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run directory or a checkpoint file -> the checkpoint file."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}; pass a run directory of train_policy.py or its {CHECKPOINT_NAME}"
        )
    return path


def load_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint_path(path)
    try:
        # Tensors and plain containers only: unpickling anything else runs code from the file.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if m := re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(e)):
            raise CheckpointError(
                f"{path} holds a pickled Python object ({m.group(1)}), which s2robot policy checkpoints never "
                f"contain; it is refused unread because loading it could run code. "
                f"Use a checkpoint train_policy.py wrote"
            ) from e
        reason = " ".join(str(e).split())[:300]  # torch's messages run to paragraphs; user errors are one line
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}; it is damaged, retrain or use another") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an s2robot policy checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {ckpt.get('version')}, this code reads {VERSION}")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_hash(path: str | Path) -> str:
    return file_hash(resolve_checkpoint_path(path))[:16]


def policy_from_checkpoint(ckpt: dict) -> BCPolicy:
    policy = make_policy(ckpt["policy"]["name"], ckpt["input_shapes"], ckpt["action_dim"], **ckpt["policy"]["kwargs"])
    policy.load_state_dict(ckpt["state_dict"])
    return policy.eval()
