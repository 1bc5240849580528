import numpy as np
import pytest
import torch

from s2robot.encoders import build_encoder
from s2robot.s2 import S2Error


@pytest.fixture(scope="module")
def enc():
    return build_encoder("vit_t", weights="random", scales=[1, 2], feature="tokens", img_size=32, seed=3)


def test_frozen_and_stays_in_eval(enc):
    enc.train()
    assert not enc.training and not enc.backbone.training
    assert all(not p.requires_grad for p in enc.parameters())


def test_uint8_frames_equal_float_input(enc):
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    a = enc(frames)
    b = enc(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    single = enc(frames[0])
    assert a.shape == (2, 1 + 4, 2 * 192) == (2, *enc.feature_shape)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(single[0], a[0], atol=1e-5)


def test_normalisation_is_applied(enc):
    x = torch.rand(1, 3, 32, 32)
    manual = enc.backbone.forward_features((x - 0.5) / 0.5)[:, :, :192]  # vit_t: inception mean/std
    assert torch.allclose(enc(x)[:, :, :192], manual, atol=1e-5)


@pytest.mark.parametrize("feature", ["cls", "mean"])
def test_feature_forms(enc, feature):
    other = build_encoder("vit_t", weights="random", scales=[1, 2], feature=feature, img_size=32, seed=3)
    x = torch.rand(2, 3, 32, 32)
    tokens = enc(x)
    want = tokens[:, 0] if feature == "cls" else tokens[:, 1:].mean(1)
    assert other.feature_dim == 384
    assert torch.allclose(other(x), want, atol=1e-5)


def test_output_feeds_a_trainable_head(enc):
    head = torch.nn.Linear(384, 1)
    head(enc(torch.rand(1, 3, 32, 32))).sum().backward()
    assert head.weight.grad is not None


def test_bad_inputs_fail_clearly(enc):
    with pytest.raises(ValueError, match="H x W x 3"):
        enc(np.zeros((2, 3, 32, 32), dtype=np.uint8))
    with pytest.raises(S2Error, match="square"):
        enc(np.zeros((1, 32, 48, 3), dtype=np.uint8))
    with pytest.raises(S2Error, match="empty"):
        build_encoder("vit_t", weights="random", scales=[], img_size=32)
    with pytest.raises(ValueError, match="feature"):
        build_encoder("vit_t", weights="random", feature="avg", img_size=32)


def test_float_images_outside_unit_range_are_refused(enc):
    frames = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[0, 1\].*0-255 pixel values: divide by 255"):
        enc(frames * 255)  # the classic mistake: silently normalised as if it were [0, 1]
    with pytest.raises(ValueError, match=r"range over \[-0\.9\d*, 0\.9\d*\].*before any normalisation"):
        enc(frames * 2 - 1)  # normalised twice
    nan = frames.clone()
    nan[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        enc(nan)
    # A little resampling overshoot is accepted.
    assert enc(frames * 1.005).shape == enc(torch.from_numpy(frames.numpy() - 0.005)).shape == (2, 5, 384)
