"""The scaling study's report, built from finished run directories of ``train_policy.py`` (the
study's own cells, a Hydra multirun folder, baseline runs): ``scaling.csv``, ``scaling.md`` and
``scaling.png`` (success against GMACs per frame, model-size scaling against S² scaling).

Per (encoder, scales, weights): parameters and GMACs per frame (``cost_columns``, the same
meta-device count as ``s2robot.encoders.costs``), success as the mean of the per-seed rates with a
Wilson 95% interval over all episodes of all seeds pooled, the linear-probe error of the
frozen features and the encoder's latency per frame on the measuring machine.
"""

from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from s2robot.fileio import atomic_path, atomic_write
from s2robot.stats import wilson_interval
from s2robot.study.measure import measure_groups
from s2robot.study.paired import markdown_lines, paired_comparisons

CSV_NAME, MD_NAME, PNG_NAME = "scaling.csv", "scaling.md", "scaling.png"
KIND_ORDER = {"vision": 0, "blind": 1, "privileged": 2}
# Real robot, 16 trials each (the paper's Table 10), for context only: not the same task.
PAPER = "MVP ViT-B [224] 43.8% (7/16), ViT-L [224] 50.0% (8/16), ViT-B-S² [224, 448] 62.5% (10/16)"


@cache
def cost_columns(encoder: str, scales: tuple[int, ...], img_size: int | None = None) -> dict:
    """``{"params": int, "gmacs": float}`` per frame: the study's cost columns."""
    from s2robot.encoders.costs import encoder_costs

    return encoder_costs(encoder, list(scales), img_size)


# -- rows -------------------------------------------------------------------------------------


