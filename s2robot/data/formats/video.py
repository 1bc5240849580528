"""Frames to and from mp4 (imageio's ffmpeg): one writer per camera file, episodes appended in
order; one forward reader per file, episodes read in order (LeRobot v3 packs many per file).

H.264 at CRF 10 by default, yuv420p for even sizes (what every player and LeRobot's decoders
read). Measured round trip, mean absolute error: 1.35/255 (agentview) and 1.23/255 (wrist) on
224 px CubePick renders, 99th percentile 5/255; 2.3/255 on the tests' 32 px frames (bound: 3/255).
Most of it is yuv420p's halved chroma: CRF 0 still leaves 1.2/255."""

from __future__ import annotations

import numpy as np

from s2robot.data.formats import FormatError

DEFAULT_CRF = 10


def open_writer(path: str, fps: float, height: int, width: int, crf: int = DEFAULT_CRF):
    import imageio.v2 as imageio  # the ffmpeg plugin loads slowly: only when frames are written

    # yuv420p halves chroma in both directions: odd sizes need the full-chroma yuv444p
    pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    return imageio.get_writer(
        path,
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        quality=None,
        pixelformat=pix_fmt,
        macro_block_size=1,  # otherwise frames are rescaled to a multiple of 16
        ffmpeg_params=["-crf", str(int(crf))],
        ffmpeg_log_level="error",
    )


def video_info(height: int, width: int, fps: float) -> dict:
    """The ``info`` block LeRobot's info.json gives a video feature."""
    return {
        "video.height": int(height),
        "video.width": int(width),
        "video.codec": "h264",
        "video.pix_fmt": "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p",
        "video.is_depth_map": False,
        "video.fps": float(fps),
        "video.channels": 3,
        "has_audio": False,
    }


class FrameReader:
    """The frames of one video file, read forward; asking for earlier frames reopens the file."""

    def __init__(self, path: str):
        self.path = path
        self._reader = None
        self._pos = 0

    def _open(self) -> None:
        import imageio.v2 as imageio

        self.close()
        try:
            self._reader = imageio.get_reader(self.path, format="FFMPEG")
        except Exception as e:  # a missing or undecodable file: ffmpeg's reasons vary
            raise FormatError(f"{self.path}: cannot be read as a video ({type(e).__name__}: {e})") from e
        self._iter = iter(self._reader)
        self._pos = 0

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) as uint8 (n, H, W, 3)."""
        if self._reader is None or start < self._pos:
            self._open()
        frames = []
        try:
            while self._pos < stop:
                frame = next(self._iter)
                if self._pos >= start:
                    frames.append(np.asarray(frame)[..., :3])
                self._pos += 1
        except StopIteration:
            raise FormatError(
                f"{self.path}: the video ends at frame {self._pos}, frames up to {stop} are needed; "
                f"the video and the dataset's metadata disagree"
            ) from None
        return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
