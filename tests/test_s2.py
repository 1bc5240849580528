import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from s2robot.s2 import S2Error, merge_chessboard, s2_forward, split_chessboard


class TinyTokenViT(nn.Module):
    """Patch embedding + one attention layer: tokens B x (P + h*w) x C, position-dependent."""

    def __init__(self, img=32, patch=8, dim=12, prefix=1):
        super().__init__()
        self.prefix = prefix
        self.proj = nn.Conv2d(3, dim, patch, patch)
        n = (img // patch) ** 2
        self.pos = nn.Parameter(torch.randn(1, prefix + n, dim))
        self.cls = nn.Parameter(torch.randn(1, prefix, dim))
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)

    def forward(self, x):
        t = self.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], 1) + self.pos
        return t + self.attn(t, t, t)[0]


class TinyConv(nn.Module):
    def __init__(self, dim=5):
        super().__init__()
        self.conv = nn.Conv2d(3, dim, 4, 4)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def reference_s2(backbone, x, scales, tile, prefix, largest=False):
    """The method description, one scale at a time, tiles cut with explicit slices."""
    feats, clss = [], []
    for s in scales:
        size = s * tile
        xs = (
            x
            if x.shape[-1] == size
            else F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=x.shape[-1] > size)
        )
        tiles = [xs[:, :, i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] for i in range(s) for j in range(s)]
        outs = [backbone(t) for t in tiles]
        rows = []
        for i in range(s):
            row = []
            for j in range(s):
                o = outs[i * s + j][:, prefix:]
                g = int(math.sqrt(o.shape[1]))
                row.append(o.transpose(1, 2).reshape(o.shape[0], o.shape[2], g, g))
            rows.append(torch.cat(row, dim=3))
        feats.append(torch.cat(rows, dim=2))
        if prefix:
            clss.append(torch.stack([o[:, :prefix] for o in outs]).mean(0))
    g = feats[0].shape[-1] // scales[0] * (max(scales) if largest else 1)
    pooled = [F.interpolate(f, size=(g, g), mode="area") for f in feats]
    tok = torch.cat(pooled, 1).flatten(2).transpose(1, 2)
    return torch.cat([torch.cat(clss, -1), tok], 1) if prefix else tok


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return TinyTokenViT().eval()


@pytest.mark.parametrize("scales", [[1], [1, 2], [1, 2, 3], [2, 3]])
@pytest.mark.parametrize("one_call", [True, False])
def test_matches_reference(vit, scales, one_call):
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        got = s2_forward(vit, x, scales, tile_size=32, one_call=one_call)
        want = reference_s2(vit, x, scales, 32, prefix=1)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-5


def test_largest_grid_and_chunking(vit):
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        got = s2_forward(vit, x, [1, 2], tile_size=32, output_grid="largest", max_batch=4)
        want = reference_s2(vit, x, [1, 2], 32, prefix=1, largest=True)
    assert got.shape == (3, 1 + 64, 24)
    assert (got - want).abs().max().item() <= 1e-5


def test_high_resolution_input_builds_scales_from_the_frame(vit):
    x = torch.rand(1, 3, 64, 64)  # a native 2x frame
    with torch.no_grad():
        got = s2_forward(vit, x, [1, 2], tile_size=32)
        want = reference_s2(vit, x, [1, 2], 32, prefix=1)
        upsampled = s2_forward(vit, F.interpolate(x, size=32, mode="bicubic", antialias=True), [1, 2], tile_size=32)
    assert (got - want).abs().max().item() <= 1e-5
    # The 2x scale saw the real pixels, so it differs from upsampling the small image.
    assert (got[..., 12:] - upsampled[..., 12:]).abs().max().item() > 1e-3


def test_maps_backbone():
    torch.manual_seed(0)
    conv = TinyConv()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        got = s2_forward(conv, x, [1, 2], tile_size=16)
        # Reference for maps: per-scale stitch then area-pool, written out directly.
        big = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
        m2 = torch.cat(
            [
                torch.cat([conv(big[:, :, i * 16 : (i + 1) * 16, j * 16 : (j + 1) * 16]) for j in range(2)], 3)
                for i in range(2)
            ],
            2,
        )
        want = torch.cat([conv(x), F.avg_pool2d(m2, 2)], 1)
    assert got.shape == (2, 10, 4, 4)
    assert (got - want).abs().max().item() <= 1e-5


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 4), n=st.integers(1, 4), t=st.integers(1, 6))
def test_split_merge_round_trip(b, c, n, t):
    x = torch.randn(b, c, n * t, n * t + 0)
    tiles = split_chessboard(x, n)
    assert tiles.shape == (n * n * b, c, t, t)
    # Tile (i, j) of image k is where the method says it is.
    i, j = n - 1, 0
    assert torch.equal(tiles[(i * n + j) * b], x[0, :, i * t : (i + 1) * t, j * t : (j + 1) * t])
    assert torch.equal(merge_chessboard(tiles, n), x)


@pytest.mark.parametrize("scales,channels", [([1], 768), ([1, 2], 1536), ([1, 2, 3], 2304)])
def test_vit_b16_shapes(scales, channels):
    from timm.models.vision_transformer import VisionTransformer

    # Shapes only, so a 1-block ViT-B/16 keeps the test fast.
    vit = VisionTransformer(
        img_size=224, patch_size=16, embed_dim=768, depth=1, num_heads=12, num_classes=0, global_pool=""
    )
    with torch.no_grad():
        out = s2_forward(vit.forward_features, torch.rand(1, 3, 224, 224), scales, tile_size=224, num_prefix_tokens=1)
    assert out.shape == (1, 1 + 196, channels)


@pytest.mark.parametrize(
    "shape,scales,match",
    [
        ((1, 3, 32, 24), [1], "square"),
        ((1, 3, 32, 32), [1.5], "whole multiple"),
        ((1, 3, 32, 32), [], "empty"),
        ((1, 3, 32, 32), [0], "positive"),
    ],
)
def test_clear_errors(vit, shape, scales, match):
    with pytest.raises(S2Error, match=match):
        s2_forward(vit, torch.rand(*shape), scales, tile_size=32)


def test_non_square_token_count():
    def bad(x):
        return torch.zeros(x.shape[0], 10, 4)  # 10 tokens, 1 prefix -> 9 = 3x3 ok; 2 prefix -> 8 not square

    with pytest.raises(S2Error, match="square grid"):
        s2_forward(bad, torch.rand(1, 3, 8, 8), [1], tile_size=8, num_prefix_tokens=2)
