from pathlib import Path

import yaml

from s2robot.encoders import ENCODERS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_one_yaml_per_registered_encoder():
    names = {p.stem for p in (CONFIGS / "encoder").glob("*.yaml")}
    assert names == set(ENCODERS)
    for name in names:
        cfg = yaml.safe_load((CONFIGS / "encoder" / f"{name}.yaml").read_text())
        assert cfg["name"] == name


def test_demo_experiment_reads_the_default_store():
    from tests.conftest import compose

    cfg = compose(["+experiment=demo_cpu"])
    default = compose([])
    # The demo shares the default store (and so its feature caches and baselines).
    assert cfg.data.store == default.data.store == "data/cube_pick_224.zarr"
    assert (cfg.encoder.name, cfg.encoder.img_size, list(cfg.scales)) == ("vit_t", 64, [1, 2])
    assert (cfg.encoder.feature, cfg.policy.visual_pool) == ("cls", "none")
    assert cfg.eval.enabled
