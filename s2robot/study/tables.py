"""The study report's tables: ``scaling.csv`` (every number of every row) and ``scaling.md`` (the
table people read, the paired comparisons, the cells that did not finish)."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from pathlib import Path

from s2robot.fileio import atomic_write
from s2robot.study.paired import markdown_lines

# Real robot, 16 trials each (the paper's Table 10), for context only: not the same task.
PAPER = "MVP ViT-B [224] 43.8% (7/16), ViT-L [224] 50.0% (8/16), ViT-B-S² [224, 448] 62.5% (10/16)"
CSV_NAME, MD_NAME, PNG_NAME = "scaling.csv", "scaling.md", "scaling.png"


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


def fmt(x, spec: str = ".2f", none: str = "n/a") -> str:
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
                    fmt(r.get("gmacs"), ".3f", ""),
                    r["n_seeds"],
                    " ".join(map(str, r["seeds"])),
                    f"{r['success_mean']:.4f}",
                    f"{r['success_std']:.4f}",
                    r["successes"],
                    r["episodes"],
                    f"{r['ci_lo']:.4f}",
                    f"{r['ci_hi']:.4f}",
                    " ".join(f"{x:.4f}" for x in r["per_seed"]),
                    fmt(r.get("probe_cm"), ".3f", ""),
                    fmt(r.get("probe_mean_cm"), ".3f", ""),
                    fmt(r.get("latency_ms"), ".3f", ""),
                    r.get("latency_device", ""),
                    r["store"],
                    r.get("error", ""),
                ]
            )


def pct(x: float) -> str:
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
            f"{fmt(r.get('probe_cm'))} ({fmt(r.get('probe_mean_cm'))})"
            if r.get("probe_cm") is not None
            else ("n/a: " + r["error"][:80] if r.get("error") else "n/a")
        )
        per_seed = ", ".join(f"{s}: {pct(x)}" for s, x in zip(r["seeds"], r["per_seed"]))
        lines.append(
            "| "
            + " | ".join(
                [
                    r["encoder"] if vision else f"*{r['kind']} baseline*",
                    str(list(r["scales"])) if vision else "-",
                    str(r["px"]) if vision else "-",
                    (r["weights_id"][:16] if vision else "-"),
                    f"{r['params'] / 1e6:.1f}M" if vision else "-",
                    fmt(r.get("gmacs")) if vision else "0",
                    f"**{pct(r['success_mean'])}**",
                    f"{pct(r['ci_lo'])} - {pct(r['ci_hi'])}",
                    f"{r['successes']}/{r['episodes']}",
                    per_seed,
                    probe if vision else "-",
                    fmt(r.get("latency_ms")) if vision else "-",
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
