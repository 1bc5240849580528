"""One episode as a self-contained HTML page: the cameras' frames inline (JPEG, base64), the
proprioception and action plot once as an inline PNG, and a slider (and play button) that swaps
the frames and moves a cursor over the plot. No network, no script but the page's own: it opens
from a file, a mail attachment or a CI artifact as it is."""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from s2robot.data.episode_figure import Episode, EpisodeFigure

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
.cams {{ display: flex; gap: 12px; flex-wrap: wrap; }}
.cams figure {{ margin: 0; }} .cams img {{ width: {cam_px}px; image-rendering: pixelated; }}
.plot {{ position: relative; display: inline-block; margin-top: 8px; }} .plot img {{ display: block; }}
.cursor {{ position: absolute; width: 2px; background: #000; pointer-events: none; }}
.controls {{ margin: 8px 0; }} input[type=range] {{ width: 60%; vertical-align: middle; }}
</style></head><body>
<h3>{title}</h3>
<div class="controls"><button id="play">play</button>
<input id="step" type="range" min="0" max="{last}" value="0"> step <span id="label">0</span>/{last}</div>
<div class="cams">{cams}</div>
<div class="plot" id="plot">{plot}</div>
<script>
const data = {data};
const slider = document.getElementById("step"), label = document.getElementById("label");
const plot = document.getElementById("plot"), cursors = [];
for (const ax of data.axes) {{
  const c = document.createElement("div"); c.className = "cursor";
  c.style.top = (100 * ax.top) + "%"; c.style.height = (100 * ax.height) + "%";
  plot.appendChild(c); cursors.push([c, ax]);
}}
function show(t) {{
  for (const cam in data.frames) document.getElementById("cam-" + cam).src = data.frames[cam][t];
  const x = data.steps > 1 ? t / (data.steps - 1) : 0;
  for (const [c, ax] of cursors) c.style.left = (100 * (ax.left + x * ax.width)) + "%";
  label.textContent = t; slider.value = t;
}}
slider.addEventListener("input", () => show(+slider.value));
let timer = null;
document.getElementById("play").addEventListener("click", (e) => {{
  if (timer) {{ clearInterval(timer); timer = null; e.target.textContent = "play"; return; }}
  e.target.textContent = "pause";
  timer = setInterval(() => show((+slider.value + 1) % data.steps), 1000 / data.fps);
}});
show(0);
</script></body></html>
"""


def _data_url(image: np.ndarray, kind: str) -> str:
    import imageio.v3 as iio

    options = {"quality": 90} if kind == "jpeg" else {}
    encoded = iio.imwrite("<bytes>", image, extension=f".{kind}", **options)
    return f"data:image/{kind};base64,{base64.b64encode(encoded).decode()}"


def write_html(episode: Episode, path: str) -> None:
    frames = {cam: [_data_url(f, "jpeg") for f in v] for cam, v in episode.frames.items()}
    cams = "".join(
        f'<figure><img id="cam-{html.escape(cam)}" alt="{html.escape(cam)}">'
        f"<figcaption>{html.escape(cam)} ({v.shape[1]}x{v.shape[2]})</figcaption></figure>"
        for cam, v in episode.frames.items()
    )
    axes, plot = [], ""
    if episode.series:
        figure = EpisodeFigure(episode, cameras=False)
        figure.suptitle.set_text("")
        rgb = figure.rgb()
        height, width = rgb.shape[:2]
        for ax in figure.axes:
            box = ax.get_window_extent()
            x0, x1 = ax.get_xlim()
            span = max(x1 - x0, 1e-9)
            # the cursor moves over the data range, which is where step 0 and the last step sit
            axes.append(
                {
                    "left": (box.x0 + (0 - x0) / span * box.width) / width,
                    "width": ((episode.steps - 1) / span * box.width) / width if episode.steps > 1 else 0,
                    "top": (height - box.y1) / height,
                    "height": box.height / height,
                }
            )
        plot = f'<img alt="proprio and action" src="{_data_url(rgb, "png")}" width="{width}" height="{height}">'
    data = {"frames": frames, "steps": episode.steps, "fps": episode.fps, "axes": axes}
    page = _PAGE.format(
        title=html.escape(episode.title),
        last=episode.steps - 1,
        cams=cams,
        plot=plot,
        data=json.dumps(data),
        cam_px=256,
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
