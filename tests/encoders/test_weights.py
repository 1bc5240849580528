import argparse
import dataclasses
import time

import pytest
import torch
from safetensors.torch import save_file

from s2robot import encoders
from s2robot.encoders import build_backbone, build_encoder, resolve_spec
from s2robot.encoders.weights import WeightsError, file_md5, find_weights, load_weights

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
    mean, std = torch.tensor(SPEC.mean).view(1, 3, 1, 1), torch.tensor(SPEC.std).view(1, 3, 1, 1)
    want = ref.forward_features((x - mean) / std)
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


# -- weights of the other family, and files that carry more than tensors ----------------------


def _mvp_file(path, sd, **extra):
    """An MVP/MAE pre-training checkpoint: encoder + decoder keys under "model", and more."""
    torch.save(
        {"model": {**sd, "decoder_embed.weight": torch.zeros(2, 2), "mask_token": torch.zeros(1, 1, 2)}, **extra}, path
    )
    return path


@pytest.fixture(scope="module")
def vit_s_sd():
    return build_backbone(resolve_spec("vit_s", img_size=32)).state_dict()


def test_mvp_file_into_timm_encoder_is_refused_unless_overridden(tmp_path, vit_s_sd):
    # mvp_s and vit_s have identical key names and shapes at any size: only the file's origin tells.
    path = _mvp_file(tmp_path / "mvp.pth", vit_s_sd)
    with pytest.raises(
        WeightsError,
        match=r"MAE/MVP pre-training checkpoint \(MAE decoder keys.*use encoder=mvp_s.*"
        r"encoder.allow_family_mismatch=true",
    ):
        build_encoder("vit_s", weights=path, img_size=32)
    # Training entries beside "model" give it away too, decoder keys or not.
    bare = tmp_path / "bare.pth"
    torch.save({"model": vit_s_sd, "epoch": 399, "optimizer": {"state": {}, "param_groups": []}}, bare)
    with pytest.raises(WeightsError, match=r"MAE training entries \['epoch', 'optimizer'\]"):
        load_weights(torch.nn.Identity(), resolve_spec("vit_s", 32), bare)
    # The same file is what an MVP encoder expects; and the explicit override loads it into vit_s.
    assert build_encoder("mvp_s", weights=path, img_size=32).weights_id == f"md5:{file_md5(path)}"
    model = build_backbone(resolve_spec("vit_s", img_size=32))
    assert load_weights(model, resolve_spec("vit_s", 32), path, allow_family_mismatch=True) == f"md5:{file_md5(path)}"
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"], vit_s_sd["blocks.0.attn.qkv.weight"])


def test_own_mae_export_goes_into_its_timm_encoder(tmp_path, vit_s_sd):
    # s2robot.pretrain.loop's export: "model" + provenance naming the normalisation it trained with.
    prov = {"format": "s2robot.mae_encoder", "encoder": "vit_s", "mean": [0.5] * 3, "std": [0.5] * 3}
    path = tmp_path / "encoder.pt"
    torch.save({"model": vit_s_sd, "provenance": prov}, path)
    assert build_encoder("vit_s", weights=path, img_size=32).weights_id == f"md5:{file_md5(path)}"
    # ... but not into an encoder that normalises differently.
    with pytest.raises(WeightsError, match=r"pre-trained as vit_s .*encoder=mvp_s uses mean \[0.485"):
        build_encoder("mvp_s", weights=path, img_size=32)


@pytest.mark.parametrize("owner, wrong", [("mvp_s", "vit_s"), ("mvp_b", "vit_b"), ("mvp_s", "mvp_b")])
def test_another_encoders_published_file_is_refused_by_md5(tmp_path, monkeypatch, vit_s_sd, owner, wrong):
    path = tmp_path / "published.pth"
    torch.save({"model": vit_s_sd}, path)  # no MAE traces at all: only the MD5 can tell
    monkeypatch.setitem(encoders.ENCODERS, owner, dataclasses.replace(encoders.ENCODERS[owner], md5=file_md5(path)))
    # Refused before anything is read into the model (an Identity would fail any real load).
    with pytest.raises(WeightsError, match=rf"this is {owner}'s checkpoint; use encoder={owner}"):
        load_weights(torch.nn.Identity(), resolve_spec(wrong, 32), path)
    # The MD5 is certain: the override for the family guess does not apply.
    with pytest.raises(WeightsError, match=rf"this is {owner}'s checkpoint"):
        load_weights(torch.nn.Identity(), resolve_spec(wrong, 32), path, allow_family_mismatch=True)
    if wrong == "vit_s":  # and through the public entry
        with pytest.raises(WeightsError, match=rf"this is {owner}'s checkpoint; use encoder={owner}"):
            build_encoder(wrong, weights=path, img_size=32)


def test_namespace_beside_model_loads_only_from_the_published_file(tmp_path, monkeypatch, trained_sd):
    # Real MAE/MVP checkpoints may store the training `args` (an argparse.Namespace) beside "model".
    path = _mvp_file(tmp_path / "vits-mae-hoi.pth", trained_sd, args=argparse.Namespace(lr=1.5e-4, mask_ratio=0.75))
    with pytest.raises(WeightsError) as e:
        load_weights(torch.nn.Identity(), SPEC, path)
    msg = str(e.value)
    assert "argparse.Namespace" in msg and "published" in msg and "encoder.weights=new_path" in msg
    assert "\n" not in msg  # one line, not torch's page of advice
    # With the registry's MD5 it is mvp_s's own published file: unpickled in full, and loaded.
    monkeypatch.setitem(encoders.ENCODERS, "mvp_s", dataclasses.replace(encoders.ENCODERS["mvp_s"], md5=file_md5(path)))
    enc = _enc(path)
    assert enc.weights_id == f"md5:{file_md5(path)}"
    assert torch.equal(enc.backbone.state_dict()["blocks.2.mlp.fc2.weight"], trained_sd["blocks.2.mlp.fc2.weight"])
    # Any other file stays tensors-only, even next to a trusted one.
    other = _mvp_file(tmp_path / "copy.pth", trained_sd, args=argparse.Namespace(lr=1e-3))
    with pytest.raises(WeightsError, match="argparse.Namespace"):
        load_weights(torch.nn.Identity(), SPEC, other)


def test_mvp_encoders_use_imagenet_and_timm_encoders_inception_stats():
    # Literal constants, not the module's: a typo there must fail here.
    for name in ("mvp_s", "mvp_b", "mvp_l"):
        spec = encoders.get_spec(name)
        assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225), name
    for name in ("vit_t", "vit_s", "vit_b", "vit_l", "vit_h"):
        spec = encoders.get_spec(name)
        assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5), name