def build_rows(infos: Sequence[dict]) -> list[dict]:
    """One row per (kind, encoder, scales, img_size, weights) over the finished runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for info in infos:
        if info["finished"]:
            key = (
                info["kind"],
                info["encoder"],
                info["scales"],
                info["img_size"],
                info["weights_id"] if info["kind"] == "vision" else None,
            )
            groups[key].append(info)
    rows = []
    for (kind, encoder, scales, img_size, weights_id), runs in groups.items():
        runs = sorted(runs, key=lambda r: (r["seed"] is None, r["seed"]))
        k = sum(int(r["result"]["successes"]) for r in runs)
        n = sum(int(r["result"]["n_episodes"]) for r in runs)
        rates = [r["result"]["successes"] / r["result"]["n_episodes"] for r in runs]
        lo, hi = wilson_interval(k, n)
        row = {
            "kind": kind,
            "encoder": encoder or kind,
            "scales": scales,
            "img_size": img_size,
            "weights": runs[0]["weights_arg"] if kind == "vision" else "",
            "weights_id": weights_id or "",
            "random_weights": str(weights_id or "").startswith("random"),
            "n_seeds": len(runs),
            "seeds": [r["seed"] for r in runs],
            "success_mean": float(np.mean(rates)),
            "success_std": float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0,
            "successes": k,
            "episodes": n,
            "ci_lo": lo,
            "ci_hi": hi,
            "per_seed": rates,
            "store": runs[0]["store"],
            "run_dirs": [r["run_dir"] for r in runs],
            "_info": runs[0],
        }
        if kind == "vision":
            from s2robot.encoders import resolve_spec

            costs = cost_columns(encoder, tuple(scales), img_size)
            row.update(params=costs["params"], gmacs=costs["gmacs"], px=resolve_spec(encoder, img_size).img_size)
        rows.append(row)
    rows.sort(key=lambda r: (KIND_ORDER[r["kind"]], r.get("gmacs") or 0.0, r["encoder"]))
    return rows


# -- outputs ---------------------------------------------------------------------------------

CSV_COLUMNS = [
    "kind",
    "encoder",
    "scales",
    "img_size",
    "weights",
    "params",
    "gmacs",
    "n_seeds",
    "seeds",
    "success_mean",
    "success_std",
    "successes",
    "episodes",
    "ci95_lo_pooled_wilson",
    "ci95_hi_pooled_wilson",
    "per_seed_success",
    "probe_cm",
    "probe_mean_baseline_cm",
    "latency_ms_per_frame",
    "latency_device",
    "store",
    "measure_error",
]


def _fmt(x, spec: str = ".2f", none: str = "n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    with atomic_write(path, "w") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(
                [
                    r["kind"],
                    r["encoder"],
                    "-".join(map(str, r["scales"])),
                    r.get("px", ""),
                    r["weights"],
                    r.get("params", ""),
                    _fmt(r.get("gmacs"), ".3f", ""),
                    r["n_seeds"],
                    " ".join(map(str, r["seeds"])),
                    f"{r['success_mean']:.4f}",
                    f"{r['success_std']:.4f}",
                    r["successes"],
                    r["episodes"],
                    f"{r['ci_lo']:.4f}",
                    f"{r['ci_hi']:.4f}",
                    " ".join(f"{x:.4f}" for x in r["per_seed"]),
                    _fmt(r.get("probe_cm"), ".3f", ""),
                    _fmt(r.get("probe_mean_cm"), ".3f", ""),
                    _fmt(r.get("latency_ms"), ".3f", ""),
                    r.get("latency_device", ""),
                    r["store"],
                    r.get("error", ""),
                ]
            )


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def write_markdown(
    rows: Sequence[dict], missing: Sequence[dict], path: Path, meta: dict, comparisons: Sequence[dict] = ()
) -> None:
    random_rows = [r for r in rows if r["random_weights"]]
    lines = [f"# Scaling study: {meta.get('name', path.parent.name)}", ""]
    if random_rows:
        names = ", ".join(sorted({f"{r['encoder']} {list(r['scales'])}" for r in random_rows}))
        lines += [
            f"> **WARNING: random-weight encoders ({names}).** Their features carry no pre-trained "
            "visual knowledge, so these rows only check the pipeline: they do NOT test the paper's "
            "claim (a small model looking at more scales vs a larger model). Use pre-trained "
            "weights (MVP, or this repository's MAE pre-training) for that.",
            "",
        ]
    stores = ", ".join(sorted({f"`{r['store']}`" for r in rows})) or "n/a"
    lines += [
        f"- study directory: `{meta.get('study_dir', path.parent)}`",
        f"- demonstration store(s): {stores}",
        f"- latency measured on: {meta.get('device_label') or 'n/a'} (median of `encoder(frame)` at batch 1)",
        f"- built: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        "**Success** is the mean over training seeds of each seed's success rate. **95% CI** is the "
        "Wilson score interval over all evaluation episodes of all seeds pooled (k/N): it treats the "
        "episodes as independent and ignores seed-to-seed variance, which the per-seed rates show. "
        "**Probe** is the held-out RMS error (cm) of a linear (ridge) map from the frozen features the "
        "head was given (CLS, or all tokens) of each demo's first frame to the cube's x, y, next to "
        "predicting the mean (lower is better). "
        "**GMACs** are multiply-accumulates per frame for the whole S² encoder (all scales).",
        "",
        "| encoder | scales | tile px | weights | params | GMACs/frame | success (mean of seeds) | 95% CI "
        "(Wilson, pooled) | k/N | per seed | probe cm (mean baseline) | latency ms/frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        vision = r["kind"] == "vision"
        probe = (
            f"{_fmt(r.get('probe_cm'))} ({_fmt(r.get('probe_mean_cm'))})"
            if r.get("probe_cm") is not None
            else ("n/a: " + r["error"][:80] if r.get("error") else "n/a")
        )
        per_seed = ", ".join(f"{s}: {_pct(x)}" for s, x in zip(r["seeds"], r["per_seed"]))
        lines.append(
            "| "
            + " | ".join(
                [
                    r["encoder"] if vision else f"*{r['kind']} baseline*",
                    str(list(r["scales"])) if vision else "-",
                    str(r["px"]) if vision else "-",
                    (r["weights_id"][:16] if vision else "-"),
                    f"{r['params'] / 1e6:.1f}M" if vision else "-",
                    _fmt(r.get("gmacs")) if vision else "0",
                    f"**{_pct(r['success_mean'])}**",
                    f"{_pct(r['ci_lo'])} - {_pct(r['ci_hi'])}",
                    f"{r['successes']}/{r['episodes']}",
                    per_seed,
                    probe if vision else "-",
                    _fmt(r.get("latency_ms")) if vision else "-",
                ]
            )
            + " |"
        )
    if not rows:
        lines.append("| (no finished runs) |" + " |" * 11)
    lines += ["", *markdown_lines(comparisons), "## Missing cells", ""]
    if missing:
        lines += ["| cell | reason |", "|---|---|"]
        lines += [f"| `{m['cell']}` | {str(m['reason']).replace('|', '/')} |" for m in missing]
    else:
        lines.append("None: every planned cell finished.")
    lines += [
        "",
        f"Paper, for context (real robot, not this task): {PAPER}.",
        f"Plot: `{PNG_NAME}`; numbers: `{CSV_NAME}`.",
        "",
    ]
    with atomic_write(path, "w") as f:
        f.write("\n".join(lines))


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
            ax.axhline(100 * r["success_mean"], color=c, ls=":", lw=1.8, label=f"{name}: {_pct(r['success_mean'])}")
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


def build_report(
    out_dir: str | Path,
    infos: Sequence[dict],
    missing: Sequence[dict],
    *,
    measure: Callable | None = None,
    device: str = "cpu",
    name: str | None = None,
    source: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Write scaling.csv/md/png into ``out_dir`` from run infos (``run_info``) and the cells that
    did not finish (``[{"cell", "reason"}]``). ``measure(info, device)`` fills probe/latency
    (None: leave them empty unless cached); ``source``: where the runs are (default out_dir).
    Returns the rows."""
    study_dir = Path(out_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    rows = build_rows(infos)
    measure_groups(rows, study_dir, device, measure, log)
    label = next((r["latency_device"] for r in rows if r.get("latency_device")), None)
    meta = {"name": name or study_dir.name, "study_dir": str(source or study_dir), "device_label": label}
    write_csv(rows, study_dir / CSV_NAME)
    comparisons = paired_comparisons(rows)
    write_markdown(rows, missing, study_dir / MD_NAME, meta, comparisons)
    title = f"{meta['name']}: model size vs S² scales"
    if any(r["random_weights"] for r in rows):
        title += "\nRANDOM-WEIGHT encoders: pipeline check only, not a test of the paper's claim"
    plot(rows, study_dir / PNG_NAME, title)
    for r in rows:
        r.pop("_info", None)
    return rows
