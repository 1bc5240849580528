import pytest
import torch

from s2robot.encoders import ENCODERS, UnknownEncoderError, build_encoder, get_spec, resolve_spec

EXPECTED = {"mvp_s", "mvp_b", "mvp_l", "vit_t", "vit_s", "vit_b", "vit_l", "vit_h"}


def test_registry_has_the_paper_encoders():
    assert EXPECTED <= set(ENCODERS)
    # MVP quirks the paper's numbers depend on.
    assert get_spec("mvp_s").num_heads == 12 and get_spec("vit_s").num_heads == 6
    assert get_spec("mvp_l").img_size == 256
    assert get_spec("mvp_b").md5 == "526093597ac1dc55df618bcbdfe8da4a"


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(UnknownEncoderError, match="known encoders: .*mvp_b"):
        get_spec("mvp_xl")


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in ("vit_h", "vit_l", "mvp_l") else n for n in sorted(EXPECTED)],
)  # the big three take 8-19 s each
def test_every_encoder_builds_and_runs(name):
    # Real architectures at their native size, random weights, batch 1.
    enc = build_encoder(name, weights="random", scales=[1])
    spec = enc.spec
    out = enc(torch.rand(1, 3, spec.img_size, spec.img_size))
    assert out.shape == (1, spec.embed_dim) == (1, enc.feature_dim)
    assert torch.isfinite(out).all()
    assert not any(p.requires_grad for p in enc.parameters())


def test_img_size_override_must_fit_patches():
    assert resolve_spec("vit_t", img_size=64).grid == 4
    with pytest.raises(ValueError, match="multiple of the patch size"):
        resolve_spec("vit_t", img_size=70)
