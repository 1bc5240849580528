"""One stored episode as the viewer shows it (`Episode`, `load_episode`) and the picture of one of
its steps (`EpisodeFigure`): every camera side by side, proprioception and actions plotted below,
a cursor at the current step. Shared by the mp4/PNG writer (viewer.py) and the HTML page
(viewer_html.py).

Matplotlib draws on its Agg canvas directly (no pyplot, no global backend): the figure is built
once and each step only swaps the frames and moves the cursor, ~20 ms a step."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.errors import UserError
from s2robot.robot_description import RobotDescription, RobotDescriptionError, from_store_attrs

_MAX_LEGEND = 10  # more lines than this: the legend would hide the plot


@dataclass
class Episode:
    """What the viewer shows of one stored episode."""

    title: str
    frames: dict[str, np.ndarray]  # camera -> (T, H, W, 3)
    series: dict[str, tuple[np.ndarray, list[str]]]  # "proprio"/"action" -> ((T, D), one label per column)
    steps: int
    fps: float


def load_episode(store: str, index: int) -> Episode:
    buffer = ReplayBuffer.open(store)
    if not -buffer.n_episodes <= index < buffer.n_episodes:
        raise UserError(
            f"{store}: no episode {index}, the store has {buffer.n_episodes} "
            f"(--episode 0..{buffer.n_episodes - 1}, or negative from the end)"
        )
    index %= buffer.n_episodes
    try:
        robot: RobotDescription | None = from_store_attrs(buffer.attrs)
    except RobotDescriptionError:
        robot = None  # a store of unknown origin still shows what it holds
    cameras = [k for k in buffer.keys if buffer.dtype(k) == np.uint8 and len(buffer.shape(k)) == 3]
    ep = buffer.get_episode(index, keys=tuple(cameras + [k for k in ("proprio", "action") if k in buffer.keys]))
    series = {}
    for key in ("proprio", "action"):
        if key in ep:
            values = ep[key].reshape(len(ep[key]), -1).astype(np.float64)
            series[key] = (values, _labels(key, values.shape[1], robot))
    success = "success" if buffer.episode_success[index] else "failure"
    name = os.path.basename(os.path.normpath(store))
    title = f"{name}  episode {index} (seed {int(buffer.episode_seeds[index])}, {success})"
    steps = int(buffer.episode_lengths[index])
    return Episode(title, {c: ep[c] for c in cameras}, series, steps, robot.control_hz if robot else 20.0)


def _labels(key: str, dim: int, robot: RobotDescription | None) -> list[str]:
    if key == "proprio" and robot is not None and len(robot.proprio_names) == dim:
        return list(robot.proprio_names)
    labels = [f"{key}[{i}]" for i in range(dim)]
    if key == "action" and robot is not None and robot.gripper_index is not None and robot.gripper_index < dim:
        labels[robot.gripper_index] = f"action[{robot.gripper_index}] gripper"
    return labels


class EpisodeFigure:
    """The picture of one step; ``show(t)`` then ``rgb()`` for each step."""

    def __init__(self, episode: Episode, cameras: bool = True, dpi: int = 100):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.episode = episode
        n_cam = len(episode.frames) if cameras else 0
        n_plot = len(episode.series)
        width = max(8.0, 3.2 * n_cam)
        heights = [3.0] * bool(n_cam) + [2.0] * n_plot
        self.fig = Figure(figsize=(width, sum(heights) + 0.6), dpi=dpi)
        FigureCanvasAgg(self.fig)
        grid = self.fig.add_gridspec(len(heights), max(n_cam, 1), height_ratios=heights or [1], hspace=0.45)
        self.images = {}
        for j, (cam, frames) in enumerate(list(episode.frames.items())[:n_cam]):
            ax = self.fig.add_subplot(grid[0, j])
            self.images[cam] = ax.imshow(frames[0], interpolation="nearest")
            ax.set_title(f"{cam} ({frames.shape[1]}x{frames.shape[2]})", fontsize=9)
            ax.set_axis_off()
        self.axes, self.cursors = [], []
        for row, (key, (values, labels)) in enumerate(episode.series.items(), start=bool(n_cam)):
            ax = self.fig.add_subplot(grid[row, :])
            for col, label in enumerate(labels):
                ax.plot(np.arange(len(values)), values[:, col], lw=1.2, label=label)
            ax.set_xlim(0, max(episode.steps - 1, 1))
            ax.set_ylabel(key, fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
            if len(labels) <= _MAX_LEGEND:
                ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
            self.axes.append(ax)
            self.cursors.append(ax.axvline(0, color="black", lw=1.5) if cameras else None)
        if self.axes:
            self.axes[-1].set_xlabel(f"step (at {episode.fps:g} Hz)", fontsize=9)
        self.fig.subplots_adjust(left=0.07, right=0.8 if self.axes else 0.98, top=0.9, bottom=0.08)
        self.suptitle = self.fig.suptitle(episode.title, fontsize=10)

    def show(self, t: int) -> None:
        for cam, im in self.images.items():
            im.set_data(self.episode.frames[cam][t])
        for cursor in self.cursors:
            if cursor is not None:
                cursor.set_xdata([t, t])
        self.suptitle.set_text(f"{self.episode.title}  step {t}/{self.episode.steps - 1}")

    def rgb(self) -> np.ndarray:
        """The canvas as uint8 (H, W, 3), cropped to even sizes (yuv420p video needs them)."""
        self.fig.canvas.draw()
        rgb = np.asarray(self.fig.canvas.buffer_rgba())[..., :3]
        return rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2].copy()
