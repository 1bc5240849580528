"""Masked-autoencoder pre-training (MAE / MVP recipe) of a registry ViT, single-scale or S².

The encoder is ``build_backbone(spec)`` itself, so its state dict has exactly the timm-style
names ``build_encoder`` loads. Per image: patchify, drop 75% of the patch tokens (a fresh
random shuffle per sample), encode the kept 25% plus CLS, decode with a light transformer
that sees mask tokens in the dropped places, and score the prediction on the masked patches
only, against per-patch normalised pixels (``norm_pix_loss``).

S² pre-training (``scales=[1, 2]``): every training crop is also resized to 2x (and 3x ...)
the native size and cut into native-size tiles (``resize_to`` + ``split_chessboard``), the
views the S² wrapper will feed the frozen encoder later. All tiles of all scales go through
one encoder call, each tile masked independently. The loss is the mean over scales of each
scale's masked-patch loss, so scale 1 keeps its weight next to the s*s tiles of scale s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from s2robot.encoders import EncoderSpec, build_backbone
from s2robot.pretrain.views import s2_views
from s2robot.s2 import scale_sizes

# ---------------------------------------------------------------------------------------------
# patches, positions, masking


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """``B x 3 x H x W`` -> ``B x N x (p*p*3)``, patches row-major, pixels (row, col, channel)."""
    b, c, h, w = imgs.shape
    x = imgs.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum("bchpwq->bhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(x: torch.Tensor, p: int, c: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify` for square images."""
    b, n, _ = x.shape
    g = math.isqrt(n)
    x = x.reshape(b, g, g, p, p, c)
    return torch.einsum("bhwpqc->bchpwq", x).reshape(b, c, g * p, g * p)


def sincos_pos_embed(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE), ``(1 [+ 1]) + grid*grid`` rows of ``dim``."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs a dim divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))
    ys, xs = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")

    def emb(pos):
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    pe = np.concatenate([emb(xs), emb(ys)], axis=1)
    if cls_token:
        pe = np.concatenate([np.zeros((1, dim)), pe], axis=0)
    return torch.from_numpy(pe).float()[None]


def random_masking(
    batch: int,
    n_patches: int,
    mask_ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
):
    """Per-sample random shuffle; keep the first ``n_patches * (1 - mask_ratio)`` of it.

    Returns ``ids_keep`` (B x n_keep), ``mask`` (B x N, 1 = masked, 0 = kept) and ``ids_restore``
    (B x N, the permutation that puts shuffled tokens back in grid order).
    """
    n_keep = max(1, int(n_patches * (1 - mask_ratio)))
    noise = torch.rand(batch, n_patches, generator=generator).to(device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :n_keep]
    mask = torch.ones(batch, n_patches, device=device)
    mask[:, :n_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return ids_keep, mask, ids_restore


def patch_targets(imgs: torch.Tensor, p: int, norm_pix: bool) -> torch.Tensor:
    target = patchify(imgs.float(), p)
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    return target


def masked_patch_loss(
    pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor, p: int, norm_pix: bool = True
) -> torch.Tensor:
    """Mean squared error over the masked patches only (``mask`` 1 = masked)."""
    per_patch = ((pred.float() - patch_targets(imgs, p, norm_pix)) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1)


# ---------------------------------------------------------------------------------------------
# the model


class MAE(nn.Module):
    """MAE around ``build_backbone(spec)``; ``self.encoder`` is what gets exported."""

    def __init__(
        self,
        spec: EncoderSpec,
        *,
        scales: Sequence[float] = (1,),
        mask_ratio: float = 0.75,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        norm_pix_loss: bool = True,
    ):
        super().__init__()
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.spec = spec
        self.scales = list(scales)
        self.sizes = scale_sizes(self.scales, spec.img_size)
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.patch_size = spec.patch_size
        self.n_patches = spec.grid**2
        self.encoder = build_backbone(spec)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_embed = nn.Linear(spec.embed_dim, decoder_dim)
        self.register_buffer("decoder_pos_embed", sincos_pos_embed(decoder_dim, spec.grid), persistent=False)
        self.decoder_blocks = nn.ModuleList(
            [
                Block(
                    decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6)
                )
                for _ in range(decoder_depth)
            ]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, spec.patch_size**2 * 3)
        self._init_weights()

    @property
    def view_size(self) -> int:
        """Side of the crop every scale is built from (the largest scale's size)."""
        return max(self.sizes)

    def _init_weights(self) -> None:
        # MAE's initialisation; the encoder's position embedding is fixed sin-cos, as in MAE/MVP.
        enc = self.encoder
        with torch.no_grad():
            enc.pos_embed.copy_(sincos_pos_embed(self.spec.embed_dim, self.spec.grid))
        enc.pos_embed.requires_grad_(False)
        w = enc.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(enc.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def encode_masked(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """Encoder on the kept patches only: ``B x (1 + n_keep) x C`` after the final norm."""
        enc = self.encoder
        tokens = enc.patch_embed(x) + enc.pos_embed[:, 1:]
        tokens = torch.gather(tokens, 1, ids_keep[..., None].expand(-1, -1, tokens.shape[-1]))
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        tokens = enc.norm_pre(torch.cat([cls, tokens], dim=1))
        return enc.norm(enc.blocks(tokens))

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Pixel predictions for every patch, ``B x N x (p*p*3)``."""
        x = self.decoder_embed(latent)
        b, n = ids_restore.shape
        fill = self.mask_token.expand(b, n + 1 - x.shape[1], -1).to(x.dtype)
        patches = torch.cat([x[:, 1:], fill], dim=1)
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def forward_tiles(self, tiles: torch.Tensor, generator: torch.Generator | None = None):
        """MAE on native-size tiles: (predictions, mask)."""
        ids_keep, mask, ids_restore = random_masking(
            tiles.shape[0], self.n_patches, self.mask_ratio, generator=generator, device=tiles.device
        )
        return self.decode(self.encode_masked(tiles, ids_keep), ids_restore), mask

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """``x``: normalised ``B x 3 x V x V`` crops (V = ``view_size``). Returns (loss, details)
        with details = per-scale losses and the tiles, predictions and masks per scale."""
        views = s2_views(x, self.scales, self.spec.img_size)
        pred, mask = self.forward_tiles(torch.cat(views, dim=0), generator)
        counts = [v.shape[0] for v in views]
        losses, out = [], []
        for v, pr, m in zip(views, pred.split(counts), mask.split(counts)):
            losses.append(masked_patch_loss(pr, v, m, self.patch_size, self.norm_pix_loss))
            out.append((v, pr, m))
        loss = torch.stack(losses).mean()
        return loss, {"scale_losses": [float(x.detach()) for x in losses], "views": out}

    def reconstruct(self, tiles: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Predictions back in the tiles' (normalised) pixel space, undoing the per-patch norm."""
        pred = pred.float()
        if self.norm_pix_loss:
            target = patchify(tiles.float(), self.patch_size)
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5 + target.mean(dim=-1, keepdim=True)
        return unpatchify(pred, self.patch_size)

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the encoder, timm-style names, on the CPU in float32 (the MVP ``"model"`` entry)."""
        return {k: v.detach().to("cpu", torch.float32).clone() for k, v in self.encoder.state_dict().items()}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms and tokens (MAE)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(("cls_token", "mask_token", "pos_embed")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def step_generator(seed: int, step: int) -> torch.Generator:
    """The RNG of step ``step``: crops and masks of a step never depend on earlier steps, so a
    resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)
