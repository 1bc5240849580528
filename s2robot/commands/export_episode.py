"""Write one stored episode's frames as an mp4 (H.264 via imageio-ffmpeg).

s2robot-export data/cube_pick_224.zarr --episode 0 --out ep0.mp4 [--key agentview]
"""

import argparse
import os

from s2robot.cli import user_errors_exit
from s2robot.data.replay_buffer import ReplayBuffer
from s2robot.errors import UserError
from s2robot.fileio import atomic_path

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")  # containers that take H.264; ffmpeg picks one by suffix


@user_errors_exit
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--key", default="agentview")
    parser.add_argument("--fps", type=int, default=20)
    args = parser.parse_args()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.splitext(args.out)[1].lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--out {args.out}: name the video file with one of {', '.join(VIDEO_SUFFIXES)}")
    if not os.path.isdir(out_dir):
        raise UserError(f"--out {args.out}: folder {out_dir} does not exist; create it or choose another --out")
    buffer = ReplayBuffer.open(args.path, required_keys=(args.key,))
    if len(buffer.shape(args.key)) != 3:
        raise UserError(
            f"{args.path}: key {args.key!r} holds {buffer.shape(args.key)} per step, not frames; "
            f"choose an image key with --key"
        )
    if not -buffer.n_episodes <= args.episode < buffer.n_episodes:
        raise UserError(
            f"{args.path}: no episode {args.episode}, the store has {buffer.n_episodes} "
            f"(--episode 0..{buffer.n_episodes - 1}, or negative from the end)"
        )
    frames = buffer.get_episode(args.episode, keys=(args.key,))[args.key]
    import imageio.v2 as imageio  # the ffmpeg plugin loads slowly: not for a mistyped argument

    # written aside and renamed: a failed export leaves an older file of that name intact
    with atomic_path(args.out) as tmp:
        # macro_block_size=1: H.264 otherwise rescales frames whose size is not a multiple of 16
        imageio.mimwrite(tmp, frames, fps=args.fps, codec="libx264", macro_block_size=1)
    print(f"wrote {args.out}: {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]}")


if __name__ == "__main__":
    main()
