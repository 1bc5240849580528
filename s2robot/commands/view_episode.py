"""Look at one episode of a store: every camera side by side, proprioception and actions plotted
over time below them, a cursor at the current step.

s2robot-view data/cube_pick_224.zarr --episode 0 --out ep0.mp4     # one picture per step
s2robot-view data/cube_pick_224.zarr --episode 0 --out ep0.html    # self-contained page, a slider
s2robot-view data/cube_pick_224.zarr --episode 0 --out ep0.png --step 20
"""

import argparse

from s2robot.cli import user_errors_exit


@user_errors_exit
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--out", required=True, help="a .mp4, .html or .png file")
    parser.add_argument("--step", type=int, default=0, help="the step a .png shows")
    parser.add_argument("--fps", type=float, help="mp4 frame rate (default: the robot's control rate)")
    args = parser.parse_args()

    from s2robot.data.viewer import write_view

    summary = write_view(args.store, args.episode, args.out, step=args.step, fps=args.fps)
    print(f"wrote {args.out}: episode {args.episode}, {summary['steps']} steps")


if __name__ == "__main__":
    main()
