"""Record demonstrations from a robot adapter driven by a teleoperation device, into a Zarr store.

    s2robot-record --robot my_arm:PandaAdapter --device spacemouse --store data/real.zarr --episodes 20
    s2robot-record --robot sim --device keyboard --store data/sim_teleop.zarr --episodes 5
    s2robot-record --robot sim --device expert --rate 0 --store data/sim_expert.zarr --episodes 3
    s2robot-record --import recordings/ --store data/rollouts.zarr   # what `s2robot-robot --record` wrote

--robot is `sim` or `module:Class`, the same adapter `s2robot-robot` runs, built here as
``Class(None)`` (no policy yet); it must have ``description()`` (docs/DEPLOYMENT.md). --device is
keyboard, spacemouse, expert (the simulator's scripted expert), replay:<actions.npy> or
module:Class. Every frame is stored at the camera's native resolution with proprio, the applied
action and a timestamp; the robot's description goes into the store's attrs. Each kept episode is
one atomic commit: a crash or a mistake loses only the episode in progress.
"""

from __future__ import annotations

import argparse
import json
import logging

from s2robot.cli import user_errors_exit
from s2robot.errors import UserError


class RobotError(UserError):
    """The robot adapter cannot be loaded or does not describe itself."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="s2robot-record", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--store", required=True, help="the Zarr store to record into (made if missing)")
    p.add_argument("--robot", default="sim", help="'sim' or module:Class of a Robot adapter")
    p.add_argument("--device", default="keyboard", help="keyboard, spacemouse, expert, replay:<file.npy>, module:Class")
    p.add_argument("--episodes", type=int, default=10, help="episodes to keep")
    p.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: until the robot is done)")
    p.add_argument("--rate", type=float, default=None, help="Hz (default: the robot's control rate; 0 = unpaced)")
    p.add_argument("--seed-start", type=int, default=0, help="sim: the first episode's seed")
    p.add_argument("--cameras", default=None, help="sim: comma-separated cameras (default: the env config's)")
    p.add_argument("--image-size", type=int, default=None, help="sim: rendered frame size")
    p.add_argument("--horizon", type=int, default=None, help="sim: episode length in steps")
    p.add_argument("--import", dest="spool", default=None, metavar="DIR", help="import a --record folder instead")
    args = p.parse_args(argv)
    if args.episodes < 1 or (args.max_steps is not None and args.max_steps < 1):
        p.error("--episodes and --max-steps must be >= 1")
    if args.rate is not None and args.rate < 0:
        p.error("--rate must be >= 0")
    return args


def make_recording_robot(args: argparse.Namespace):
    if args.robot == "sim":
        from envs.sim_robot import sim_robot_from_env

        overrides = {"cameras": args.cameras.split(",")} if args.cameras else {}
        overrides |= {"image_size": args.image_size} if args.image_size else {}
        overrides |= {"horizon": args.horizon} if args.horizon else {}
        return sim_robot_from_env(**overrides)
    from s2robot_client.runtime import UsageError, robot_factory

    try:
        return robot_factory(args.robot)(None, None)
    except UsageError as e:
        raise RobotError(str(e)) from None


def describe(robot) -> object:
    from s2robot.robot_description import RobotDescription

    fn = getattr(robot, "description", None)
    if not callable(fn):
        raise RobotError(
            f"--robot {type(robot).__name__} has no description() method; recording needs the robot's action "
            f"space, cameras and proprio (docs/DEPLOYMENT.md, 'Write the adapter')"
        )
    desc = fn()
    return desc if isinstance(desc, RobotDescription) else RobotDescription.from_dict(desc)


def run(args: argparse.Namespace) -> dict:
    if args.spool:
        from s2robot.recording.spool import import_spool

        return import_spool(args.spool, args.store)
    from s2robot.recording.devices import make_device
    from s2robot.recording.session import open_store, record_episodes, versions

    device = make_device(args.device)
    robot = make_recording_robot(args)
    try:
        description = describe(robot)
        device.start(robot, description)  # a device that is not there fails before the store is touched
        attrs = {"recording": {"robot": args.robot, "device": args.device}, "versions": versions()}
        if hasattr(robot, "env_cfg"):  # the simulator: its env config makes rollout evaluation possible
            from s2robot.data.collect import env_config_dict

            attrs["env"] = env_config_dict(robot.env_cfg)
        store = open_store(args.store, description, attrs)
        rate = description.control_hz if args.rate is None else (args.rate or None)
        counts = record_episodes(
            robot, device, store, description, args.episodes, args.max_steps, rate, args.seed_start
        )
        return {**counts, "store": store.path, "episodes_in_store": store.n_episodes}
    finally:
        device.close()  # idempotent: record_episodes closes it too
        if callable(getattr(robot, "close", None)):
            robot.close()


@user_errors_exit
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
