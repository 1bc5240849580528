"""Export a demonstration store as a LeRobotDataset v3.0 folder (an mp4 per camera, state and
action in parquet, meta/info.json, stats.json, tasks and episodes tables), to share it.

s2robot-export-lerobot data/cube_pick_224.zarr exports/cube_pick_lerobot [--task "pick up the cube"] [--crf 10]

It imports back with s2robot-import (frames within H.264's error, everything else exact).
"""

import argparse

from s2robot.cli import user_errors_exit


@user_errors_exit
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("out", help="the dataset folder to create (must not exist)")
    parser.add_argument("--task", default="pick up the cube", help="the task text every episode gets")
    parser.add_argument("--crf", type=int, default=10, help="H.264 quality: 0 best, 23 ffmpeg's default")
    args = parser.parse_args()

    from s2robot.data.formats import FormatError
    from s2robot.data.formats.lerobot_export import export_lerobot

    if not 0 <= args.crf <= 51:
        raise FormatError(f"--crf {args.crf}: H.264 takes 0..51 (lower is better; 10 keeps frames within ~1.5/255)")
    summary = export_lerobot(args.store, args.out, task=args.task, crf=args.crf)
    print(
        f"wrote {args.out}: LeRobot v3.0, {summary['episodes']} episodes, {summary['frames']} frames at "
        f"{summary['fps']} fps, cameras {summary['cameras']}"
    )


if __name__ == "__main__":
    main()
