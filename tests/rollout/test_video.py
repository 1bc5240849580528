import numpy as np
import pytest
from PIL import Image

from s2robot.rollout import video


def _frames(n, size=64):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def test_upscale_small_frames_to_readable_size():
    frame = _frames(1)[0]
    big = video.upscale(frame)
    assert big.shape == (256, 256, 3)
    assert np.array_equal(big[::4, ::4], frame)  # nearest neighbour: pixels are kept
    assert video.upscale(np.zeros((300, 300, 3), np.uint8)).shape == (300, 300, 3)


def test_labelled_frame_has_header_colour_and_h264_sides():
    out = video.labelled(_frames(1, 84)[0], "seed 7  SUCCESS", "step 3/10", video.GREEN)
    h, w, _ = out.shape
    assert h % 16 == 0 and w % 16 == 0 and w >= 256 and h > 256
    header = out[: h - 336]
    assert (np.all(header == video.GREEN, axis=-1)).any()  # the outcome is written in its colour


def test_episode_video_round_trip(tmp_path):
    import imageio.v3 as iio

    frames = _frames(12)
    path = video.write_episode_video(tmp_path / "ep.mp4", frames, seed=100_003, success=False)
    decoded = iio.imread(path)
    assert decoded.shape[0] == 12 and decoded.shape[1:] == video.episode_frames(frames[:1], 1, False)[0].shape
    meta = iio.immeta(path, plugin="pyav") if _has_pyav() else iio.immeta(path)
    assert "264" in str(meta.get("codec", "")) or "h264" in str(meta).lower()


def _has_pyav():
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def test_contact_sheet_grid(tmp_path):
    rows = [
        {
            "seed": 100_000 + i,
            "success": i == 0,
            "steps": video.pick_frames(n, 5),
            "frames": [_frames(n)[t] for t in video.pick_frames(n, 5)],
        }
        for i, n in enumerate((30, 3))
    ]
    path = video.contact_sheet(tmp_path / "sheet.png", rows, tile=128)
    img = np.asarray(Image.open(path))
    tile_h = video.labelled(np.zeros((128, 128, 3), np.uint8), "x", "y", min_size=128).shape[0]
    assert img.shape == (2 * tile_h, 5 * 128, 3)  # the short episode's row is padded
    with pytest.raises(ValueError):
        video.contact_sheet(tmp_path / "empty.png", [])


def test_pick_frames_spans_the_episode():
    assert video.pick_frames(121, 5) == [0, 30, 60, 90, 120]
    assert video.pick_frames(2, 5) == [0, 1]
