import numpy as np
import torch

from s2robot.training.windows import WindowData, split_episodes, window_indices


def test_windows_stay_inside_episodes():
    ends = np.array([3, 7])  # episodes [0,3) and [3,7)
    obs, act = window_indices(ends, np.array([0, 1]), n_obs_steps=2, horizon=3)
    assert obs.tolist()[:4] == [[0, 0], [0, 1], [1, 2], [3, 3]]
    assert act.tolist()[:4] == [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 5]]
    assert act.tolist()[-1] == [6, 6, 6]
    only_second, _ = window_indices(ends, np.array([1]), 1, 1)
    assert only_second[:, 0].tolist() == [3, 4, 5, 6]


def test_split_by_episode_is_disjoint_and_seeded():
    tr, va = split_episodes(20, 0.1, seed=0)
    assert len(va) == 2 and len(tr) == 18 and not set(tr) & set(va)
    assert np.array_equal(split_episodes(20, 0.1, seed=0)[1], va)
    assert len(split_episodes(1, 0.1, seed=0)[1]) == 0


def test_batch_gathers_rows():
    feats = torch.arange(7, dtype=torch.float32)[:, None].repeat(1, 2)
    actions = torch.arange(7, dtype=torch.float32)[:, None] * 10
    data = WindowData({"f": feats}, actions, np.array([3, 7]), np.array([1]), n_obs_steps=2, horizon=2)
    obs, act = data.batch(torch.tensor([0, 3]))
    assert obs["f"][:, :, 0].tolist() == [[3, 3], [5, 6]]
    assert act[:, :, 0].tolist() == [[30, 40], [60, 60]]
