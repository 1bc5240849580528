"""The study's picture, ``scaling.png``: success against GMACs per frame, one line per encoder
through its S² scales, the encoders at scale [1] joined (model-size scaling), the brackets as bands."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from s2robot.fileio import atomic_path
from s2robot.study.tables import pct


def plot(rows: Sequence[dict], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=130)
    vision = [r for r in rows if r["kind"] == "vision"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_enc: dict[tuple, list[dict]] = defaultdict(list)
    for r in vision:
        by_enc[(r["encoder"], r["img_size"], r["weights_id"])].append(r)
    names = [e for e, _, _ in by_enc]
    for i, (key, rs) in enumerate(sorted(by_enc.items(), key=lambda kv: min(r["gmacs"] for r in kv[1]))):
        rs = sorted(rs, key=lambda r: (len(r["scales"]), r["gmacs"]))
        x = np.array([r["gmacs"] for r in rs])
        y = np.array([100 * r["success_mean"] for r in rs])
        err = np.array(
            [[100 * (r["success_mean"] - r["ci_lo"]) for r in rs], [100 * (r["ci_hi"] - r["success_mean"]) for r in rs]]
        ).clip(min=0)
        label = key[0] + f" ({rs[0]['px']} px)" + (" random" if rs[0]["random_weights"] else "")
        if names.count(key[0]) > 1 and not rs[0]["random_weights"]:
            label += f" {key[2][:10]}"
        c = colours[i % len(colours)]
        ax.errorbar(x, y, yerr=err, color=c, marker="o", ms=7, lw=2, capsize=4, label=f"{label}: S² scales (solid)")
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(
                f"{r['encoder']} {list(r['scales'])}",
                (xi, yi),
                textcoords="offset points",
                xytext=(9, -9 if i % 2 == 0 else 9),
                va="center",
                fontsize=8,
                color=c,
            )  # encoders alternate below/above, so labels of close points do not collide
    ones = sorted((r for r in vision if list(r["scales"]) == [1]), key=lambda r: r["gmacs"])
    if len(ones) > 1:
        ax.plot(
            [r["gmacs"] for r in ones],
            [100 * r["success_mean"] for r in ones],
            "k--",
            lw=1.3,
            alpha=0.8,
            label="model size at scale [1] (dashed)",
            zorder=0,
        )
    styles = {
        "blind": ("tab:gray", "blind baseline (proprio only)"),
        "privileged": ("tab:green", "privileged baseline (true cube pose)"),
    }
    for r in rows:
        if r["kind"] in styles:
            c, name = styles[r["kind"]]
            ax.axhline(100 * r["success_mean"], color=c, ls=":", lw=1.8, label=f"{name}: {pct(r['success_mean'])}")
            ax.axhspan(100 * r["ci_lo"], 100 * r["ci_hi"], color=c, alpha=0.08, lw=0)
    if vision:
        ax.set_xscale("log")
        xs = [r["gmacs"] for r in vision]
        ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_ylim(-3, 103)
    ax.set_xlabel("encoder GMACs per frame (log scale, all S² scales)")
    ax.set_ylabel("success rate (%), mean over seeds")
    ax.set_title(title or "Model size vs S² scales", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="best", framealpha=0.9)
    fig.text(0.01, 0.005, "error bars / bands: Wilson 95% interval over pooled episodes", fontsize=7, alpha=0.7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
