"""Frames for MAE pre-training: from demo stores and folders of images or videos, centre-cropped
square and resized, as one uint8 tensor."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from s2robot.data.replay_buffer import ReplayBuffer, StoreError
from s2robot.errors import ConfigError
from s2robot.s2 import resize_to

log = logging.getLogger(__name__)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def _square_uint8(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``T x H x W x C`` frames to squares and resize them to ``size`` (antialiased)."""
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    frames = frames[..., :3]
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    frames = frames[:, top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(frames, dtype=np.uint8)
    out = []
    for chunk in np.array_split(frames, max(1, math.ceil(len(frames) / 256))):
        x = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).float()
        out.append(resize_to(x, size).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def _store_frames(path: str, camera: str, stride: int) -> np.ndarray:
    store = ReplayBuffer.open(path, required_keys=(camera,))
    if store.n_steps == 0:
        raise StoreError(f"{path}: the store has no frames; collect demonstrations first")
    blocks = []
    for start in range(0, store.n_steps, 1024 * stride):
        blocks.append(store.read(camera, start, min(store.n_steps, start + 1024 * stride))[::stride])
    return np.concatenate(blocks)


def _folder_frames(folder: str, stride: int) -> list[np.ndarray]:
    import imageio.v3 as iio

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"data.folders: {folder} is not a directory; give folders of images or videos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS)
    if not files:
        raise ConfigError(
            f"data.folders: {folder} holds no images ({', '.join(IMAGE_EXTS)}) or videos ({', '.join(VIDEO_EXTS)})"
        )
    out = []
    for path in files:
        try:
            if path.suffix.lower() in IMAGE_EXTS:
                out.append(np.asarray(iio.imread(path))[None])
            else:
                out.append(np.stack([np.asarray(f) for i, f in enumerate(iio.imiter(path)) if i % stride == 0]))
        except Exception as e:  # imageio raises many types for an unreadable file
            raise ConfigError(f"cannot read {path}: {e}; remove it from {folder} or fix it") from e
    return out


def load_frames(data_cfg: DictConfig, view_size: int) -> tuple[torch.Tensor, dict]:
    """All training frames as one uint8 ``N x F x F x 3`` tensor, and where they came from.

    F is ``data.frame_size`` or, when null, the largest source side capped at twice the
    training view (larger frames only cost memory and make the crops alias).
    """
    stride = int(data_cfg.get("stride", 1) or 1)
    sources: list[tuple[str, np.ndarray]] = []
    cameras = list(data_cfg.get("cameras") or [data_cfg.camera])
    for path in data_cfg.stores or []:
        for camera in cameras:
            sources.append((str(Path(path).resolve()), _store_frames(str(path), camera, stride)))
    for folder in data_cfg.get("folders") or []:
        for frames in _folder_frames(str(folder), stride):
            sources.append((str(Path(folder).resolve()), frames))
    if not sources:
        raise ConfigError("no training frames: set data.stores=[path/to/store.zarr] and/or data.folders=[dir]")
    size = data_cfg.get("frame_size") or min(max(min(f.shape[1:3]) for _, f in sources), 2 * view_size)
    frames = np.concatenate([_square_uint8(f, int(size)) for _, f in sources])
    max_frames = data_cfg.get("max_frames")
    if max_frames and len(frames) > max_frames:
        frames = frames[np.linspace(0, len(frames) - 1, int(max_frames)).round().astype(np.int64)]
    summary = {
        "stores": [str(Path(p).resolve()) for p in data_cfg.stores or []],
        "camera": str(data_cfg.camera),
        "cameras": cameras,
        "folders": [str(Path(p).resolve()) for p in data_cfg.get("folders") or []],
        "n_frames": int(len(frames)),
        "frame_size": int(size),
        "stride": stride,
    }
    return torch.from_numpy(frames), summary
