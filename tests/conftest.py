"""Shared fixtures: a tiny demonstration store and composed training configs."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("S2ROBOT_OFFLINE", "1")  # tests never download

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")
TINY = [
    "encoder=vit_t",
    "encoder.weights=random",
    "encoder.img_size=32",
    "encoder.batch_size=16",
    "env.image_size=32",
    "data.n_episodes=4",
    "train.epochs=2",
    "train.batch_size=64",
    "train.progress=false",
    "train.warmup_steps=1",
]


def pytest_collection_modifyitems(config, items):
    """Files with the most slow tests first (a stable sort: the rest keep their order). Under
    ``-n 2 --dist loadfile --no-loadscope-reorder`` the workers take files in this order, so the
    minutes-long simulator files start at once and the many second-long files fill in at the end,
    instead of one worker running a 3-minute file alone after the other has finished (xdist's own
    reorder puts the files with the most tests first)."""
    slow: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        slow[path] = slow.get(path, 0) + bool(item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.nodeid.split("::")[0]])


def compose(overrides=(), config_name="train_policy"):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from s2robot.config import register_configs

    register_configs()

    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """4 expert demos at 32 px, collected once per test run (shared by xdist workers)."""
    from s2robot.data.collect import collect_demos
    from tests.shared import build_once

    return build_once(
        tmp_path_factory.getbasetemp(),
        "cube_pick_32.zarr",
        lambda path: collect_demos(compose(TINY).env, path, n_episodes=4, progress=False),
    )


@pytest.fixture(scope="session")
def tiny_store_2cam(tmp_path_factory):
    """4 expert demos at 32 px seen by two cameras (agentview and the wrist), collected once per test run."""
    from s2robot.data.collect import collect_demos
    from tests.shared import build_once

    env = compose([*TINY, "env.cameras=[agentview,robot0_eye_in_hand]"]).env
    return build_once(
        tmp_path_factory.getbasetemp(),
        "cube_pick_32_2cam.zarr",
        lambda path: collect_demos(env, path, n_episodes=4, progress=False),
    )


@pytest.fixture
def tiny_cfg(tiny_store):
    def make(*overrides):
        return compose([*TINY, f"data.store={tiny_store}", *overrides])

    return make
