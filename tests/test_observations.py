import numpy as np

from s2robot.observations import cube_yaw_features, privileged_obs


def _quat_z(yaw):
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])  # xyzw


def test_yaw_features_repeat_every_quarter_turn():
    a = cube_yaw_features(_quat_z(0.3))
    for k in range(1, 4):
        assert np.allclose(cube_yaw_features(_quat_z(0.3 + k * np.pi / 2)), a, atol=1e-6)
    assert np.allclose(cube_yaw_features(_quat_z(np.pi / 8)), [1.0, 0.0], atol=1e-6)
    assert not np.allclose(cube_yaw_features(_quat_z(0.1)), a)
    batch = cube_yaw_features(np.stack([_quat_z(0.3), _quat_z(0.1)]))
    assert batch.shape == (2, 2) and batch.dtype == np.float32


def test_privileged_obs_from_info():
    obs = privileged_obs({"cube_pos": np.array([0.1, -0.2, 0.83]), "cube_quat": _quat_z(0.0)})
    assert obs["cube_pos"].dtype == np.float32 and np.allclose(obs["cube_yaw"], [0.0, 1.0])
