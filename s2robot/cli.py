"""How command-line entries report the user's mistakes: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from s2robot.encoders.registry import UnknownEncoderError
from s2robot.errors import UserError
from s2robot.s2 import S2Error

# S2Error and UnknownEncoderError come from modules that import nothing of the project's
# (s2.py and the registry stand alone), so they are not UserError subclasses.
USER_ERRORS = (UserError, S2Error, UnknownEncoderError)


def report_user_error(e: BaseException, name: str = "s2robot") -> None:
    logging.getLogger(name).debug("user error", exc_info=e)
    print(f"error: {e}", file=sys.stderr)


def user_errors_exit(fn: Callable) -> Callable:
    """Wrap a command's main: the project's user errors become one ``error: ...`` line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            report_user_error(e, getattr(fn, "__module__", "s2robot"))
            sys.exit(2)

    return wrapper


# The Hydra configuration tree: the repository's configs/ beside this package in a checkout, and
# the same folder installed as package data (a top-level ``configs`` package) beside it in a wheel.
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

# name -> (module with main(), what it does). The installed commands are s2robot-<name>.
COMMANDS = {
    "collect": ("s2robot.commands.collect_demos", "collect scripted-expert demonstrations into a Zarr store"),
    "inspect": ("s2robot.commands.inspect_store", "summarise (and --verify) a demonstration store"),
    "export": ("s2robot.commands.export_episode", "write one stored episode as an mp4"),
    "pretrain": ("s2robot.commands.pretrain_mae", "MAE pre-training of an encoder on robot frames"),
    "probe": ("s2robot.commands.probe_encoder", "linear probe: how well frozen features locate the cube"),
    "train": ("s2robot.commands.train_policy", "train a BC head on cached frozen S² features (train_policy.py)"),
    "eval": ("s2robot.commands.eval_policy", "roll a checkpoint out on the evaluation seeds, with videos"),
    "study": ("s2robot.commands.scaling_study", "the scaling study: encoders x S² scales x seeds, one report"),
    "serve": ("s2robot.commands.serve_policy", "serve a checkpoint to robots over WebSocket + MessagePack"),
}
