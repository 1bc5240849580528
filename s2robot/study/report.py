"""The scaling study's report, built from finished run directories of ``train_policy.py`` (the
study's own cells, a Hydra multirun folder, baseline runs): ``scaling.csv``, ``scaling.md`` and
``scaling.png`` (success against GMACs per frame, model-size scaling against S² scaling).

Per (encoder, scales, weights): parameters and GMACs per frame (``cost_columns``, the same
meta-device count as ``s2robot.encoders.costs``), success as the mean of the per-seed rates with a
Wilson 95% interval over all episodes of all seeds pooled, the linear-probe error of the
frozen features and the encoder's latency per frame on the measuring machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np

from s2robot.stats import wilson_interval
from s2robot.study.measure import measure_groups
from s2robot.study.paired import paired_comparisons
from s2robot.study.plot import plot
from s2robot.study.tables import CSV_NAME, MD_NAME, PNG_NAME, write_csv, write_markdown

KIND_ORDER = {"vision": 0, "blind": 1, "privileged": 2}


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
            # (training seed, evaluation seed) -> success, for the paired tests (study/paired.py); a
            # result without per-episode records pairs with nothing (it still counts in the table)
            "_outcomes": {
                (r["seed"], int(e["seed"])): bool(e["success"]) for r in runs for e in r["result"].get("episodes") or ()
            },
        }
        if kind == "vision":
            from s2robot.encoders import resolve_spec

            costs = cost_columns(encoder, tuple(scales), img_size)
            row.update(params=costs["params"], gmacs=costs["gmacs"], px=resolve_spec(encoder, img_size).img_size)
        rows.append(row)
    rows.sort(key=lambda r: (KIND_ORDER[r["kind"]], r.get("gmacs") or 0.0, r["encoder"]))
    return rows


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
        r.pop("_outcomes", None)
    return rows
