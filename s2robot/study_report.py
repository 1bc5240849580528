"""The scaling study's report, built from finished run directories of ``train_policy.py`` (the
study's own cells, a Hydra multirun folder, baseline runs): ``scaling.csv``, ``scaling.md`` and
``scaling.png`` (success against GMACs per frame, model-size scaling against S² scaling).

Per (encoder, scales, weights): parameters and GMACs per frame (``cost_columns``, the same
meta-device count as ``s2robot.costs``), success as the mean of the per-seed rates with a
Wilson 95% interval over all episodes of all seeds pooled, the linear-probe error of the
frozen features and the encoder's latency per frame on the measuring machine.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from s2robot.evaluate import wilson_interval
from s2robot.study import STATUS_NAME, cell_state, failure_reason, read_eval, read_status

CSV_NAME, MD_NAME, PNG_NAME = "scaling.csv", "scaling.md", "scaling.png"
MEASURE_NAME = "measurements.json"
KIND_ORDER = {"vision": 0, "blind": 1, "privileged": 2}
# Real robot, 16 trials each (the paper's Table 10), for context only: not the same task.
PAPER = "MVP ViT-B [224] 43.8% (7/16), ViT-L [224] 50.0% (8/16), ViT-B-S² [224, 448] 62.5% (10/16)"


@lru_cache(maxsize=None)
def cost_columns(encoder: str, scales: tuple[int, ...], img_size: int | None = None) -> dict:
    """``{"params": int, "gmacs": float}`` per frame: the study's cost columns."""
    from s2robot.costs import encoder_costs

    return encoder_costs(encoder, list(scales), img_size)


# -- reading run directories ----------------------------------------------------------------


def find_run_dirs(root: str | Path) -> list[Path]:
    """Directories under ``root`` (itself included) that hold a train_policy.py run: a Hydra
    ``.hydra/config.yaml``, a ``checkpoint.pt`` or a study cell record."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "checkpoint.pt" in filenames or STATUS_NAME in filenames or (here / ".hydra" / "config.yaml").is_file():
            if (here / ".hydra" / "config.yaml").is_file() and not _is_train_config(here):
                continue  # some other Hydra app's output (e.g. the study's own)
            found.append(here)
            dirnames[:] = []  # eval/, tb/, .hydra/ belong to this run
        else:
            dirnames[:] = [d for d in dirnames if d not in ("features", "tb", "videos")]
    return sorted(found)


def _is_train_config(run_dir: Path) -> bool:
    cfg = _hydra_config(run_dir)
    return isinstance(cfg, dict) and "inputs" in cfg and "train" in cfg


def _hydra_config(run_dir: Path) -> dict | None:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception:  # an unknown resolver or a damaged file: fall back to the checkpoint
        return None


def run_config(run_dir: str | Path) -> dict:
    """The run's resolved config: Hydra's copy, else the one inside the checkpoint."""
    run_dir = Path(run_dir)
    cfg = _hydra_config(run_dir)
    if cfg is None:
        from s2robot.study import read_checkpoint_meta

        meta = read_checkpoint_meta(run_dir)
        cfg = meta["config"] if meta else {}
    return cfg


def kind_of(inputs: Sequence[str]) -> str:
    inputs = list(inputs)
    if "vision" in inputs:
        return "vision"
    return "privileged" if any(k in inputs for k in ("cube_pos", "cube_yaw")) else "blind"


def run_info(run_dir: str | Path) -> dict:
    """What a run directory is (kind, encoder, scales, weights, seed, store) and how it ended."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    result = read_eval(run_dir)
    inputs = cfg.get("inputs") or (result or {}).get("inputs") or []
    kind = kind_of(inputs)
    enc = cfg.get("encoder") or {}
    info = {
        "run_dir": str(run_dir), "name": run_dir.name, "kind": kind, "seed": cfg.get("seed"),
        "encoder": enc.get("name") if kind == "vision" else None,
        "scales": tuple(int(s) for s in cfg.get("scales") or ()) if kind == "vision" else (),
        "img_size": enc.get("img_size") if kind == "vision" else None,
        "weights_arg": str(enc.get("weights")) if kind == "vision" else None,
        "encoder_seed": enc.get("seed", 0),
        # The probe reads the features the head was given (CLS, or the token grid).
        "feature": enc.get("feature", "cls") if kind == "vision" else None,
        "output_grid": enc.get("output_grid", "native") if kind == "vision" else None,
        "weights_id": (result or {}).get("encoder_weights"),
        "store": (cfg.get("data") or {}).get("store"),
        "camera": (cfg.get("data") or {}).get("camera", "agentview"),
        "epochs": (cfg.get("train") or {}).get("epochs"),
        "finished": False, "reason": None, "result": result,
    }
    n_planned = (result or {}).get("n_episodes") or (cfg.get("eval") or {}).get("n_episodes")
    if info["epochs"] is not None and n_planned is not None:
        state, why = cell_state(run_dir, int(info["epochs"]), int(n_planned))
        info["finished"] = state == "finished"
        if not info["finished"]:
            info["reason"] = why if (run_dir / "checkpoint.pt").is_file() else _unfinished_reason(run_dir)
    else:
        info["reason"] = _unfinished_reason(run_dir, has_config=bool(cfg))
    return info


