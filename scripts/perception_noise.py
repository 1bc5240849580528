"""How precise must perception be? Evaluate privileged policies (inputs=[proprio,cube_pos,cube_yaw])
with Gaussian error of growing sigma on the cube position they see, pool the training seeds, and
write perception_noise.json and perception_noise.png (success with Wilson 95% intervals against
sigma, one line per noise mode and axes).

    python scripts/perception_noise.py runs/diag/privileged_seed{0,1,2} --out runs/diag/perception_noise \\
        [--sigmas-cm 0 0.5 1 2 3] [--modes per_episode per_step] [--axes xyz xy] [--yaw-deg 5 10 20] \\
        [--n-episodes 50]

Each evaluation lands in <out>/<mode>/<noise>/<run name>/eval.json (sigma 0 once, in <out>/none/: it
is the same for every mode) and is reused when rerun with the same checkpoint, episodes and noise,
so an interrupted sweep resumes. ``--axes xy``: the position error in the table plane only (a cube's
height on a table is known). ``--yaw-deg``: a second sweep over yaw error alone (position exact).
Every point uses the same evaluation seeds (seed_start + i), and each episode's noise direction is
the same at every sigma (s2robot/rollout/noise.py), so the points differ only by sigma.

Over 250 lines because it is one job a reader follows top to bottom (plan the points, evaluate or
reuse, pool, plot), self-contained like the bench_*.py scripts; the plot is a third of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2robot.cli import user_errors_exit
from s2robot.errors import UserError
from s2robot.simulator import quiet_robosuite_import

quiet_robosuite_import()  # here at the top: spawned env workers re-import this module

JSON_NAME, PNG_NAME = "perception_noise.json", "perception_noise.png"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (or checkpoint.pt files) of privileged policies")
    p.add_argument("--out", required=True, help="where the evaluations, the JSON and the plot go")
    p.add_argument("--sigmas-cm", type=float, nargs="+", default=[0, 0.5, 1, 2, 3])
    p.add_argument("--modes", nargs="+", default=["per_episode", "per_step"], choices=["per_episode", "per_step"])
    p.add_argument(
        "--axes",
        nargs="+",
        default=["xyz"],
        choices=["xyz", "xy"],
        help="position error on all axes and/or on x, y only",
    )
    p.add_argument("--yaw-deg", type=float, nargs="*", default=[], help="yaw sigmas (deg) of a yaw-only sweep")
    p.add_argument("--n-episodes", type=int, default=50)
    p.add_argument("--n-workers", type=int, default=1, help="env processes per evaluation (1: a quiet neighbour)")
    p.add_argument("--seed-start", type=int, default=None, help="default: the standard evaluation seeds")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--only-finished",
        action="store_true",
        help="run nothing: report the points whose evaluations all exist (a sweep cut short or split)",
    )
    return p.parse_args(argv)


def points(sigmas_cm, modes, yaws_deg, axes=("xyz",)) -> list[dict]:
    """Every (kind, mode, axes, sigma) of the sweep; sigma 0 once, shared by every line."""
    out = [{"kind": "none", "mode": None, "axes": None, "sigma": 0.0}]
    for kind, sigmas, kind_axes in (("pos", sigmas_cm, axes), ("yaw", yaws_deg, [None])):
        sigmas = [float(s) for s in sorted(set(sigmas)) if s > 0]
        for ax in kind_axes:
            for mode in modes:
                out += [{"kind": kind, "mode": mode, "axes": ax, "sigma": s} for s in sigmas]
    return out


def eval_dir(out: Path, point: dict, run: Path) -> Path:
    if point["kind"] == "none":
        return out / "none" / run.name
    name = {"xyz": "pos", "xy": "posxy", None: "yaw"}[point["axes"]]
    unit = "deg" if point["kind"] == "yaw" else "cm"
    return out / point["mode"] / f"{name}_{point['sigma']:g}{unit}" / run.name


def noise_kwargs(point: dict) -> dict:
    return {
        "cube_pos_noise_m": point["sigma"] / 100 if point["kind"] == "pos" else 0.0,
        "cube_yaw_noise_deg": point["sigma"] if point["kind"] == "yaw" else 0.0,
        "noise_mode": point["mode"] or "per_episode",
        "cube_pos_noise_axes": point["axes"] or "xyz",
    }


def reusable(path: Path, ckpt_hash: str, n_episodes: int, seed_start: int, noise: dict | None) -> dict | None:
    """A finished eval.json of this very checkpoint, episodes and noise, or None."""
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    recorded = r.get("perception_noise")
    if recorded:  # written before the axes option: the error was on all three axes
        recorded = {"axes": "xyz", **recorded}
    same = (
        r.get("checkpoint_hash") == ckpt_hash
        and r.get("n_episodes") == n_episodes
        and r.get("seed_start") == seed_start
        and recorded == noise
        and "failures" in r
    )
    return r if same else None


def pool(point: dict, results: list[dict]) -> dict:
    """One point of the curve: successes summed over the runs, with the Wilson interval."""
    from s2robot.stats import wilson_interval

    succ, n = sum(r["successes"] for r in results), sum(r["n_episodes"] for r in results)
    lo, hi = wilson_interval(succ, n)
    failures = {}
    for r in results:
        for c, k in r["failures"]["counts"].items():
            failures[c] = failures.get(c, 0) + k
    return {
        **point,
        "unit": "deg" if point["kind"] == "yaw" else "cm",
        "successes": succ,
        "n_episodes": n,
        "success_rate": succ / n,
        "ci95": [lo, hi],
        "per_run": [r["successes"] for r in results],
        "outcomes": failures,
        "eval_json": [r["eval_json"] for r in results],
    }


def curves(rows: list[dict], kind: str) -> dict[tuple, list[dict]]:
    """(mode, axes) -> points in sigma order, each line starting from the shared sigma-0 point."""
    zero = [r for r in rows if r["kind"] == "none"]
    keys = sorted({(r["mode"], r["axes"] or "") for r in rows if r["kind"] == kind}, key=lambda k: (k[1] == "xy", k))
    return {
        (m, a): zero
        + sorted(
            (r for r in rows if r["kind"] == kind and r["mode"] == m and (r["axes"] or "") == a),
            key=lambda r: r["sigma"],
        )
        for m, a in keys
    }


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from s2robot.fileio import atomic_path

    kinds = [k for k in ("pos", "yaw") if any(r["kind"] == k for r in rows)] or ["pos"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.4 * len(kinds), 4.6), dpi=130, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        lines = list(curves(rows, kind).items())
        span = max([p["sigma"] for _, pts in lines for p in pts] + [1.0])
        for k, (((mode, axes), pts), marker) in enumerate(zip(lines, "os^Dv<>")):
            dodge = (k - (len(lines) - 1) / 2) * 0.012 * span  # side by side, so the intervals do not hide each other
            x = [p["sigma"] + dodge for p in pts]
            y = [100 * p["success_rate"] for p in pts]
            err = [
                [max(0.0, yi - 100 * p["ci95"][0]) for yi, p in zip(y, pts)],
                [max(0.0, 100 * p["ci95"][1] - yi) for yi, p in zip(y, pts)],
            ]
            how = "fixed offset per episode" if mode == "per_episode" else "fresh every step"
            where = {"xyz": ", x y z", "xy": ", x y only (height exact)"}.get(axes, "")
            ax.errorbar(
                x,
                y,
                yerr=err,
                marker=marker,
                ms=6,
                lw=2,
                capsize=4,
                ls="--" if axes == "xy" else "-",
                label=f"{mode.replace('_', ' ')}{where} ({how})",
            )
            for xi, yi, p in zip(x, y, pts):
                if p["kind"] == "none" and k:
                    continue  # every line starts from the same sigma-0 point: label it once
                ax.annotate(
                    f"{p['successes']}/{p['n_episodes']}",
                    (xi, yi),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=7,
                )
        what = "cube position error, std per perturbed axis (cm)" if kind == "pos" else "cube yaw error, std (deg)"
        ax.set_xlabel(what)
        ax.set_ylabel("success (%), pooled over training seeds")
        ax.set_ylim(-3, 103)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.005, "error bars: Wilson 95% interval over pooled episodes", fontsize=7, alpha=0.7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def check_runs(runs: list[str]) -> list[tuple[Path, Path, str]]:
    """-> (run dir, checkpoint, hash) per run; every run must be a privileged policy, checked before any work."""
    from s2robot.checkpoint import checkpoint_hash, load_checkpoint, resolve_checkpoint_path

    out = []
    for run in runs:
        ckpt_path = resolve_checkpoint_path(run)
        inputs = list(load_checkpoint(ckpt_path)["inputs"])
        if "cube_pos" not in inputs:
            raise UserError(
                f"{run} is a policy on inputs [{','.join(inputs)}]: the sweep perturbs the privileged "
                "cube position, so pass runs trained with inputs=[proprio,cube_pos,cube_yaw]"
            )
        out.append((ckpt_path.parent, ckpt_path, checkpoint_hash(ckpt_path)))
    names = [d.name for d, _, _ in out]
    if len(set(names)) != len(names):
        raise UserError(f"run directories must have distinct names (their evaluations are stored by name): {names}")
    return out


def sweep(args: argparse.Namespace, log=print) -> dict:
    from envs.seeds import EVAL_SEED_START
    from s2robot.fileio import atomic_write
    from s2robot.rollout.evaluate import evaluate
    from s2robot.rollout.noise import PrivilegedNoise

    if any(s < 0 for s in [*args.sigmas_cm, *args.yaw_deg]):
        raise UserError(f"sigmas must be >= 0: --sigmas-cm {args.sigmas_cm} --yaw-deg {args.yaw_deg}")
    if args.n_episodes < 1:
        raise UserError(f"--n-episodes {args.n_episodes}: must be at least 1")
    seed_start = EVAL_SEED_START if args.seed_start is None else args.seed_start
    runs = check_runs(args.runs)
    out = Path(args.out)
    rows, missing = [], []
    for point in points(args.sigmas_cm, args.modes, args.yaw_deg, args.axes):
        kw = noise_kwargs(point)
        noise = PrivilegedNoise(
            kw["cube_pos_noise_m"], kw["cube_yaw_noise_deg"], kw["noise_mode"], kw["cube_pos_noise_axes"]
        ).describe()
        results = []
        for run_dir, ckpt, ckpt_hash in runs:
            where = eval_dir(out, point, run_dir)
            result = reusable(where / "eval.json", ckpt_hash, args.n_episodes, seed_start, noise)
            if result is None and args.only_finished:
                break
            if result is None:
                result = evaluate(
                    ckpt,
                    where,
                    n_episodes=args.n_episodes,
                    n_workers=args.n_workers,
                    seed_start=seed_start,
                    n_videos=0,
                    device=args.device,
                    progress=False,
                    **kw,
                )
            log(
                f"{point['kind']:>4} {point['mode'] or '':<11} {point['axes'] or '':<3} sigma {point['sigma']:g}: "
                f"{run_dir.name} {result['successes']}/{result['n_episodes']}"
            )
            results.append(result)
        if len(results) < len(runs):  # pooled only over every run, or the point would mix seeds
            missing.append(point)
            continue
        rows.append(pool(point, results))
    summary = {
        "runs": [str(d) for d, _, _ in runs],
        "checkpoint_hashes": [h for _, _, h in runs],
        "n_episodes_per_run": args.n_episodes,
        "seed_start": seed_start,
        "noise": "Gaussian, std sigma per axis of cube_pos (cm; axes xyz or xy) or on the cube's yaw (deg); "
        "per_episode: one offset per episode, per_step: fresh each step; seeded by the episode seed",
        "points": rows,
        "not_finished": missing,
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / JSON_NAME, "w") as f:
        f.write(json.dumps(summary, indent=2))
    plot(
        rows,
        out / PNG_NAME,
        f"Privileged policy with perception error: {len(runs)} training seeds x {args.n_episodes} episodes per point",
    )
    return summary


def table_lines(summary: dict) -> list[str]:
    lines = [f"{'noise':<6} {'mode':<12} {'axes':<5} {'sigma':>7} {'success':>10} {'rate':>7} {'95% CI':>14}"]
    for r in summary["points"]:
        lo, hi = r["ci95"]
        lines.append(
            f"{r['kind']:<6} {r['mode'] or '-':<12} {r['axes'] or '-':<5} {r['sigma']:>5g}{r['unit']:<3} "
            f"{r['successes']:>5}/{r['n_episodes']:<4} {100 * r['success_rate']:>6.1f}% "
            f"{100 * lo:>6.1f}-{100 * hi:.1f}%"
        )
    return lines


@user_errors_exit
def main(argv=None) -> None:
    args = parse_args(argv)
    summary = sweep(args, log=lambda line: print(line, flush=True))
    print("\n".join(table_lines(summary)))
    if summary["not_finished"]:
        print(f"not finished (left out): {len(summary['not_finished'])} points; rerun without --only-finished")
    print(f"wrote {Path(args.out) / JSON_NAME} and {Path(args.out) / PNG_NAME}")


if __name__ == "__main__":
    sys.exit(main())
