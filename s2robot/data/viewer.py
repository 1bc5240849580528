"""Looking at one episode of any store: every camera side by side, proprioception and actions
plotted over the episode below them, a cursor at the current step (episode_figure.py draws it). As
an mp4 (one such picture per step), one PNG (one step), or a self-contained HTML page
(viewer_html.py: frames inline, a slider)."""

from __future__ import annotations

import os

from s2robot.data.episode_figure import EpisodeFigure, load_episode
from s2robot.errors import UserError

SUFFIXES = (".mp4", ".html", ".png")


def write_view(store: str, index: int, out: str, step: int = 0, fps: float | None = None) -> dict:
    """Write episode ``index`` of ``store`` to ``out``: .mp4 (every step), .png (``step``) or .html."""
    from s2robot.fileio import atomic_path

    suffix = os.path.splitext(out)[1].lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--out {out}: name the file with one of {', '.join(SUFFIXES)}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UserError(f"--out {out}: its folder does not exist; create it or choose another --out")
    episode = load_episode(store, index)
    if not -episode.steps <= step < episode.steps:
        raise UserError(f"--step {step}: the episode has {episode.steps} steps (0..{episode.steps - 1})")
    if suffix == ".html":
        from s2robot.data.viewer_html import write_html

        with atomic_path(out) as tmp:
            write_html(episode, tmp)
        return {"out": out, "steps": episode.steps}
    figure = EpisodeFigure(episode)
    with atomic_path(out) as tmp:
        if suffix == ".png":
            import imageio.v3 as iio

            figure.show(step % episode.steps)
            iio.imwrite(tmp, figure.rgb(), extension=".png")
        else:
            from s2robot.data.formats.video import open_writer

            figure.show(0)
            first = figure.rgb()
            writer = open_writer(tmp, fps or episode.fps, first.shape[0], first.shape[1], crf=18)
            try:
                for t in range(episode.steps):
                    figure.show(t)
                    writer.append_data(figure.rgb())
            finally:
                writer.close()
    return {"out": out, "steps": episode.steps}
