"""Print a demonstration store's summary: episodes, steps, keys, shapes, dtypes, bytes, env config.

    s2robot-inspect data/cube_pick_224.zarr [--verify]

--verify reads every chunk of the store and prints one line per damaged run of chunks (missing
or corrupt), exiting 1 if there is any; without it nothing beyond the metadata is read.
"""

import argparse
import json
import os
import sys

import numpy as np

from s2robot.cli import user_errors_exit
from s2robot.data.replay_buffer import ReplayBuffer


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


@user_errors_exit
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--verify", action="store_true", help="check every chunk; exit 1 if any is damaged")
    args = parser.parse_args()
    buffer = ReplayBuffer.open(args.path)
    lengths = buffer.episode_lengths
    print(f"store:    {os.path.abspath(args.path)}")
    print(
        f"episodes: {buffer.n_episodes} (success {int(buffer.episode_success.sum())}), "
        f"skipped seeds: {len(buffer.skipped_seeds)}"
    )
    if buffer.n_episodes:
        seeds = buffer.episode_seeds
        print(
            f"steps:    {buffer.n_steps} (episode length min {lengths.min()} / mean {lengths.mean():.1f} "
            f"/ max {lengths.max()}); seeds {seeds.min()}..{seeds.max()}"
        )
    print(f"on disk:  {buffer.nbytes_on_disk() / 2**20:.2f} MiB")
    print(f"{'key':<20}{'shape':<18}{'dtype':<10}{'bytes on disk':>14}{'bytes/step':>12}")
    for key in buffer.keys:
        nbytes = _dir_bytes(os.path.join(args.path, "data", key))
        per_step = nbytes / buffer.n_steps if buffer.n_steps else 0
        print(
            f"{key:<20}{str(buffer.shape(key)):<18}{str(np.dtype(buffer.dtype(key))):<10}{nbytes:>14}{per_step:>12.0f}"
        )
    attrs = buffer.attrs
    for name in ("env", "expert", "collection", "versions"):
        if name in attrs:
            print(f"{name}: {json.dumps(attrs[name])}")
    print(f"layout: {attrs['layout']} v{attrs['layout_version']}")
    if args.verify:
        problems = buffer.verify()
        for problem in problems:
            print(f"damaged: {problem}")
        if problems:
            print(
                f"verify: {len(problems)} damaged run(s) of chunks; the episodes named hold lost or corrupt "
                f"data: collect the store again"
            )
            sys.exit(1)
        print("verify: every chunk of every committed step is present and decodes")


if __name__ == "__main__":
    main()
