import csv

import numpy as np
import pytest
import torch

from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.encoders import build_backbone, build_encoder, resolve_spec
from s2robot.encoders.frozen import FrozenS2Encoder
from s2robot.errors import ConfigError
from s2robot.pretrain.mae import MAE, masked_patch_loss, patchify, random_masking, unpatchify
from s2robot.pretrain.views import s2_views
from s2robot.s2 import resize_to
from tests.conftest import compose

SPEC = resolve_spec("vit_t", 32)  # 2x2 patches of 16 px: fast


@pytest.fixture(autouse=True)
def one_thread():
    # The 2 cores are usually shared; 2 torch threads then spin against each other (3-5x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_mae(scales=(1,), **kw):
    torch.manual_seed(0)
    return MAE(SPEC, scales=scales, decoder_dim=32, decoder_depth=1, decoder_heads=2, **kw)


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    """6 short episodes of 48 px frames (not the 32 px native size: frames get resized)."""
    path = tmp_path_factory.mktemp("mae") / "synthetic.zarr"
    rng = np.random.default_rng(0)
    store = ReplayBuffer.create(path)
    for ep in range(6):
        t = 5
        store.add_episode(
            {
                "agentview": rng.integers(0, 256, (t, 48, 48, 3), dtype=np.uint8),
                "cube_pos": rng.normal(size=(t, 3)).astype(np.float32),
                "action": np.zeros((t, 7), np.float32),
            },
            seed=ep,
        )
    return path


def pretrain_cfg(store, *overrides):
    return compose(
        [
            "encoder=vit_t",
            "encoder.img_size=32",
            f"data.stores=[{store}]",
            "device=cpu",
            "mae.decoder_dim=32",
            "mae.decoder_depth=1",
            "mae.decoder_heads=2",
            "train.batch_size=4",
            "train.warmup_steps=1",
            "train.log_every=2",
            "train.save_every=2",
            "train.progress=false",
            "vis.n_images=2",
            *overrides,
        ],
        config_name="pretrain_mae",
    )


def test_masking_keeps_a_quarter_of_the_patches_per_sample():
    g = torch.Generator().manual_seed(0)
    ids_keep, mask, ids_restore = random_masking(8, 64, 0.75, generator=g)
    assert ids_keep.shape == (8, 16)
    assert torch.all(mask.sum(1) == 48)
    # kept ids are exactly the unmasked patches, and each sample has its own draw
    for b in range(8):
        assert set(ids_keep[b].tolist()) == set(torch.nonzero(mask[b] == 0).flatten().tolist())
    assert len({tuple(sorted(r.tolist())) for r in ids_keep}) > 1
    shuffle = torch.argsort(ids_restore, dim=1)
    assert torch.equal(torch.gather(shuffle, 1, ids_restore), torch.arange(64).expand(8, -1))


def test_patchify_round_trip():
    x = torch.randn(2, 3, 32, 32)
    p = patchify(x, 16)
    assert p.shape == (2, 4, 16 * 16 * 3)
    assert torch.equal(p[0, 1].reshape(16, 16, 3).permute(2, 0, 1), x[0, :, :16, 16:])
    assert torch.equal(unpatchify(p, 16), x)


def test_loss_counts_masked_patches_only():
    torch.manual_seed(0)
    imgs = torch.randn(1, 3, 32, 32)
    pred = torch.randn(1, 4, 768, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])  # patch 1 (top right) is visible
    loss = masked_patch_loss(pred, imgs, mask, 16)
    changed = imgs.clone()
    changed[..., :16, 16:] = 5 * torch.randn(3, 16, 16)  # the visible patch's target
    assert torch.allclose(masked_patch_loss(pred, changed, mask, 16), loss)
    changed = imgs.clone()
    changed[..., :16, :16] = 5 * torch.randn(3, 16, 16)  # a masked patch's target
    assert not torch.allclose(masked_patch_loss(pred, changed, mask, 16), loss)
    loss.backward()
    assert torch.all(pred.grad[0, 1] == 0) and torch.all(pred.grad[0, 0] != 0)


def test_a_few_steps_on_a_fixed_batch_lower_the_loss():
    model = tiny_mae(scales=(1, 2))
    # Smooth random fields: learnable structure (white noise is not predictable from its neighbours).
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    a = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(0))[..., None, None]
    x = a[:, :, 0] * xx + a[:, :, 1] * yy + a[:, :, 2] * xx * yy
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):
        loss, _ = model(x, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0] and losses[-1] < min(losses[:-1]), losses


def test_s2_views_are_native_tiles_of_each_scale():
    x = torch.randn(3, 3, 64, 64)  # a crop at twice the 32 px native size
    v1, v2 = s2_views(x, [1, 2], 32)
    assert v1.shape == (3, 3, 32, 32) and v2.shape == (12, 3, 32, 32)
    assert torch.equal(v1, resize_to(x, 32))
    assert torch.equal(v2[:3], x[..., :32, :32])  # tile (0, 0) of every image first
    assert torch.equal(v2[9:], x[..., 32:, 32:])
    model = tiny_mae(scales=(1, 2))
    assert model.view_size == 64
    loss, details = model(x)
    assert len(details["scale_losses"]) == 2
    assert [v[0].shape[0] for v in details["views"]] == [3, 12]
    assert torch.isclose(loss, torch.tensor(details["scale_losses"]).mean())


