"""Drive a robot from the action server: the fixed-rate control loop with clipping, a watchdog, a
clean stop on Ctrl-C, and reconnection while holding the arm when the server goes away.

    s2robot-robot --server ws://10.0.0.5:8000 --robot my_arm:PandaAdapter --max-steps 600
    s2robot-robot --server ws://127.0.0.1:8000 --robot sim --episodes 3   # in this repo's environment

--robot is `module:Class`, a real arm's adapter built as ``Class(metadata)`` (see
docs/DEPLOYMENT.md), or `sim`: the cube-picking simulation (needs this repo's environment; only
then is it imported). The token comes from --token or S2ROBOT_SERVE_TOKEN. Prints one JSON line
per episode.

An adapter with ``description()`` is checked against the policy before the arm moves: every
camera the policy was trained on at its resolution, the same action space (else exit 2).
--record DIR writes every episode (frames, proprio, applied actions, timestamps, whether the
watchdog held, the adapter's ``success``) into a recording folder (s2robot_client.recording);
`s2robot-record --import DIR --store STORE` turns it into a demonstration store. An episode cut
short (Ctrl-C, a lost server, a frame that does not fit the description) is not written.

Exit codes: 0 done; 1 the server was lost and did not come back within --reconnect-timeout (the
arm was stopped, no further episode was started); 2 a mistake to fix (arguments, adapter, server
address or token); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

from s2robot_client.broker import ActionChunkBroker
from s2robot_client.client import ConnectError, PolicyClient
from s2robot_client.recording import (
    EpisodeBuffer,
    RecordingError,
    SpoolWriter,
    check_robot_for_policy,
    robot_description,
)
from s2robot_client.robot import reconnect_within, run_control_loop

EVAL_SEED_START = 100_000  # envs/seeds.py; repeated so that a real-arm run needs no s2robot import
EXIT_LOST = 1
EXIT_USAGE = 2

log = logging.getLogger("s2robot_client.runtime")


class UsageError(Exception):
    """A mistake in how the command was called: printed as one line, exit 2."""


def robot_factory(spec: str):
    """-> ``make(metadata, horizon)`` for ``--robot``; resolved before connecting, so a misspelt
    adapter fails at once rather than after the server answered."""
    if spec == "sim":

        def make_sim(metadata: dict, horizon: int | None):
            from envs.sim_robot import sim_robot_for  # the simulator only exists in the repo's environment

            return sim_robot_for(metadata, **({"horizon": horizon} if horizon else {}))

        return make_sim
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise UsageError(f"--robot must be 'sim' or 'module:Class' (a Robot adapter), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # an adapter beside where the command runs, as `python -m` finds it
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise UsageError(
            f"--robot {spec}: cannot import module {module!r} ({e}); is it installed, in the "
            f"current directory, or on PYTHONPATH?"
        ) from None
    cls = getattr(mod, name, None)
    if not callable(cls):
        raise UsageError(f"--robot {spec}: module {module!r} has no class {name!r}")
    return lambda metadata, horizon: cls(metadata)


def make_robot(spec: str, metadata: dict, horizon: int | None = None):
    """The robot for ``--robot`` (``sim`` or ``module:Class``) built from the server's metadata."""
    return robot_factory(spec)(metadata, horizon)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="s2robot-robot", description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="ws://127.0.0.1:8000")
    p.add_argument("--token", default=os.environ.get("S2ROBOT_SERVE_TOKEN"))
    p.add_argument("--robot", default="sim", help="'sim' or module:Class of a Robot adapter")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seed-start", type=int, default=EVAL_SEED_START, help="sim: episode i uses this + i")
    p.add_argument("--max-steps", type=int, default=None, help="ticks per episode (default: until the robot is done)")
    p.add_argument("--horizon", type=int, default=None, help="sim: episode length in steps")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="control rate in Hz (default: the policy's control_freq; 0 = as fast as the robot steps)",
    )
    p.add_argument("--watchdog", type=float, default=0.2, help="seconds to wait for an action before holding the arm")
    p.add_argument("--per-step", action="store_true", help="one request per tick instead of one per action chunk")
    p.add_argument("--retries", type=int, default=5, help="connection attempts at start beyond the first")
    p.add_argument(
        "--reconnect-timeout",
        type=float,
        default=10.0,
        help="seconds to keep holding the arm and reconnecting after the server is lost before stopping (exit 1)",
    )
    p.add_argument("--record", default=None, metavar="DIR", help="write every episode into this recording folder")
    args = p.parse_args(argv)
    for name in ("episodes", "retries"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must be >= 0")
    if args.watchdog <= 0 or args.reconnect_timeout < 0 or (args.rate is not None and args.rate < 0):
        p.error("--watchdog must be > 0, --reconnect-timeout and --rate >= 0")
    return args


def describe_robot(robot: Any, metadata: dict, recording: bool) -> dict | None:
    """The robot's description (checked against the policy) or, without one, the policy's."""
    desc = robot_description(robot)
    if desc is not None:
        check_robot_for_policy(desc, metadata)
        return desc
    if metadata.get("robot"):
        # The training store's robot, narrowed to the cameras this policy asks the adapter for.
        desc = dict(metadata["robot"])
        desc["cameras"] = {c: hw for c, hw in desc.get("cameras", {}).items() if c in metadata.get("camera_keys", ())}
        return desc
    if recording:
        raise RecordingError("--record needs the robot's description: give the adapter a description() method")
    return None


def run_episodes(args: argparse.Namespace, client: PolicyClient, robot: Any) -> int:
    md = client.metadata
    desc = describe_robot(robot, md, recording=bool(args.record))
    spool = SpoolWriter(args.record, desc) if args.record else None
    broker = ActionChunkBroker(client, use_chunks=not args.per_step)
    rate = md["control_freq"] if args.rate is None else (args.rate or None)
    connected = True
    for i in range(args.episodes):
        seed = args.seed_start + i
        if not connected:
            # The last episode ended while reconnecting: get the server back before the arm moves again.
            why = reconnect_within(broker.reconnect, args.reconnect_timeout)
            if why:
                print(
                    f"error: lost the server {args.server} between episodes {i - 1} and {i}: {why}; the arm "
                    f"was stopped and no further episode was started",
                    file=sys.stderr,
                )
                return EXIT_LOST
        if hasattr(robot, "reset"):
            robot.reset(seed)
        broker.reset()
        episode = EpisodeBuffer(desc) if spool else None
        stats = run_control_loop(
            robot,
            broker.act,
            md["action_low"],
            md["action_high"],
            rate_hz=rate,
            watchdog_s=args.watchdog,
            max_steps=args.max_steps,
            should_stop=lambda: bool(getattr(robot, "done", False)),
            reconnect=broker.reconnect,
            reconnect_s=args.reconnect_timeout,
            description=desc,
            on_step=episode.add_step if episode is not None else None,
        )
        success = getattr(robot, "success", None)
        if spool is not None and not stats.lost:
            written = spool.commit(episode, success, seed=seed, source="rollout", policy=md.get("checkpoint"))
            log.info("recorded episode %d (%d steps) to %s", i, len(episode), written)
        print(
            json.dumps(
                {
                    "episode": i,
                    "seed": seed,
                    "success": success,
                    "steps": stats.steps,
                    "fresh": stats.fresh,
                    "held": stats.held,
                    "server_errors": stats.server_errors,
                    "bad_replies": stats.bad_replies,
                    "reconnects": stats.reconnects,
                    "overruns": stats.overruns,
                    "connected": stats.connected,
                }
            ),
            flush=True,
        )
        connected = stats.connected
        if stats.lost:
            # The arm was stopped; starting another episode would move it (reset) with no policy behind it.
            print(
                f"error: lost the server {args.server} in episode {i} after {stats.steps} steps: {stats.lost}; "
                f"the arm was stopped and no further episode was started",
                file=sys.stderr,
            )
            return EXIT_LOST
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        make = robot_factory(args.robot)
        client = PolicyClient(args.server, token=args.token, retries=args.retries)
    except (UsageError, ConnectError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    robot = None
    if args.record:
        log.info("recording episodes to %s", args.record)
    try:
        md = client.metadata
        log.info(
            "policy %s (encoder %s, scales %s), %s Hz, chunks of %s",
            md.get("checkpoint"),
            md.get("encoder"),
            md.get("scales"),
            md.get("control_freq"),
            md.get("n_action_steps"),
        )
        robot = make(md, args.horizon)
        return run_episodes(args, client, robot)
    except RecordingError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.info("stopped by Ctrl-C; the arm was told to stop")
        return 130
    finally:
        client.close()
        if robot is not None and hasattr(robot, "close"):
            robot.close()


if __name__ == "__main__":
    sys.exit(main())
