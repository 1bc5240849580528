"""Episode videos and contact sheets: camera frames upscaled, labelled, written as H.264 mp4 / PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_SIZE = 256  # small policy frames (64 px) are upscaled to at least this so labels are readable
GREEN, RED, WHITE, GREY = (40, 200, 70), (230, 50, 50), (255, 255, 255), (30, 30, 30)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except TypeError:
        return ImageFont.load_default()


def upscale(frame: np.ndarray, min_size: int = MIN_SIZE) -> np.ndarray:
    """Nearest-neighbour upscale by the smallest integer factor that reaches ``min_size`` (keeps pixels crisp)."""
    k = max(1, -(-min_size // min(frame.shape[:2])))
    return np.repeat(np.repeat(frame, k, axis=0), k, axis=1) if k > 1 else frame


def labelled(frame: np.ndarray, top: str, bottom: str = "", color=WHITE, min_size: int = MIN_SIZE) -> np.ndarray:
    """The frame upscaled, with a dark header bar holding ``top`` (in ``color``) and ``bottom``
    (white, smaller) and a border of ``color``. Output sides are multiples of 16 (H.264 blocks)."""
    img = upscale(np.asarray(frame, dtype=np.uint8), min_size)
    h, w = img.shape[:2]
    big = max(12, w // 14)
    small = max(10, w // 20)
    bar = big + small + 12
    out_h, out_w = -(-(h + bar) // 16) * 16, -(-w // 16) * 16
    canvas = Image.new("RGB", (out_w, out_h), GREY)
    canvas.paste(Image.fromarray(img), (0, out_h - h))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 3), top, fill=color, font=_font(big))
    if bottom:
        draw.text((6, 6 + big), bottom, fill=WHITE, font=_font(small))
    border = max(2, w // 128)
    draw.rectangle([0, out_h - h, w - 1, out_h - 1], outline=color, width=border)
    return np.asarray(canvas)


def result_text(success: bool) -> tuple[str, tuple[int, int, int]]:
    return ("SUCCESS", GREEN) if success else ("FAIL", RED)


def episode_frames(
    frames: Sequence[np.ndarray], seed: int, success: bool, min_size: int = MIN_SIZE
) -> list[np.ndarray]:
    """Every frame labelled with the seed, the episode's outcome and the step."""
    word, color = result_text(success)
    n = len(frames) - 1  # frame 0 is the reset observation
    return [labelled(f, f"seed {seed}  {word}", f"step {t}/{n}", color, min_size) for t, f in enumerate(frames)]


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: int = 20) -> Path:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # yuv420p + H.264 plays in browsers and on every OS; sides are already multiples of 16.
    with imageio.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=8,
        macro_block_size=16,
        ffmpeg_log_level="error",
    ) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    return path


def write_episode_video(
    path: str | Path, frames: Sequence[np.ndarray], seed: int, success: bool, fps: int = 20, min_size: int = MIN_SIZE
) -> Path:
    return write_mp4(path, episode_frames(frames, seed, success, min_size), fps)


def pick_frames(n_frames: int, k: int) -> list[int]:
    """``k`` indices spread evenly from the first to the last frame (fewer if the episode is short)."""
    return sorted({round(x) for x in np.linspace(0, n_frames - 1, k)})


def contact_sheet(path: str | Path, rows: Sequence[dict], tile: int = 192) -> Path:
    """One row per episode: ``{"seed", "success", "frames": [...], "steps": [...]}`` (a few frames of
    it and their step numbers, see ``pick_frames``), each tile labelled with seed, outcome and step."""
    if not rows:
        raise ValueError("contact_sheet needs at least one episode")
    width = max(len(r["frames"]) for r in rows)
    lines = []
    for r in rows:
        word, color = result_text(r["success"])
        tiles = []
        for frame, step in zip(r["frames"], r["steps"]):
            img = np.asarray(Image.fromarray(upscale(frame, tile)).resize((tile, tile), Image.NEAREST))
            tiles.append(labelled(img, f"seed {r['seed']} {word}", f"step {step}", color, min_size=tile))
        tiles += [np.full_like(tiles[0], GREY[0])] * (width - len(tiles))  # short episodes: pad the row
        lines.append(np.concatenate(tiles, axis=1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(lines, axis=0)).save(path)
    return path
