"""Drive a robot from the action server: the fixed-rate control loop with clipping, a watchdog
and a clean stop on Ctrl-C (all in `s2robot_client`).

    python scripts/run_robot.py --server ws://127.0.0.1:8000 --robot sim --episodes 3
    python scripts/run_robot.py --server ws://10.0.0.5:8000 --robot my_arm:PandaAdapter --max-steps 600

--robot sim: the cube-picking simulation (needs this repo's environment). Anything else is
`module:Class`, a real arm's adapter built as ``Class(metadata)`` (see docs/DEPLOYMENT.md); the
loop then needs only the s2robot-client package. The token comes from --token or
S2ROBOT_SERVE_TOKEN. Prints one JSON line per episode.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from s2robot_client import ActionChunkBroker, ConnectError, PolicyClient, run_control_loop

EVAL_SEED_START = 100_000  # envs/seeds.py; repeated so that a real-arm run needs no s2robot import


def make_robot(spec: str, metadata: dict, horizon: int | None):
    if spec == "sim":
        from envs.sim_robot import sim_robot_for

        return sim_robot_for(metadata, **({"horizon": horizon} if horizon else {}))
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"error: --robot must be 'sim' or 'module:Class', got {spec!r}")
    return getattr(importlib.import_module(module), name)(metadata)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="ws://127.0.0.1:8000")
    p.add_argument("--token", default=os.environ.get("S2ROBOT_SERVE_TOKEN"))
    p.add_argument("--robot", default="sim", help="'sim' or module:Class of a Robot adapter")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seed-start", type=int, default=EVAL_SEED_START, help="sim: episode i uses this + i")
    p.add_argument("--max-steps", type=int, default=None, help="ticks per episode (default: until the robot is done)")
    p.add_argument("--horizon", type=int, default=None, help="sim: episode length in steps")
    p.add_argument("--rate", type=float, default=None,
                   help="control rate in Hz (default: the policy's control_freq; 0 = as fast as the robot steps)")
    p.add_argument("--watchdog", type=float, default=0.2, help="seconds to wait for an action before holding the arm")
    p.add_argument("--per-step", action="store_true", help="one request per tick instead of one per action chunk")
    p.add_argument("--retries", type=int, default=5)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        client = PolicyClient(args.server, token=args.token, retries=args.retries)
    except ConnectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = client.metadata
    logging.info("policy %s (encoder %s, scales %s), %s Hz, chunks of %s", md["checkpoint"], md["encoder"],
                 md["scales"], md["control_freq"], md["n_action_steps"])
    broker = ActionChunkBroker(client, use_chunks=not args.per_step)
    rate = md["control_freq"] if args.rate is None else (args.rate or None)
    robot = make_robot(args.robot, md, args.horizon)
    try:
        for i in range(args.episodes):
            seed = args.seed_start + i
            if hasattr(robot, "reset"):
                robot.reset(seed)
            broker.reset()
            stats = run_control_loop(robot, broker.act, md["action_low"], md["action_high"], rate_hz=rate,
                                     watchdog_s=args.watchdog, max_steps=args.max_steps,
                                     should_stop=lambda: bool(getattr(robot, "done", False)))
            print(json.dumps({"episode": i, "seed": seed, "success": getattr(robot, "success", None),
                              "steps": stats.steps, "fresh": stats.fresh, "held": stats.held,
                              "server_errors": stats.server_errors, "overruns": stats.overruns}), flush=True)
    except KeyboardInterrupt:
        logging.info("stopped by Ctrl-C; the arm was told to stop")
        return 130
    finally:
        client.close()
        if hasattr(robot, "close"):
            robot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
