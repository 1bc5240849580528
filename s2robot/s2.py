"""The S² ("scaling on scales") multi-scale wrapper around a frozen backbone.

Method: shared/docs/S2_METHOD.md. For each scale s the image is resized to s*S,
cut into s*s native-size tiles (chessboard), every tile goes through the backbone,
the tile feature grids are stitched back and area-pooled to one grid, and the
scales are concatenated along channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Backbone = Callable[[torch.Tensor], torch.Tensor]


class S2Error(ValueError):
    """A bad input or configuration for the S² wrapper."""


def split_chessboard(x: torch.Tensor, num_split: int) -> torch.Tensor:
    """Cut ``B x C x H x W`` into ``num_split**2`` tiles stacked on the batch axis.

    Tile (i, j) (row i, column j) of every image occupies batch rows
    ``[(i * n + j) * B, (i * n + j + 1) * B)``, the layout of the official wrapper.
    """
    b, c, h, w = x.shape
    n = num_split
    if h % n or w % n:
        raise S2Error(f"cannot split a {h}x{w} map into {n}x{n} equal tiles")
    th, tw = h // n, w // n
    # B C n th n tw -> n n B C th tw: one reshape instead of n*n slices.
    tiles = x.reshape(b, c, n, th, n, tw).permute(2, 4, 0, 1, 3, 5)
    return tiles.reshape(n * n * b, c, th, tw)


def merge_chessboard(x: torch.Tensor, num_split: int) -> torch.Tensor:
    """Inverse of :func:`split_chessboard`: ``(n*n*B) x C x h x w`` -> ``B x C x nh x nw``."""
    nb, c, th, tw = x.shape
    n = num_split
    if nb % (n * n):
        raise S2Error(f"batch of {nb} tiles is not a multiple of {n}x{n}")
    b = nb // (n * n)
    grid = x.reshape(n, n, b, c, th, tw).permute(2, 3, 0, 4, 1, 5)
    return grid.reshape(b, c, n * th, n * tw)


def scale_sizes(scales: Sequence[float], tile_size: int) -> list[int]:
    if scales is None or len(scales) == 0:
        raise S2Error("scales is empty: give at least one scale, e.g. [1] or [1, 2]")
    sizes = []
    for s in scales:
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not s > 0:
            raise S2Error(f"scale {s!r} is not a positive number; scales must look like [1, 2]")
        size = round(s * tile_size)
        if size % tile_size or abs(size - s * tile_size) > 1e-6:
            raise S2Error(
                f"scale {s} gives a {s * tile_size:g} px image, not a whole multiple of the "
                f"{tile_size} px tile size; use integer scales such as 1, 2, 3"
            )
        sizes.append(size)
    return sizes


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    # Downsampling a real high-resolution frame needs antialiasing; upsampling is plain
    # bicubic as in the paper (antialias has no effect there).
    return F.interpolate(
        x.float(),
        size=(size, size),
        mode="bicubic",
        align_corners=False,
        antialias=x.shape[-1] > size,
    ).to(x.dtype)


def _to_map(out: torch.Tensor, num_prefix_tokens: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Backbone output -> (``N x C x h x w`` feature map, ``N x P x C`` prefix tokens or None)."""
    if out.ndim == 4:
        return out, None
    if out.ndim != 3:
        raise S2Error(f"backbone returned shape {tuple(out.shape)}; expected tokens B x N x C or maps B x C x h x w")
    n_tok = out.shape[1]
    if num_prefix_tokens is None:
        # The patch grid is the largest square that fits; the rest are prefix (CLS/register) tokens.
        num_prefix_tokens = n_tok - math.isqrt(n_tok) ** 2
    n_patch = n_tok - num_prefix_tokens
    side = math.isqrt(max(n_patch, 0))
    if n_patch <= 0 or side * side != n_patch:
        raise S2Error(
            f"backbone returned {n_tok} tokens; with {num_prefix_tokens} prefix tokens the "
            f"{n_patch} patch tokens do not form a square grid (set num_prefix_tokens)"
        )
    prefix = out[:, :num_prefix_tokens] if num_prefix_tokens else None
    patches = out[:, num_prefix_tokens:]
    fmap = patches.transpose(1, 2).reshape(out.shape[0], out.shape[2], side, side)
    return fmap, prefix


def _run_backbone(backbone: Backbone, x: torch.Tensor, max_batch: int | None) -> torch.Tensor:
    if max_batch is None or x.shape[0] <= max_batch:
        return backbone(x)
    return torch.cat([backbone(chunk) for chunk in x.split(max_batch)], dim=0)


def s2_forward(
    backbone: Backbone,
    x: torch.Tensor,
    scales: Sequence[float],
    *,
    tile_size: int,
    num_prefix_tokens: int | None = None,
    output_grid: str = "native",
    one_call: bool = True,
    max_batch: int | None = None,
) -> torch.Tensor:
    """S² features of the image batch ``x`` (``B x 3 x H x H``, any H; H > tile_size is a
    native high-resolution frame and each scale is built from it).

    Returns tokens ``B x (P + g*g) x (C * len(scales))`` when the backbone returns tokens,
    or maps ``B x (C * len(scales)) x g x g`` when it returns maps, where g is the
    backbone's grid (``output_grid="native"``, the paper) or the largest scale's grid
    (``"largest"``). Prefix tokens of a scale are the mean over its tiles.

    ``one_call`` sends all tiles of all scales through a single backbone call (same result
    as a per-scale loop, far less launch overhead); ``max_batch`` chunks that call.
    """
    if x.ndim != 4:
        raise S2Error(f"expected an image batch B x 3 x H x W, got shape {tuple(x.shape)}")
    if x.shape[-1] != x.shape[-2]:
        raise S2Error(f"S² needs square images, got {x.shape[-2]}x{x.shape[-1]}; crop or resize the frame first")
    if output_grid not in ("native", "largest"):
        raise S2Error(f"output_grid must be 'native' or 'largest', got {output_grid!r}")
    sizes = scale_sizes(scales, tile_size)
    b = x.shape[0]
    splits = [size // tile_size for size in sizes]
    tiles = [split_chessboard(resize_to(x, size), n) for size, n in zip(sizes, splits)]

    if one_call:
        out = _run_backbone(backbone, torch.cat(tiles, dim=0), max_batch)
        outs = out.split([t.shape[0] for t in tiles], dim=0)
    else:
        outs = [_run_backbone(backbone, t, max_batch) for t in tiles]

    maps, prefixes = [], []
    for out, n in zip(outs, splits):
        fmap, prefix = _to_map(out, num_prefix_tokens)
        maps.append(merge_chessboard(fmap, n))
        if prefix is not None:
            prefixes.append(prefix.reshape(n * n, b, *prefix.shape[1:]).mean(dim=0))

    grid = maps[splits.index(min(splits))].shape[-1] // min(splits)
    if output_grid == "largest":
        grid *= max(splits)
    pooled = [
        m if m.shape[-1] == grid else F.interpolate(m.float(), size=(grid, grid), mode="area").to(m.dtype) for m in maps
    ]
    fmap = torch.cat(pooled, dim=1)
    if outs[0].ndim == 4:
        return fmap
    tokens = fmap.flatten(2).transpose(1, 2)
    if prefixes:
        tokens = torch.cat([torch.cat(prefixes, dim=-1), tokens], dim=1)
    return tokens
