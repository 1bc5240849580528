"""Why did a policy fail? Classify every episode of one or more eval.json files (missed position,
wrong yaw, grasp slip, pushed, wandering; s2robot/rollout/failures.py says how) and print a table
of counts and shares. Several files (e.g. one per training seed) are pooled.

    python scripts/classify_failures.py runs/my_run/eval/eval.json [more eval.json ...] [--out failures.json]
    python scripts/classify_failures.py runs/my_run            # a run directory: its eval/eval.json

Writes the counts, the shares and each episode's category to --out (default: failures.json beside
the first eval.json). Needs no torch: the measures are in the records, the thresholds in failures.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2robot.cli import user_errors_exit
from s2robot.errors import UserError
from s2robot.fileio import atomic_write
from s2robot.rollout.failures import classify, summarize, table_lines


def eval_json_path(arg: str) -> Path:
    path = Path(arg)
    if path.is_dir():
        path = path / "eval" / "eval.json" if (path / "eval" / "eval.json").is_file() else path / "eval.json"
    if not path.is_file():
        raise UserError(f"no eval.json at {path}; pass an eval.json or a run directory evaluated with s2robot-eval")
    return path


def load_episodes(path: Path) -> list[dict]:
    try:
        result = json.loads(path.read_text())
        episodes = result["episodes"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not an eval.json of s2robot-eval ({type(e).__name__}: {e})") from e
    return [{**e, "eval_json": str(path)} for e in episodes]


def classify_files(paths: list[Path]) -> dict:
    episodes = [e for p in paths for e in load_episodes(p)]
    if not episodes:
        raise UserError(f"no episodes in {', '.join(map(str, paths))}")
    summary = summarize(episodes)
    summary["eval_json"] = [str(p) for p in paths]
    summary["episodes"] = [{"eval_json": e["eval_json"], "seed": e["seed"], "outcome": classify(e)} for e in episodes]
    return summary


@user_errors_exit
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("eval_json", nargs="+", help="eval.json files or run directories (pooled)")
    p.add_argument("--out", help="JSON output (default: failures.json beside the first eval.json)")
    args = p.parse_args(argv)
    paths = [eval_json_path(a) for a in args.eval_json]
    summary = classify_files(paths)
    out = Path(args.out) if args.out else paths[0].parent / "failures.json"
    with atomic_write(out, "w") as f:
        f.write(json.dumps(summary, indent=2))
    print("\n".join(table_lines(summary)))
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