def test_saved_encoder_loads_through_build_encoder_with_identical_features(synthetic_store, tmp_path):
    from s2robot.pretrain.loop import build_mae, pretrain

    cfg = pretrain_cfg(synthetic_store, "scales=[1,2]", "train.steps=2")
    summary = pretrain(cfg, tmp_path)
    ckpt = torch.load(summary["encoder_weights"], weights_only=True)
    assert set(ckpt["model"]) == set(build_backbone(SPEC).state_dict())  # encoder keys only, timm names
    prov = ckpt["provenance"]
    assert prov["steps"] == 2 and prov["scales"] == [1, 2] and prov["img_size"] == 32
    assert prov["encoder"] == "vit_t" and prov["data"]["stores"] == [str(synthetic_store.resolve())]
    assert (tmp_path / "reconstruction.png").stat().st_size > 0

    model = build_mae(cfg)
    model.load_state_dict(torch.load(summary["state"], weights_only=False)["model"])
    in_memory = FrozenS2Encoder(SPEC, model.encoder, scales=[1, 2], feature="tokens")
    loaded = build_encoder("vit_t", weights=summary["encoder_weights"], img_size=32, scales=[1, 2], feature="tokens")
    frames = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    assert torch.equal(loaded(frames), in_memory(frames))


@pytest.mark.slow
def test_resume_continues_where_the_run_stopped(synthetic_store, tmp_path):
    from s2robot.pretrain.loop import pretrain

    # Constant learning rate, so a 2-step run continued to 4 must equal a straight 4-step run.
    flat = ("train.min_lr=${train.lr}", "train.warmup_steps=0")
    pretrain(pretrain_cfg(synthetic_store, *flat, "train.steps=4"), tmp_path / "straight")
    pretrain(pretrain_cfg(synthetic_store, *flat, "train.steps=2"), tmp_path / "split")
    with pytest.raises(ConfigError, match="resume=true"):
        pretrain(pretrain_cfg(synthetic_store, *flat, "train.steps=4"), tmp_path / "split")
    with pytest.raises(ConfigError, match="scales"):
        pretrain(
            pretrain_cfg(synthetic_store, *flat, "train.steps=4", "resume=true", "scales=[1,2]"), tmp_path / "split"
        )
    summary = pretrain(pretrain_cfg(synthetic_store, *flat, "train.steps=4", "resume=true"), tmp_path / "split")
    assert summary["steps"] == 4
    a = torch.load(tmp_path / "straight" / "encoder.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "encoder.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    with open(tmp_path / "split" / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4]


def test_frames_from_image_and_video_folders(tmp_path):
    import imageio.v3 as iio
    from omegaconf import OmegaConf

    from s2robot.pretrain.loop import load_frames

    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "a.png", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    iio.imwrite(tmp_path / "clip.mp4", rng.integers(0, 256, (6, 48, 48, 3), dtype=np.uint8), fps=10)
    data = OmegaConf.create(
        {
            "stores": [],
            "camera": "agentview",
            "folders": [str(tmp_path)],
            "stride": 2,
            "frame_size": 32,
            "max_frames": None,
        }
    )
    frames, summary = load_frames(data, view_size=32)
    assert frames.shape == (1 + 3, 32, 32, 3) and frames.dtype == torch.uint8
    assert summary["n_frames"] == 4


def test_frames_from_several_cameras(tiny_store_2cam):
    from omegaconf import OmegaConf

    from s2robot.data.replay_buffer import ReplayBuffer
    from s2robot.pretrain.loop import load_frames

    n = ReplayBuffer.open(tiny_store_2cam).n_steps
    base = {"stores": [str(tiny_store_2cam)], "camera": "agentview", "folders": [], "stride": 1}
    base |= {"frame_size": 32, "max_frames": None}
    one, _ = load_frames(OmegaConf.create(base), view_size=32)
    both, summary = load_frames(OmegaConf.create(base | {"cameras": ["agentview", "robot0_eye_in_hand"]}), 32)
    assert len(one) == n and len(both) == 2 * n
    assert summary["cameras"] == ["agentview", "robot0_eye_in_hand"]
    assert torch.equal(both[:n], one) and not torch.equal(both[n:], one)  # the wrist's frames follow


def test_misspelt_pretrain_camera_is_refused():
    from s2robot.cli import USER_ERRORS
    from s2robot.config.pretrain import validate_pretrain_mae

    with pytest.raises(USER_ERRORS, match="did you mean robot0_eye_in_hand"):
        validate_pretrain_mae(compose(["data.cameras=[agentview,robot0_eye_in_hnd]"], config_name="pretrain_mae"))


def test_cpu_preset_composes():
    cfg = compose(["+pretrain=cpu"], config_name="pretrain_mae")
    assert cfg.encoder.name == "vit_t" and cfg.encoder.img_size == 64 and list(cfg.scales) == [1, 2]
    assert cfg.data.stores == ["data/cube_pick_224.zarr"]


def test_missing_store_is_a_user_error(tmp_path):
    from s2robot.cli import USER_ERRORS
    from s2robot.pretrain.loop import pretrain

    with pytest.raises(USER_ERRORS, match="collect_demos"):
        pretrain(pretrain_cfg(tmp_path / "nope.zarr", "train.steps=1"), tmp_path / "run")
    with pytest.raises(USER_ERRORS, match="no training frames"):
        pretrain(pretrain_cfg(tmp_path / "x", "data.stores=[]", "train.steps=1"), tmp_path / "run")
