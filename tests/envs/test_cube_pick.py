import dataclasses
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from omegaconf import OmegaConf

import envs  # noqa: F401 -- registers CubePick-v0
from envs.cube_pick import PROPRIO_DIM, CubePickEnv, NonFiniteActionError, make_env

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "env" / "cube_pick.yaml"


@pytest.fixture(scope="module")
def env():
    env = CubePickEnv(image_size=64, render_mode="rgb_array")
    yield env
    env.close()


@pytest.fixture(scope="module")
def blind_env():
    """No cameras: physics only, ~7 ms per step."""
    env = CubePickEnv(cameras=[])
    yield env
    env.close()


def red_mask(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 100) & (r > 2 * g) & (r > 2 * b)


@pytest.mark.slow
def test_check_env_passes_with_warnings_as_errors(env):
    # With a spec, check_env also builds the env in every render mode and checks a double close.
    # Its warnings (UserWarning: unbounded spaces, obs outside the space, ...) and numpy's
    # (RuntimeWarning) point at defects here, so they fail the test.
    env.spec = dataclasses.replace(gym.spec("CubePick-v0"), kwargs={"image_size": 32})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            warnings.simplefilter("error", RuntimeWarning)
            check_env(env, skip_render_check=False)
    finally:
        env.spec = None


def test_proprio_space_is_bounded_by_the_robot(blind_env):
    space = blind_env.observation_space["proprio"]
    assert np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    # Quaternion components, and the Panda fingers' MJCF ranges [0, 0.04] / [-0.04, 0] plus 1 cm.
    np.testing.assert_array_equal(space.low[3:7], -1)
    np.testing.assert_array_equal(space.high[3:7], 1)
    np.testing.assert_allclose(space.low[7:], [-0.01, -0.05], atol=1e-6)
    np.testing.assert_allclose(space.high[7:], [0.05, 0.01], atol=1e-6)
    # The eef box is centred on the Panda's base and a bit wider than its ~1.4 m chain.
    np.testing.assert_allclose((space.low[:3] + space.high[:3]) / 2, [-0.56, 0.0, 0.912], atol=1e-5)
    assert 1.3 < (space.high[0] - space.low[0]) / 2 < 1.6
    # Flailing at full speed, fingers slamming open and shut, stays inside.
    rng = np.random.default_rng(0)
    obs, _ = blind_env.reset(seed=0)
    for _ in range(150):
        obs, *_ = blind_env.step(rng.choice([-1.0, 1.0], 7).astype(np.float32))
        assert space.contains(obs["proprio"]), obs["proprio"]


@pytest.mark.parametrize("bad", [{3: np.nan}, {0: np.inf, 6: -np.inf}])
def test_non_finite_action_is_refused_and_changes_nothing(blind_env, bad):
    obs, _ = blind_env.reset(seed=2)
    sim = blind_env.sim
    before = (sim.data.qpos.copy(), sim.data.qvel.copy(), sim.data.ctrl.copy(), sim.data.time, blind_env._steps)
    action = np.zeros(7, np.float32)
    action[list(bad)] = list(bad.values())
    with pytest.raises(NonFiniteActionError, match=rf"index \[{', '.join(map(str, bad))}\]") as e:
        blind_env.step(action)
    assert isinstance(e.value, ValueError) and "unchanged" in str(e.value)
    after = (sim.data.qpos, sim.data.qvel, sim.data.ctrl, sim.data.time, blind_env._steps)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # The arm still holds itself up (a NaN that reached MuJoCo zeroed the motors: a 22 cm fall).
    for _ in range(10):
        later, *_ = blind_env.step(np.zeros(7, np.float32))
    assert abs(later["proprio"][2] - obs["proprio"][2]) < 0.02
    with pytest.raises(ValueError, match="shape"):
        blind_env.step(np.zeros(6, np.float32))


def test_gym_make_registered_id():
    env = gym.make("CubePick-v0", cameras=[], horizon=7)
    obs, info = env.reset(seed=0)
    assert env.spec.id == "CubePick-v0"
    assert set(obs) == {"proprio"} and obs["proprio"].shape == (PROPRIO_DIM,)
    assert env.action_space.shape == (7,) and env.action_space.dtype == np.float32
    env.close()


