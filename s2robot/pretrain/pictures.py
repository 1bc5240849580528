"""The picture a pre-training run leaves to look at: views, masked inputs and reconstructions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from s2robot.encoders.normalize import image_stats, normalize_images
from s2robot.fileio import atomic_path
from s2robot.pretrain.mae import MAE, step_generator, unpatchify
from s2robot.pretrain.views import random_resized_crop
from s2robot.s2 import merge_chessboard


@torch.no_grad()
def save_reconstructions(model: MAE, frames: torch.Tensor, path: Path, seed: int = 0) -> None:
    """PNG grid, one column per frame; per scale three rows: the view (scale s: its s*s tiles
    stitched back), the masked input (grey = dropped patches), and the reconstruction with the
    visible patches pasted in. With ``norm_pix_loss`` the model predicts per-patch normalised
    pixels, so, as in MAE's own figures, a masked patch is drawn with its true mean and spread:
    the picture shows the predicted pattern, not the predicted brightness."""
    from PIL import Image, ImageDraw

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = random_resized_crop(frames.to(device), model.view_size, scale=(1, 1), ratio=(1, 1))
    _, details = model(normalize_images(x, model.spec.mean, model.spec.std), generator=step_generator(seed, -1))
    model.train(was_training)
    mean, std = image_stats(model.spec.mean, model.spec.std, device)
    p = model.patch_size
    cell = max(128, model.view_size)
    rows, labels = [], []
    for s, (tiles, pred, mask) in zip(model.scales, details["views"]):
        n = round(s)
        pix_mask = unpatchify(mask[..., None].expand(-1, -1, p * p * 3), p)
        recon = model.reconstruct(tiles, pred)
        pasted = tiles.float() * (1 - pix_mask) + recon * pix_mask
        grey = (0.5 - mean) / std
        masked = tiles.float() * (1 - pix_mask) + grey * pix_mask
        for img, label in ((tiles.float(), "view"), (masked, "masked"), (pasted, "recon")):
            full = merge_chessboard(img, n) * std + mean
            full = torch.nn.functional.interpolate(full.clamp(0, 1), size=(cell, cell), mode="nearest")
            rows.append(full)
            labels.append(f"x{s:g} {label}")
    b, gap, label_w = frames.shape[0], 2, 60
    canvas = Image.new("RGB", (label_w + b * (cell + gap), len(rows) * (cell + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (row, label) in enumerate(zip(rows, labels)):
        draw.text((2, r * (cell + gap) + cell // 2 - 5), label, fill="black")
        arr = (row.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for c in range(b):
            canvas.paste(Image.fromarray(arr[c]), (label_w + c * (cell + gap), r * (cell + gap)))
    with atomic_path(path) as tmp:
        canvas.save(tmp)
