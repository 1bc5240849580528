import dataclasses
import time

import pytest
import torch
from safetensors.torch import save_file

from s2robot import encoders
from s2robot.encoders import build_backbone, build_encoder, resolve_spec
from s2robot.encoders.weights import WeightsError, file_md5, find_weights

SPEC = resolve_spec("mvp_s", img_size=32)


@pytest.fixture(scope="module")
def trained_sd():
    torch.manual_seed(7)
    return build_backbone(SPEC).state_dict()


def _enc(weights, **kw):
    return build_encoder("mvp_s", weights=weights, img_size=32, scales=[1, 2], seed=123, **kw)


def test_mvp_checkpoint_round_trip(tmp_path, trained_sd):
    path = tmp_path / "vits-own.pth"
    # MVP format, plus MAE decoder keys that a pre-training checkpoint carries.
    torch.save({"model": {**trained_sd, "decoder_pred.weight": torch.zeros(2, 2), "mask_token": torch.zeros(1)}}, path)
    enc = _enc(path)
    x = torch.rand(2, 3, 32, 32)
    ref = build_backbone(SPEC)
    ref.load_state_dict(trained_sd)
    want = ref.forward_features((x - torch.tensor(SPEC.mean).view(1, 3, 1, 1)) / torch.tensor(SPEC.std).view(1, 3, 1, 1))
    assert torch.allclose(_enc(path)(x), enc(x))
    assert torch.allclose(enc(x)[:, :384], want[:, 0], atol=1e-5)  # scale-1 CLS
    assert enc.weights_id == f"md5:{file_md5(path)}"
    # Random init differs: the weights really were loaded.
    assert not torch.allclose(_enc("random")(x), enc(x))


def test_plain_and_safetensors(tmp_path, trained_sd):
    plain, st = tmp_path / "plain.pt", tmp_path / "w.safetensors"
    torch.save({f"module.{k}": v for k, v in trained_sd.items()}, plain)  # DDP prefix too
    save_file({k: v.contiguous() for k, v in trained_sd.items()}, str(st))
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(_enc(plain)(x), _enc(st)(x))


def test_mismatch_is_refused_by_name(tmp_path, trained_sd):
    bad = dict(trained_sd)
    del bad["blocks.3.mlp.fc1.weight"]
    bad["blocks.0.attn.qkv.weight"] = torch.zeros(5, 5)
    bad["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save({"model": bad}, path)
    with pytest.raises(WeightsError) as e:
        _enc(path)
    msg = str(e.value)
    assert "blocks.3.mlp.fc1.weight" in msg and "extra.weight" in msg and "blocks.0.attn.qkv.weight" in msg


def test_other_resolution_checkpoint_is_refused(tmp_path, trained_sd):
    path = tmp_path / "w.pth"
    torch.save({"model": trained_sd}, path)
    with pytest.raises(WeightsError, match="pos_embed"):
        build_encoder("mvp_s", weights=path, img_size=64)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        _enc(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        _enc(junk)
    with pytest.raises(WeightsError, match="weights=random"):
        _enc(None)


def test_auto_uses_cache_and_checks_md5(tmp_path, trained_sd, monkeypatch):
    cached = tmp_path / "own.pth"
    torch.save({"model": trained_sd}, cached)
    spec = dataclasses.replace(SPEC, checkpoint="own.pth", md5=file_md5(cached), url=None)
    monkeypatch.setitem(encoders.ENCODERS, "mvp_s", dataclasses.replace(spec, img_size=224))
    assert find_weights(spec, cache_dir=tmp_path) == cached
    enc = build_encoder("mvp_s", weights="auto", img_size=32, cache_dir=tmp_path)
    assert enc.weights_id == f"md5:{spec.md5}"
    with pytest.raises(WeightsError, match="MD5"):
        find_weights(dataclasses.replace(spec, md5="0" * 32), cache_dir=tmp_path)


def test_auto_without_file_or_network_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("S2ROBOT_OFFLINE", raising=False)
    # A loopback port nobody listens on: refused at once, like a machine without internet.
    spec = dataclasses.replace(SPEC, url="http://127.0.0.1:9/vits.pth")
    t = time.monotonic()
    with pytest.raises(WeightsError) as e:
        find_weights(spec, cache_dir=tmp_path)
    assert time.monotonic() - t < 5
    msg = str(e.value)
    assert "vits-mae-hoi.pth" in msg and spec.url in msg and "encoder.weights=" in msg
    assert not list(tmp_path.iterdir())  # no half-written file left behind


def test_offline_switch_skips_download(tmp_path, monkeypatch):
    monkeypatch.setenv("S2ROBOT_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline"):
        find_weights(SPEC, cache_dir=tmp_path)
