"""Self-describing policy checkpoints: written atomically, rebuilt without the original config.

The policy's cameras: ``ckpt["encoder"]`` is the encoder entry of its (first) camera
(`EncoderConfig.to_checkpoint` plus ``camera``, ``feature_cache`` and ``input``, the head's input
key); a policy seeing several cameras also has ``ckpt["cameras"]``, ``camera -> entry`` in the
policy's order. One camera keeps the single-camera layout (input ``vision``, no ``cameras``), so
checkpoints written before several cameras read the same. `vision_fields` writes these fields and
`camera_entries` reads them; nothing else should.

The robot: ``ckpt["robot"]`` is the `RobotDescription` (dict form) of the store it was trained on:
action size and bounds, control rate, cameras at their native size, proprio layout. The server
announces it and clips to its bounds. Checkpoints written before it have none and read as CubePick's
(`robot_description`). ``ckpt["env"]`` is the simulator's config, None for data from a real arm.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from policies import BCPolicy, make_policy
from s2robot.errors import UserError
from s2robot.fileio import atomic_torch_save, file_hash
from s2robot.robot_description import RobotDescription, cube_pick

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


VISION = "vision"


def vision_input(camera: str, cameras: Sequence[str]) -> str:
    """The head's input key for ``camera``'s features: ``vision`` when the policy sees one camera (as
    before several cameras), else ``vision_<camera>`` (torch module names cannot hold dots: camera
    names never do)."""
    return VISION if len(cameras) == 1 else f"{VISION}_{camera}"


def vision_fields(entries: Sequence[dict]) -> dict:
    """The checkpoint fields of the policy's cameras from one encoder entry per camera (each with
    ``camera`` and ``input``), in order; no entries (a policy without vision): ``encoder`` None."""
    out: dict = {"encoder": dict(entries[0]) if entries else None}
    if len(entries) > 1:
        out["cameras"] = {e["camera"]: dict(e) for e in entries}
    return out


def camera_entries(ckpt: dict) -> dict[str, dict]:
    """``camera -> encoder entry`` (``input`` filled in) in the policy's order; ``{}`` without vision."""
    if VISION not in ckpt.get("inputs", ()):
        return {}
    entries = ckpt.get("cameras") or ({ckpt["encoder"]["camera"]: ckpt["encoder"]} if ckpt.get("encoder") else {})
    if not entries:
        raise CheckpointError(
            f"{ckpt.get('path', 'the checkpoint')} has vision inputs but no encoder entry; it is "
            f"damaged or not written by train_policy.py"
        )
    out = {
        str(cam): {"input": VISION if len(entries) == 1 else f"{VISION}_{cam}", **e, "camera": str(cam)}
        for cam, e in entries.items()
    }
    shapes = ckpt.get("input_shapes", {})
    if missing := [e["input"] for e in out.values() if e["input"] not in shapes]:
        raise CheckpointError(
            f"{ckpt.get('path', 'the checkpoint')}: its cameras feed head inputs {missing} the head "
            f"does not have ({sorted(shapes)}); it is damaged, retrain or use another"
        )
    return out


def policy_from_checkpoint(ckpt: dict) -> BCPolicy:
    policy = make_policy(ckpt["policy"]["name"], ckpt["input_shapes"], ckpt["action_dim"], **ckpt["policy"]["kwargs"])
    policy.load_state_dict(ckpt["state_dict"])
    return policy.eval()


def robot_description(ckpt: dict) -> RobotDescription:
    """The robot the policy was trained for: ``ckpt["robot"]``, or, in a checkpoint from before
    descriptions (always CubePick), CubePick's as its env config set it up."""
    if ckpt.get("robot"):
        return RobotDescription.from_dict(ckpt["robot"])
    env = ckpt.get("env")
    if not isinstance(env, dict):
        raise CheckpointError(
            f"{ckpt.get('path', 'the checkpoint')} describes neither its robot nor its simulator; it is damaged "
            f"or not written by train_policy.py"
        )
    cameras = list(camera_entries(ckpt)) or list(env.get("cameras", ("agentview",)))
    return cube_pick(cameras=cameras, image_size=env.get("image_size", 224), control_hz=env.get("control_freq", 20))
