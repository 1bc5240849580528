"""The encoders' fast path against eager float32, and what happens when a part of it is missing.

Tolerances (stated once): bf16 keeps 8 bits of mantissa, so features differ from float32 by up
to ``BF16_FEATURE_RTOL`` (relative L2 per frame; 1.3% measured at ViT-Ti) and a trained head's
actions by ``BF16_ACTION_ATOL`` (2e-4 measured, actions in [-1, 1]). A compiled float32 encoder
reorders sums only: ``COMPILED_ATOL``.
"""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from s2robot.encoders import FrozenS2Encoder, build_backbone, resolve_spec
from s2robot.encoders import fast as fast_mod
from s2robot.encoders.fast import Inference, accelerate, bucket, resolve_inference
from s2robot.errors import ConfigError, UserError

BF16_FEATURE_RTOL = 3e-2
BF16_ACTION_ATOL = 1e-2
COMPILED_ATOL = 1e-4
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _encoder(depth=2, scales=(1, 2), device="cpu"):
    """A 2-block ViT at 32 px: the smallest model with every part of the path (S² tiles, attention)."""
    spec = dataclasses.replace(resolve_spec("vit_t", 32), depth=depth)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        backbone = build_backbone(spec)
    return FrozenS2Encoder(spec, backbone, scales=list(scales)).to(device)


def _frames(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _rel(a, b):
    return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max())


def test_resolve_defaults_and_typos():
    assert resolve_inference("cpu", "auto", None) == Inference(torch.device("cpu"), "fp32", False)
    assert resolve_inference("cpu", "fp32", True).compile
    with pytest.raises(ConfigError, match="dtype=fp16: must be one of auto, fp32, bf16"):
        resolve_inference("cpu", "fp16")
    assert issubclass(ConfigError, UserError)


def test_bf16_falls_back_to_fp32_where_the_cpu_cannot(monkeypatch, caplog):
    monkeypatch.setattr(fast_mod, "cpu_bf16_problem", lambda: "RuntimeError: no bf16 kernels")
    with caplog.at_level(logging.WARNING):
        got = resolve_inference("cpu", "bf16")
    assert got.dtype == "fp32"
    assert "cannot run bfloat16 (RuntimeError: no bf16 kernels); falling back to fp32" in caplog.text


def test_bf16_features_close_to_fp32():
    ref = _encoder()
    want = ref(_frames())
    enc = accelerate(_encoder(), resolve_inference("cpu", "bf16"))
    assert enc.backbone.pos_embed.dtype == torch.bfloat16 and enc.inference.dtype == "bf16"
    got = enc(_frames())
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert 0 < _rel(got, want) < BF16_FEATURE_RTOL  # > 0: it did run in bf16
    # normalisation happens in float32 whatever the backbone's dtype
    assert enc.preprocess(_frames()).dtype == torch.float32


def test_bf16_controller_actions_close_to_fp32(tiny_store, tmp_path_factory):
    from s2robot.rollout.controller import PolicyController
    from tests.serving.helpers import tiny_run

    path = tiny_run(tiny_store, tmp_path_factory.getbasetemp())
    rng = np.random.default_rng(1)
    obs = {"agentview": _frames(5, seed=1), "proprio": rng.normal(size=(5, 9)).astype(np.float32)}
    ref = PolicyController.from_checkpoint(path)
    fast = PolicyController.from_checkpoint(path, dtype="bf16")
    assert fast.inference.dtype == "bf16" and fast.encoder.inference.dtype == "bf16"
    np.testing.assert_allclose(fast.act(obs), ref.act(obs), atol=BF16_ACTION_ATOL, rtol=0)


def test_compile_failure_falls_back_to_eager(monkeypatch, caplog):
    def broken(fn, **kw):
        def run(x):
            raise RuntimeError("InductorError: no C++ compiler\nlong trace")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    want = _encoder()(_frames())
    enc = accelerate(_encoder(), Inference(torch.device("cpu"), "fp32", True))
    with caplog.at_level(logging.WARNING):
        got = enc(_frames())
    assert torch.equal(got, want)  # eager float32: the very numbers of the plain encoder
    assert "torch.compile failed for vit_t (RuntimeError: InductorError: no C++ compiler); running eager fp32" in (
        caplog.text
    )
    assert enc.inference.compile is False and enc(_frames()).shape == want.shape


def test_batches_pad_to_powers_of_two():
    assert [bucket(n) for n in (1, 2, 3, 5, 8, 9, 16, 17)] == [1, 2, 4, 8, 8, 16, 16, 32]


@pytest.mark.slow
def test_compiled_cpu_matches_eager():
    """torch.compile (inductor, CPU) of the whole S² forward, one block; 3 frames run padded to 4
    (one shape compiled: ~30 s on one core)."""
    ref = _encoder(depth=1)
    enc = accelerate(_encoder(depth=1), resolve_inference("cpu", "fp32", True), max_batch=4)
    np.testing.assert_allclose(enc(_frames(3)), ref(_frames(3)), atol=COMPILED_ATOL, rtol=0)
    assert enc.compiled.failed is None


@cuda
def test_cuda_fast_path_matches_fp32_eager():
    """bf16 + compile (CUDA graphs) + pinned uploads against float32 eager on the CPU."""
    want = _encoder(depth=12)(_frames(5))
    enc = accelerate(_encoder(depth=12), resolve_inference("cuda", "auto", None), max_batch=8)
    assert enc.inference == Inference(torch.device("cuda"), "bf16", True)
    for _ in range(3):  # graph trees record on the third call: every path is checked
        got = enc(_frames(5))
    assert got.device.type == "cuda" and enc.compiled.failed is None
    assert _rel(got.cpu(), want) < BF16_FEATURE_RTOL


@cuda
def test_cuda_fp32_eager_matches_cpu():
    want = _encoder()(_frames(4))
    got = accelerate(_encoder(), resolve_inference("cuda", "fp32", False))(_frames(4))
    np.testing.assert_allclose(got.cpu(), want, atol=1e-4, rtol=0)  # TF32 is off for fp32 matmuls by default


def test_feature_cache_in_bf16_has_its_own_key(tmp_path):
    from s2robot.data.feature_cache import cached_features
    from s2robot.data.replay_buffer import ReplayBuffer

    rng = np.random.default_rng(0)
    store = ReplayBuffer.create(tmp_path / "frames.zarr")
    store.add_episode(
        {
            "agentview": rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
            "action": rng.normal(size=(12, 7)).astype(np.float32),
        },
        seed=0,
    )
    store = ReplayBuffer.open(tmp_path / "frames.zarr")
    enc = _encoder()
    fp32, path32 = cached_features(store, enc, "agentview", batch_size=8, progress=False)
    bf16, path16 = cached_features(store, enc, "agentview", batch_size=8, progress=False, dtype="bf16")
    assert path16 != path32 and enc.backbone.pos_embed.dtype == torch.float32  # the caller's encoder is untouched
    assert 0 < _rel(torch.from_numpy(bf16), torch.from_numpy(fp32)) < BF16_FEATURE_RTOL
    again, path = cached_features(store, enc, "agentview", progress=False)  # the float32 cache, reused
    assert path == path32 and np.array_equal(again, fp32)
