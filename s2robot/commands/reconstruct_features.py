"""The paper's reconstruction analysis (section 4.2) on a store's frames: how much of a larger
encoder's features a linear map from a smaller encoder's S² features recovers.

    s2robot-reconstruct --store data/cube_pick_224.zarr --camera agentview \\
        --small vit_t --small-weights <run>/encoder.pt --small-img-size 64 --scales 1 1,2 1,2,3 \\
        --large vit_b --large-weights <file> --large-img-size 224 --out reconstruct.json

Frames: every --stride-th frame of every episode (at most --max-frames), split into fit and
held-out by EPISODE. Prints one JSON line and a table (I, I*, ratio = I / I*; definitions in
``s2robot.study.reconstruct``); writes the JSON to --out and a plot of ratio against scales next
to it. --success-csv joins a study's ``scaling.csv`` (success per encoder, scales, tile px).
Weights are a file, ``auto``, or explicitly ``random`` (then the output says it is a pipeline
check: random features are not the paper's measurement).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from s2robot.cli import user_errors_exit
from s2robot.study.reconstruct import DEFAULT_RIDGE, FEATURES, ReconstructionError

RANDOM_NOTE = "random-init weights ({}): a pipeline check, NOT the paper's measurement"


def _scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(s) for s in text.replace("[", "").replace("]", "").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: scales are comma-separated integers, e.g. 1,2,3") from None
    if not scales or min(scales) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: scales are integers >= 1, e.g. 1,2,3")
    return scales


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, help="demonstration store (read only)")
    p.add_argument("--camera", default="agentview")
    for who in ("small", "large"):
        p.add_argument(f"--{who}", required=True, help=f"{who} encoder's registry name (vit_t, vit_s, mvp_b, ...)")
        p.add_argument(f"--{who}-weights", required=True, help="weights file, auto, or random (a pipeline check)")
        p.add_argument(f"--{who}-img-size", type=int, default=None, help="tile size in px (default: the registry's)")
    p.add_argument("--scales", type=_scales, nargs="+", default=[(1,), (1, 2), (1, 2, 3)], help="small's scale lists")
    p.add_argument("--large-scales", type=_scales, default=(1,), help="the target's scales (the paper: 1)")
    p.add_argument(
        "--feature",
        choices=FEATURES,
        default="cls",
        help="CLS token, mean of patch tokens, or the patch tokens with one map shared by every grid position "
        "(both encoders need the same token grid)",
    )
    p.add_argument("--stride", type=int, default=5, help="every stride-th frame of each episode")
    p.add_argument("--max-frames", type=int, default=4000)
    p.add_argument("--heldout-fraction", type=float, default=0.2, help="fraction of EPISODES held out")
    p.add_argument("--seed", type=int, default=0, help="the episode split's and the frame subset's seed")
    p.add_argument("--ridge", type=float, default=DEFAULT_RIDGE, help="x trace(X^T X)/d on standardised inputs")
    p.add_argument("--allow-degenerate", action="store_true", help="report (flagged) fits with frames <= features + 1")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="reconstruct.json", help="JSON out; the plot goes beside it (.png)")
    p.add_argument("--success-csv", default=None, help="a study's scaling.csv: success rates beside the ratios")
    p.add_argument("--no-progress", action="store_true")
    return p


def _check_weights(flag: str, weights: str) -> None:
    # Before any frame is read: a typo in a path must not cost an encoding pass, nor turn random.
    if weights not in ("auto", "random") and not Path(weights).expanduser().is_file():
        raise ReconstructionError(
            f"{flag} {weights}: no such weights file; pass an encoder weights file, auto, or explicitly "
            f"random (random features: a pipeline check, not the paper's measurement)"
        )


def success_rates(path: str) -> dict[tuple, dict]:
    """(encoder, 'scales', tile px) -> success columns of a study's scaling.csv (vision rows)."""
    if not Path(path).is_file():
        raise ReconstructionError(f"--success-csv {path}: no such file (a study's scaling.csv)")
    with open(path, newline="") as f:
        return {
            (r["encoder"], r["scales"], r["img_size"]): {
                "success_mean": float(r["success_mean"]),
                "success_ci95": [float(r["ci95_lo_pooled_wilson"]), float(r["ci95_hi_pooled_wilson"])],
                "success_weights": r["weights"],
            }
            for r in csv.DictReader(f)
            if r.get("kind") == "vision"
        }