def _unfinished_reason(run_dir: Path, has_config: bool = True) -> str:
    status = read_status(run_dir)
    if status and status.get("status") == "failed":
        return status.get("reason") or "failed"
    if status and status.get("status") == "running":
        return "started but not finished (running now, or killed: rerun the study to resume it)"
    for name in ("train_policy.log", "cell.log"):
        if (run_dir / name).is_file():
            reason = failure_reason(run_dir / name, 1)
            if not reason.startswith("exit code"):
                return reason
    if not has_config:
        return "no config (.hydra/config.yaml) and no readable checkpoint"
    return "no eval/eval.json (not finished, still running, or crashed)"


# -- encoder measurements (linear probe, latency) ---------------------------------------------


def device_label(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))} (fp32)"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model or 'unknown'}, {torch.get_num_threads()} torch thread(s), {os.cpu_count()} cores"


def measure_encoder(info: dict, device: str, *, probe: bool = True, latency: bool = True,
                    repeats: int = 20, warmup: int = 3) -> dict:
    """Linear probe (cube x, y from first frames, cm) and median ms per frame of ``encoder(frame)``
    at batch 1, for the encoder of a run (its weights, img_size, scales, store)."""
    import torch

    from s2robot.encoders import build_encoder
    from s2robot.probe import probe_encoder
    from s2robot.replay_buffer import ReplayBuffer

    enc = build_encoder(info["encoder"], weights=info["weights_arg"], scales=list(info["scales"]),
                        img_size=info["img_size"], seed=info["encoder_seed"] or 0, device=device,
                        feature=info.get("feature") or "cls", output_grid=info.get("output_grid") or "native")
    store = ReplayBuffer.open(info["store"], required_keys=(info["camera"], "cube_pos"))
    out: dict = {"weights_id": enc.weights_id}
    if probe:
        try:
            p = probe_encoder(enc, store, info["camera"])
            out.update(probe_cm=p["probe"]["rms_dist_cm"], probe_mean_cm=p["mean_baseline"]["rms_dist_cm"],
                       probe_r2=p["r2"], probe_n=p["n"])
        except Exception as e:  # e.g. too few episodes for the folds: latency is still worth having
            out["error"] = f"probe: {type(e).__name__}: {e}"
    if latency:
        frame = store.read(info["camera"], 0, 1)  # 1 x H x W x 3 uint8, as the policy sees it
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        times = []
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            enc(frame)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        out.update(latency_ms=round(float(np.median(times)), 3), latency_repeats=repeats,
                   latency_device=device_label(str(device)))
    return out


def measure_groups(rows: list[dict], study_dir: Path, device: str, measure: Callable | None,
                   log: Callable[[str], None] = print) -> None:
    """Fill each vision row's probe and latency columns, cached in ``measurements.json`` (keyed by
    encoder, scales, size, weights, store and device) so rebuilding the report is cheap."""
    path = study_dir / MEASURE_NAME
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    for row in rows:
        if row["kind"] != "vision":
            continue
        info = row["_info"]
        key = "|".join(str(x) for x in (info["encoder"], list(info["scales"]), info["img_size"],
                                        info["weights_id"] or info["weights_arg"], info["store"], device,
                                        info.get("feature") or "cls", info.get("output_grid") or "native"))
        if key not in cache and measure is not None:
            log(f"measuring {row['encoder']} {list(row['scales'])}: linear probe and latency on {device}")
            try:
                cache[key] = measure(info, device)
            except Exception as e:  # missing weights or store: the columns say why, the report goes on
                cache[key] = {"error": f"{type(e).__name__}: {e}"}
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(cache, indent=1))
            tmp.replace(path)
        row.update({k: v for k, v in cache.get(key, {}).items() if k != "weights_id"})