def test_obs_shapes_dtypes_and_privileged_info(env):
    obs, info = env.reset(seed=1)
    assert set(obs) == {"agentview", "proprio"}
    assert obs["agentview"].shape == (64, 64, 3) and obs["agentview"].dtype == np.uint8
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (9,)
    assert env.observation_space.contains(obs)
    # proprio = eef pos, unit quaternion, two finger joints; the cube pose is only in info
    assert np.isclose(np.linalg.norm(obs["proprio"][3:7]), 1.0, atol=1e-4)
    assert 0.9 < obs["proprio"][2] < 1.2  # the hand starts above the table (z = 0.8)
    assert {"cube_pos", "cube_quat", "cube_height", "is_success"} <= set(info)
    assert info["is_success"] is False


def test_reset_with_seed_is_reproducible(env):
    obs1, info1 = env.reset(seed=3)
    env.step(env.action_space.sample())
    obs2, info2 = env.reset(seed=3)
    np.testing.assert_array_equal(info1["cube_pos"], info2["cube_pos"])
    np.testing.assert_array_equal(info1["cube_quat"], info2["cube_quat"])
    np.testing.assert_array_equal(obs1["proprio"], obs2["proprio"])
    np.testing.assert_array_equal(obs1["agentview"], obs2["agentview"])
    _, info3 = env.reset(seed=4)
    assert np.linalg.norm(info3["cube_pos"][:2] - info1["cube_pos"][:2]) > 1e-3


def test_image_orientation_and_cube_visible(env):
    """Top-left origin: the robot and floor at the top, the white table below; a cube nearer the
    camera (larger x, the agentview camera looks back along -x) appears lower in the image."""
    rows, xs = [], []
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        image = obs["agentview"]
        assert image[48:].mean() > image[:16].mean() + 20  # table (bright) in the lower part
        mask = red_mask(image)
        assert mask.sum() >= 4, f"cube not visible for seed {seed}"
        rows.append(np.nonzero(mask)[0].mean())
        xs.append(info["cube_pos"][0])
    assert np.corrcoef(xs, rows)[0, 1] > 0.9


def test_render_returns_current_frame(env):
    obs, _ = env.reset(seed=5)
    np.testing.assert_array_equal(env.render(), obs["agentview"])


def test_placement_is_wide_on_table_and_settles(blind_env):
    poses = []
    for seed in range(30):
        _, info = blind_env.reset(seed=seed)
        for _ in range(5):
            _, _, _, _, info = blind_env.step(np.zeros(7, np.float32))
        poses.append(info["cube_pos"])
        assert 0.015 < info["cube_height"] < 0.03  # resting on the table (half size 0.020-0.022 m)
    xy = np.array(poses)[:, :2]
    assert np.all(np.abs(xy) <= 0.15 + 1e-3)
    assert np.ptp(xy[:, 0]) > 0.15 and np.ptp(xy[:, 1]) > 0.15  # wider than robosuite's +-3 cm


def test_truncation_at_horizon():
    env = CubePickEnv(cameras=[], horizon=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(7, np.float32))[2:4] for _ in range(5)]
    assert flags[:4] == [(False, False)] * 4
    assert flags[4] == (False, True)
    env.close()


def test_make_env_from_yaml_config():
    cfg = OmegaConf.load(CONFIG)
    env = make_env(cfg, cameras=[])
    assert env.horizon == cfg.horizon and env.terminate_on_success
    assert env.placement["x_range"] == tuple(cfg.placement.x_range)
    env.close()
    with pytest.raises(ValueError, match="unknown env config keys"):
        make_env({**OmegaConf.to_container(cfg), "imagesize": 64})


@pytest.mark.parametrize("size", [448])
def test_large_image_size(size):
    env = CubePickEnv(image_size=size)
    obs, _ = env.reset(seed=0)
    assert obs["agentview"].shape == (size, size, 3)
    assert red_mask(obs["agentview"]).sum() > 50 and obs["agentview"].std() > 10
    env.close()


def test_two_envs_in_one_process_render_their_own_scene(env):
    """Each env renders with its own GL context, even after another env was made or closed."""
    reference, _ = env.reset(seed=6)
    other = CubePickEnv(image_size=32)
    other_obs, _ = other.reset(seed=7)
    again, _ = env.reset(seed=6)  # the other env's context is current now
    np.testing.assert_array_equal(again["agentview"], reference["agentview"])
    other.close()
    again, _ = env.reset(seed=6)  # ... and now destroyed
    np.testing.assert_array_equal(again["agentview"], reference["agentview"])
    assert other_obs["agentview"].shape == (32, 32, 3)