def table(result: dict) -> str:
    t = result["target"]
    lines = [
        f"target {t['encoder']} {t['scales']} @ {t['img_size']} px ({t['feature']}, {t['dim_out']} dims): "
        f"I* = {t['I_star']:.3f} (l*/l0 = {t['l_over_l0']:.2e}, set by the ridge; {t['samples_per_feature']:.1f} "
        f"fit rows per feature){'  DEGENERATE' if t['degenerate'] else ''}"
        + (f"; its success {100 * t['success_mean']:.1f}%" if "success_mean" in t else ""),
        f"{'small encoder':<16}{'scales':<10}{'dims':>6}{'fit/dim':>9}{'l/l0':>10}{'I':>8}{'ratio':>8}{'success':>9}",
    ]
    for r in result["rows"]:
        success = f"{100 * r['success_mean']:.1f}%" if "success_mean" in r else "n/a"
        flag = "  DEGENERATE" if r["degenerate"] else ""
        lines.append(
            f"{r['encoder'] + ' @' + str(r['img_size']):<16}{'-'.join(map(str, r['scales'])):<10}{r['dim_in']:>6}"
            f"{r['samples_per_feature']:>9.1f}{r['l_over_l0']:>10.4f}{r['I']:>8.3f}{r['ratio']:>8.3f}{success:>9}{flag}"
        )
    s = result["split"]
    per_frame = s.get("rows_per_frame", 1)
    lines.append(
        f"fit {s['n_fit']} frames of {s['fit_episodes']} episodes, held out {s['n_heldout']} frames of "
        f"{s['heldout_episodes']} episodes"
        + (f"; {per_frame} rows per frame (one per grid position)" if per_frame > 1 else "")
    )
    return "\n".join(lines + [f"NOTE: {n}" for n in result["notes"]])


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _check_weights("--small-weights", args.small_weights)
    _check_weights("--large-weights", args.large_weights)
    success = success_rates(args.success_csv) if args.success_csv else {}

    from s2robot.device import resolve_device
    from s2robot.encoders.config import EncoderConfig
    from s2robot.study.reconstruct import plot_ratios, reconstruction_analysis, sample_frames

    device = resolve_device(args.device)

    def config(name, weights, img_size, scales):
        return EncoderConfig(name=name, weights=weights, scales=tuple(scales), feature=args.feature, img_size=img_size)

    # Built up front: a bad name, size or weights file fails before the frames are read.
    large = config(args.large, args.large_weights, args.large_img_size, args.large_scales).build(device)
    small = [config(args.small, args.small_weights, args.small_img_size, s).build(device) for s in args.scales]
    frames, episode_of = sample_frames(
        args.store, args.camera, stride=args.stride, max_frames=args.max_frames, seed=args.seed
    )
    result = reconstruction_analysis(
        frames,
        episode_of,
        small,
        large,
        heldout_fraction=args.heldout_fraction,
        seed=args.seed,
        ridge=args.ridge,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        allow_degenerate=args.allow_degenerate,
    )
    notes = [RANDOM_NOTE.format(w) for w in ("small", "large") if getattr(args, f"{w}_weights") == "random"]
    for r in [result["target"], *result["rows"]]:
        r.update(success.get((r["encoder"], "-".join(map(str, r["scales"])), str(r["img_size"])), {}))
        if r["samples_per_feature"] < 5:
            notes.append(f"{r['encoder']} {r['scales']}: {r['samples_per_feature']} fit rows per feature (< 5)")
    if any(r["degenerate"] for r in [result["target"], *result["rows"]]):
        notes.append("DEGENERATE fits (fit frames <= features + 1): their l is not a reconstruction measure")
    if args.success_csv and not any("success_mean" in r for r in result["rows"]):
        notes.append(f"{args.success_csv}: no row matches the small encoder's (name, scales, tile px)")
    result.update(
        store=str(args.store),
        camera=args.camera,
        stride=args.stride,
        frame_size=int(frames.shape[1]),
        random_weights=[w for w in ("small", "large") if getattr(args, f"{w}_weights") == "random"],
        notes=notes,
    )
    text = json.dumps(result)
    print(text)
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    plot_ratios([result], out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
