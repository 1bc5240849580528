"""Registry of frozen vision encoders: one small declarative spec per name.

Adding an encoder = one ``register(EncoderSpec(...))`` entry here and one yaml in
``configs/encoder/``. This module imports nothing of the project's and no torch, so anything
may read the registry; ``s2robot.encoders.build_encoder`` builds from it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# timm's augreg ViTs are trained on [-1, 1] inputs.
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)

log = logging.getLogger(__name__)


class UnknownEncoderError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that defines an encoder: architecture, input, normalisation, weights."""

    name: str
    family: str  # "mvp" or "timm": where the published weights come from
    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    checkpoint: str | None = None  # file name in the weights cache
    md5: str | None = None
    url: str | None = None
    timm_name: str | None = None  # the matching timm model, for exporting its weights
    description: str = ""

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size


ENCODERS: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    ENCODERS[spec.name] = spec
    return spec


def get_spec(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise UnknownEncoderError(f"unknown encoder {name!r}; known encoders: {', '.join(sorted(ENCODERS))}") from None


_MVP_URL = "https://berkeley.box.com/shared/static/{}.pth"
_mvp = partial(EncoderSpec, family="mvp", patch_size=16, mean=IMAGENET_MEAN, std=IMAGENET_STD)
_timm = partial(EncoderSpec, family="timm", img_size=224, patch_size=16, mean=INCEPTION_MEAN, std=INCEPTION_STD)

# MVP quirks (ir413/mvp): ViT-S has 12 heads, not timm's 6; ViT-L is trained at 256 px.
register(
    _mvp(
        name="mvp_s",
        img_size=224,
        embed_dim=384,
        depth=12,
        num_heads=12,
        checkpoint="vits-mae-hoi.pth",
        md5="fe6e30eb4256fae298ea0a6c6b4c1ae7",
        url=_MVP_URL.format("m93ynem558jo8vltlads5rcmnahgsyzr"),
        description="MVP ViT-S/16, MAE on HOI frames",
    )
)
register(
    _mvp(
        name="mvp_b",
        img_size=224,
        embed_dim=768,
        depth=12,
        num_heads=12,
        checkpoint="vitb-mae-egosoup.pth",
        md5="526093597ac1dc55df618bcbdfe8da4a",
        url=_MVP_URL.format("0ckepd2ja3pi570z89ogd899cn387yut"),
        description="MVP ViT-B/16, MAE on Ego Soup",
    )
)
register(
    _mvp(
        name="mvp_l",
        img_size=256,
        embed_dim=1024,
        depth=24,
        num_heads=16,
        checkpoint="vitl-256-mae-egosoup.pth",
        md5="5352b0b6c04f044f67eba41b667fcde6",
        url=_MVP_URL.format("6p0pc47mlpp4hhwlin2hf035lxlgddxr"),
        description="MVP ViT-L/16 at 256 px, MAE on Ego Soup",
    )
)
register(
    _timm(
        name="vit_t",
        embed_dim=192,
        depth=12,
        num_heads=3,
        checkpoint="vit_tiny_patch16_224.safetensors",
        timm_name="vit_tiny_patch16_224",
        description="timm ViT-Ti/16",
    )
)
register(
    _timm(
        name="vit_s",
        embed_dim=384,
        depth=12,
        num_heads=6,
        checkpoint="vit_small_patch16_224.safetensors",
        timm_name="vit_small_patch16_224",
        description="timm ViT-S/16",
    )
)
register(
    _timm(
        name="vit_b",
        embed_dim=768,
        depth=12,
        num_heads=12,
        checkpoint="vit_base_patch16_224.safetensors",
        timm_name="vit_base_patch16_224",
        description="timm ViT-B/16",
    )
)
register(
    _timm(
        name="vit_l",
        embed_dim=1024,
        depth=24,
        num_heads=16,
        checkpoint="vit_large_patch16_224.safetensors",
        timm_name="vit_large_patch16_224",
        description="timm ViT-L/16",
    )
)
register(
    _timm(
        name="vit_h",
        patch_size=14,
        embed_dim=1280,
        depth=32,
        num_heads=16,
        checkpoint="vit_huge_patch14_224.safetensors",
        timm_name="vit_huge_patch14_224",
        description="timm ViT-H/14",
    )
)


def resolve_spec(name: str, img_size: int | None = None) -> EncoderSpec:
    """The registered spec, optionally at another native size (small tests, own pre-training)."""
    spec = get_spec(name)
    if img_size is not None and img_size != spec.img_size:
        if img_size <= 0 or img_size % spec.patch_size:
            raise ValueError(
                f"encoder.img_size={img_size} must be a positive multiple of the patch size {spec.patch_size}"
            )
        spec = dataclasses.replace(spec, img_size=img_size)
    return spec
