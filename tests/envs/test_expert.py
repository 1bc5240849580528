import numpy as np
import pytest

from envs.cube_pick import CubePickEnv
from envs.expert import ScriptedExpert, _quat_xyzw_to_mat, tilt_error, yaw_error
from s2robot.data.collect import run_expert_episode


@pytest.fixture(scope="module")
def env():
    """Physics only: the expert reads the privileged cube pose, not pixels."""
    env = CubePickEnv(cameras=[])
    yield env
    env.close()


@pytest.fixture(scope="module")
def expert_runs(env):
    expert = ScriptedExpert()
    return {seed: run_expert_episode(env, expert, seed) for seed in range(5)}


def _quat_z(angle: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])  # xyzw


def test_yaw_error_respects_cube_symmetry():
    assert abs(yaw_error(_quat_z(0.3), _quat_z(0.3 + np.pi / 2))) < 1e-9
    assert yaw_error(_quat_z(0.0), _quat_z(0.2)) == pytest.approx(0.2)
    assert yaw_error(_quat_z(0.0), _quat_z(-0.2 + np.pi)) == pytest.approx(-0.2)
    assert all(abs(yaw_error(_quat_z(0.0), _quat_z(a))) <= np.pi / 4 + 1e-9 for a in np.linspace(-4, 4, 33))


def _rotvec_to_mat(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v)
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_tilt_error_turns_the_gripper_straight_down():
    down = np.array([1.0, 0.0, 0.0, 0.0])  # 180 deg about x: the eef z axis points to -z
    np.testing.assert_allclose(tilt_error(down), 0.0, atol=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = down + np.concatenate([rng.normal(0, 0.3, 3), [0.0]])
        q /= np.linalg.norm(q)
        fixed = _rotvec_to_mat(tilt_error(q)) @ _quat_xyzw_to_mat(q)
        np.testing.assert_allclose(fixed[:, 2], [0.0, 0.0, -1.0], atol=1e-9)


def test_expert_succeeds_and_episode_terminates(expert_runs, env):
    successes = [success for _, success in expert_runs.values()]
    assert sum(successes) >= 4
    for episode, success in expert_runs.values():
        if success:
            assert len(episode["action"]) < env.horizon  # terminated on success, not truncated
            assert episode["action"][-1, 6] == 1.0  # gripper closed while lifting
            assert np.all(np.abs(episode["action"]) <= 1.0)


@pytest.mark.slow
def test_noisy_expert_still_succeeds_and_is_reproducible(env):
    expert = ScriptedExpert(noise=0.1)
    runs = [run_expert_episode(env, expert, seed) for seed in range(10, 15)]
    assert sum(success for _, success in runs) >= 4
    again, _ = run_expert_episode(env, expert, 10)
    np.testing.assert_array_equal(again["action"], runs[0][0]["action"])
    clean, _ = run_expert_episode(env, ScriptedExpert(noise=0.0), 10)
    assert not np.array_equal(clean["action"][:5], again["action"][:5])


@pytest.mark.slow
def test_open_loop_mean_demo_fails_where_expert_succeeds(env, expert_runs):
    """Replaying the average demo without looking at the cube must fail on most placements."""
    actions = [episode["action"] for episode, _ in expert_runs.values()]
    length = max(len(a) for a in actions) + 20
    padded = np.stack([np.concatenate([a, np.repeat(a[-1:], length - len(a), 0)]) for a in actions])
    mean_plan = padded.mean(axis=0)
    mean_plan[:, 6] = np.where(mean_plan[:, 6] > 0, 1.0, -1.0)
    open_loop = closed_loop = 0
    for seed in range(20, 28):
        env.reset(seed=seed)
        for action in mean_plan:
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        open_loop += info["is_success"]
        closed_loop += run_expert_episode(env, ScriptedExpert(), seed)[1]
    assert closed_loop >= 7
    assert open_loop <= 2