# -- rows -------------------------------------------------------------------------------------


def build_rows(infos: Sequence[dict]) -> list[dict]:
    """One row per (kind, encoder, scales, img_size, weights) over the finished runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for info in infos:
        if info["finished"]:
            key = (info["kind"], info["encoder"], info["scales"], info["img_size"],
                   info["weights_id"] if info["kind"] == "vision" else None)
            groups[key].append(info)
    rows = []
    for (kind, encoder, scales, img_size, weights_id), runs in groups.items():
        runs = sorted(runs, key=lambda r: (r["seed"] is None, r["seed"]))
        k = sum(int(r["result"]["successes"]) for r in runs)
        n = sum(int(r["result"]["n_episodes"]) for r in runs)
        rates = [r["result"]["successes"] / r["result"]["n_episodes"] for r in runs]
        lo, hi = wilson_interval(k, n)
        row = {
            "kind": kind, "encoder": encoder or kind, "scales": scales, "img_size": img_size,
            "weights": runs[0]["weights_arg"] if kind == "vision" else "",
            "weights_id": weights_id or "", "random_weights": str(weights_id or "").startswith("random"),
            "n_seeds": len(runs), "seeds": [r["seed"] for r in runs],
            "success_mean": float(np.mean(rates)), "success_std": float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0,
            "successes": k, "episodes": n, "ci_lo": lo, "ci_hi": hi,
            "per_seed": rates, "store": runs[0]["store"], "run_dirs": [r["run_dir"] for r in runs],
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

CSV_COLUMNS = ["kind", "encoder", "scales", "img_size", "weights", "params", "gmacs", "n_seeds", "seeds",
               "success_mean", "success_std", "successes", "episodes", "ci95_lo_pooled_wilson",
               "ci95_hi_pooled_wilson", "per_seed_success", "probe_cm", "probe_mean_baseline_cm",
               "latency_ms_per_frame", "latency_device", "store", "measure_error"]


def _fmt(x, spec: str = ".2f", none: str = "n/a") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["kind"], r["encoder"], "-".join(map(str, r["scales"])), r.get("px", ""),
                        r["weights"], r.get("params", ""), _fmt(r.get("gmacs"), ".3f", ""), r["n_seeds"],
                        " ".join(map(str, r["seeds"])), f"{r['success_mean']:.4f}", f"{r['success_std']:.4f}",
                        r["successes"], r["episodes"], f"{r['ci_lo']:.4f}", f"{r['ci_hi']:.4f}",
                        " ".join(f"{x:.4f}" for x in r["per_seed"]), _fmt(r.get("probe_cm"), ".3f", ""),
                        _fmt(r.get("probe_mean_cm"), ".3f", ""), _fmt(r.get("latency_ms"), ".3f", ""),
                        r.get("latency_device", ""), r["store"], r.get("error", "")])


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def write_markdown(rows: Sequence[dict], missing: Sequence[dict], path: Path, meta: dict) -> None:
    random_rows = [r for r in rows if r["random_weights"]]
    lines = [f"# Scaling study: {meta.get('name', path.parent.name)}", ""]
    if random_rows:
        names = ", ".join(sorted({f"{r['encoder']} {list(r['scales'])}" for r in random_rows}))
        lines += [f"> **WARNING: random-weight encoders ({names}).** Their features carry no pre-trained "
                  "visual knowledge, so these rows only check the pipeline: they do NOT test the paper's "
                  "claim (a small model looking at more scales vs a larger model). Use pre-trained "
                  "weights (MVP, or this repository's MAE pre-training) for that.", ""]
    stores = ", ".join(sorted({f"`{r['store']}`" for r in rows})) or "n/a"
    lines += [f"- study directory: `{meta.get('study_dir', path.parent)}`",
              f"- demonstration store(s): {stores}",
              f"- latency measured on: {meta.get('device_label') or 'n/a'} (median of `encoder(frame)` at batch 1)",
              f"- built: {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
              "**Success** is the mean over training seeds of each seed's success rate. **95% CI** is the "
              "Wilson score interval over all evaluation episodes of all seeds pooled (k/N): it treats the "
              "episodes as independent and ignores seed-to-seed variance, which the per-seed rates show. "
              "**Probe** is the held-out RMS error (cm) of a linear (ridge) map from the frozen features the "
              "head was given (CLS, or all tokens) of each demo's first frame to the cube's x, y, next to predicting the mean (lower is better). "
              "**GMACs** are multiply-accumulates per frame for the whole S² encoder (all scales).", "",
              "| encoder | scales | tile px | weights | params | GMACs/frame | success (mean of seeds) | 95% CI "
              "(Wilson, pooled) | k/N | per seed | probe cm (mean baseline) | latency ms/frame |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vision = r["kind"] == "vision"
        probe = (f"{_fmt(r.get('probe_cm'))} ({_fmt(r.get('probe_mean_cm'))})" if r.get("probe_cm") is not None
                 else ("n/a: " + r["error"][:80] if r.get("error") else "n/a"))
        per_seed = ", ".join(f"{s}: {_pct(x)}" for s, x in zip(r["seeds"], r["per_seed"]))
        lines.append("| " + " | ".join([
            r["encoder"] if vision else f"*{r['kind']} baseline*",
            str(list(r["scales"])) if vision else "-",
            str(r["px"]) if vision else "-",
            (r["weights_id"][:16] if vision else "-"),
            f"{r['params'] / 1e6:.1f}M" if vision else "-",
            _fmt(r.get("gmacs")) if vision else "0",
            f"**{_pct(r['success_mean'])}**", f"{_pct(r['ci_lo'])} - {_pct(r['ci_hi'])}",
            f"{r['successes']}/{r['episodes']}", per_seed, probe if vision else "-",
            _fmt(r.get("latency_ms")) if vision else "-"]) + " |")
    if not rows:
        lines.append("| (no finished runs) |" + " |" * 11)
    lines += ["", "## Missing cells", ""]
    if missing:
        lines += ["| cell | reason |", "|---|---|"]
        lines += [f"| `{m['cell']}` | {str(m['reason']).replace('|', '/')} |" for m in missing]
    else:
        lines.append("None: every planned cell finished.")
    lines += ["", f"Paper, for context (real robot, not this task): {PAPER}.",
              f"Plot: `{PNG_NAME}`; numbers: `{CSV_NAME}`.", ""]
    path.write_text("\n".join(lines))


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
        err = np.array([[100 * (r["success_mean"] - r["ci_lo"]) for r in rs],
                        [100 * (r["ci_hi"] - r["success_mean"]) for r in rs]]).clip(min=0)
        label = key[0] + f" ({rs[0]['px']} px)" + (" random" if rs[0]["random_weights"] else "")
        if names.count(key[0]) > 1 and not rs[0]["random_weights"]:
            label += f" {key[2][:10]}"
        c = colours[i % len(colours)]
        ax.errorbar(x, y, yerr=err, color=c, marker="o", ms=7, lw=2, capsize=4, label=f"{label}: S² scales (solid)")
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(f"{r['encoder']} {list(r['scales'])}", (xi, yi), textcoords="offset points",
                        xytext=(9, -9 if i % 2 == 0 else 9), va="center", fontsize=8, color=c)  # encoders alternate below/above, so labels of close points do not collide
    ones = sorted((r for r in vision if list(r["scales"]) == [1]), key=lambda r: r["gmacs"])
    if len(ones) > 1:
        ax.plot([r["gmacs"] for r in ones], [100 * r["success_mean"] for r in ones], "k--", lw=1.3, alpha=0.8,
                label="model size at scale [1] (dashed)", zorder=0)
    styles = {"blind": ("tab:gray", "blind baseline (proprio only)"),
              "privileged": ("tab:green", "privileged baseline (true cube pose)")}
    for r in rows:
        if r["kind"] in styles:
            c, name = styles[r["kind"]]
            ax.axhline(100 * r["success_mean"], color=c, ls=":", lw=1.8,
                       label=f"{name}: {_pct(r['success_mean'])}")
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
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def build_report(out_dir: str | Path, infos: Sequence[dict], missing: Sequence[dict], *,
                 measure: Callable | None = None, device: str = "cpu", name: str | None = None,
                 source: str | Path | None = None, log: Callable[[str], None] = print) -> list[dict]:
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
    write_markdown(rows, missing, study_dir / MD_NAME, meta)
    title = f"{meta['name']}: model size vs S² scales"
    if any(r["random_weights"] for r in rows):
        title += "\nRANDOM-WEIGHT encoders: pipeline check only, not a test of the paper's claim"
    plot(rows, study_dir / PNG_NAME, title)
    for r in rows:
        r.pop("_info", None)
    return rows
