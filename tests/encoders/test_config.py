import pytest

from s2robot.encoders.config import EncoderConfig
from s2robot.errors import UserError


def test_round_trip_through_a_checkpoint_entry():
    cfg = EncoderConfig.from_cfg(
        {
            "name": "vit_t",
            "weights": "random",
            "img_size": 32,
            "feature": "tokens",
            "output_grid": "largest",
            "seed": 3,
        },
        [1, 2],
    )
    enc = cfg.build()
    entry = cfg.to_checkpoint(enc, camera="agentview")
    assert entry["weights"] == "random:seed3" and entry["camera"] == "agentview"
    assert EncoderConfig.from_checkpoint(entry) == cfg
    assert enc.feature_shape == (1 + 2 * 2 * 4, 2 * 192)  # largest grid of a 32 px ViT/16 at [1,2]


def test_checkpoints_written_before_the_mismatch_flag_still_read():
    old = {
        "encoder": "vit_t",
        "weights": "random:seed0",
        "scales": [1],
        "feature": "cls",
        "output_grid": "native",
        "img_size": 32,
        "weights_arg": "random",
        "seed": 0,
    }
    assert EncoderConfig.from_checkpoint(old).allow_family_mismatch is False


def test_build_can_take_moved_weights(tmp_path):
    cfg = EncoderConfig("vit_t", str(tmp_path / "moved_away.pt"), (1,), img_size=32)
    with pytest.raises(UserError, match="does not exist"):
        cfg.build()
    assert cfg.build(weights="random").weights_id == "random:seed0"
