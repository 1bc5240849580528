"""The episode viewer: a PNG of one step, an mp4 of every step, a self-contained HTML page."""

import imageio.v2 as imageio
import numpy as np
import pytest

from s2robot.data.episode_figure import EpisodeFigure, load_episode
from s2robot.data.viewer import write_view
from s2robot.errors import UserError
from tests.data.formats.datasets import make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(make_store(tmp_path_factory.mktemp("view") / "s.zarr", steps=6, size=32))


def test_png_shows_cameras_and_the_cursor_moves(store, tmp_path):
    write_view(store, 1, str(tmp_path / "a.png"), step=0)
    write_view(store, 1, str(tmp_path / "b.png"), step=5)
    a, b = imageio.imread(tmp_path / "a.png"), imageio.imread(tmp_path / "b.png")
    assert a.shape == b.shape and a.shape[0] % 2 == 0 and a.shape[1] % 2 == 0
    assert (a != b).any()  # other frames, another cursor position
    episode = load_episode(store, 1)
    assert list(episode.frames) == ["agentview", "robot0_eye_in_hand"] and set(episode.series) == {"proprio", "action"}
    assert episode.series["proprio"][1][0] == "eef_x" and "gripper" in episode.series["action"][1][6]
    assert "seed 101" in episode.title


def test_mp4_has_one_frame_per_step(store, tmp_path):
    write_view(store, 0, str(tmp_path / "ep.mp4"))
    with imageio.get_reader(tmp_path / "ep.mp4") as reader:
        assert sum(1 for _ in reader) == 6


def test_html_is_self_contained(store, tmp_path):
    write_view(store, 0, str(tmp_path / "ep.html"))
    page = (tmp_path / "ep.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 12 and "data:image/png;base64," in page
    assert 'type="range"' in page and "http://" not in page and "https://" not in page


def test_bad_requests(store, tmp_path):
    with pytest.raises(UserError, match="no episode 5"):
        write_view(store, 5, str(tmp_path / "x.png"))
    with pytest.raises(UserError, match="one of .mp4, .html, .png"):
        write_view(store, 0, str(tmp_path / "x.gif"))
    with pytest.raises(UserError, match="--step 9"):
        write_view(store, 0, str(tmp_path / "x.png"), step=9)
    assert not list(tmp_path.iterdir())


def test_a_store_without_proprio_still_shows(tmp_path):
    from s2robot.data.replay_buffer import ReplayBuffer

    buffer = ReplayBuffer.create(tmp_path / "s.zarr")
    buffer.add_episode({"cam": np.zeros((3, 8, 8, 3), np.uint8), "action": np.zeros((3, 2), np.float32)})
    figure = EpisodeFigure(load_episode(str(tmp_path / "s.zarr"), 0))
    figure.show(2)
    assert figure.rgb().ndim == 3
