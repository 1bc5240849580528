"""Write one stored episode's frames as an mp4 (H.264 via imageio-ffmpeg).

    s2robot-export data/cube_pick_224.zarr --episode 0 --out ep0.mp4 [--key agentview]
"""

import argparse
import sys

import imageio.v2 as imageio

from s2robot.data.replay_buffer import ReplayBuffer, StoreError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--episode", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--key", default="agentview")
    parser.add_argument("--fps", type=int, default=20)
    args = parser.parse_args()
    try:
        buffer = ReplayBuffer.open(args.path, required_keys=(args.key,))
        frames = buffer.get_episode(args.episode, keys=(args.key,))[args.key]
    except (StoreError, IndexError) as e:
        sys.exit(f"error: {e}")
    # macro_block_size=1: H.264 otherwise rescales frames whose size is not a multiple of 16
    imageio.mimwrite(args.out, frames, fps=args.fps, codec="libx264", macro_block_size=1)
    print(f"wrote {args.out}: {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]}")


if __name__ == "__main__":
    main()
