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
