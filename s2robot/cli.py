"""How command-line entries run and report the user's mistakes: one line on stderr, exit code 2,
no traceback. ``hydra_command`` makes a Hydra entry of a task function: schemas registered, a
composition error (unknown key, wrong type, missing group option) reported in one line, range
checks before any work, and no empty run directory left behind by a refused run.

Imports neither torch nor the simulator: the serving entry checks its bind address first.
Just over 250 lines: the one place where every command's errors become one line.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from s2robot.errors import UserError

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
    "record": ("s2robot.commands.record_demos", "record demonstrations from a robot adapter and a teleop device"),
    "dagger": (
        "s2robot.commands.dagger",
        "DAgger: roll the policy out, relabel with the expert, add to the store, retrain",
    ),
    "import": ("s2robot.commands.import_dataset", "import LeRobot or robomimic demonstrations into a store"),
    "export-lerobot": ("s2robot.commands.export_lerobot", "export a store as a LeRobotDataset v3.0 to share it"),
    "view": ("s2robot.commands.view_episode", "one episode's cameras, proprio and actions as mp4, html or png"),
    "reconstruct": (
        "s2robot.commands.reconstruct_features",
        "the paper's reconstruction analysis: a larger encoder's features from a smaller one's S² features",
    ),
}


# -- which errors are the user's ---------------------------------------------------------------


def is_user_error(e: BaseException) -> bool:
    """UserError, or S2Error / UnknownEncoderError: those come from modules that import nothing of
    the project's (s2.py, the encoder registry), so they are not UserError subclasses. Their modules
    import torch; an error of theirs can only exist once they are imported, so look them up there."""
    if isinstance(e, UserError):
        return True
    s2, registry = sys.modules.get("s2robot.s2"), sys.modules.get("s2robot.encoders.registry")
    return bool((s2 and isinstance(e, s2.S2Error)) or (registry and isinstance(e, registry.UnknownEncoderError)))


def __getattr__(name: str):
    # USER_ERRORS as a tuple for `except USER_ERRORS`, built on first use so this module stays light
    if name == "USER_ERRORS":
        from s2robot.encoders.registry import UnknownEncoderError
        from s2robot.s2 import S2Error

        return (UserError, S2Error, UnknownEncoderError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def report_user_error(e: BaseException, name: str = "s2robot") -> None:
    logging.getLogger(name).debug("user error", exc_info=e)
    print(f"error: {one_line(str(e))}", file=sys.stderr)


def one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", "; ", text.strip())


def user_errors_exit(fn: Callable) -> Callable:
    """Wrap a command's main: the project's user errors become one ``error: ...`` line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not is_user_error(e):
                raise
            report_user_error(e, getattr(fn, "__module__", "s2robot"))
            sys.exit(2)

    return wrapper


# -- Hydra entries ------------------------------------------------------------------------------

_FULL_ERROR = "HYDRA_FULL_ERROR"
_full_error_is_ours = False  # HYDRA_FULL_ERROR was set by hydra_command's main, not by the user


def hydra_command(config_name: str, validate: Callable | None = None) -> Callable[[Callable], Callable]:
    """Decorate ``task(cfg)`` into a command-line ``main()`` composing ``configs/<config_name>.yaml``.

    ``validate(cfg)`` runs right after composition (default: the schema's range checks); a user
    error from it or from the task prints one line, removes a run directory that holds nothing
    but Hydra's own files, and exits 2."""
    from s2robot.config import validate as validate_named

    check = validate or functools.partial(validate_named, config_name)

    def decorate(task: Callable) -> Callable:
        import hydra

        @functools.wraps(task)
        def run_task(cfg):
            # From here on a crash is reported by Hydra as usual (its trimmed traceback).
            ours = _full_error_is_ours
            if ours:
                os.environ.pop(_FULL_ERROR, None)
            try:
                check(cfg)
                result = task(cfg)
            except Exception as e:
                if not is_user_error(e):
                    raise
                report_user_error(e, task.__module__)
                remove_refused_run_dir()
                sys.exit(2)
            if ours:  # a multirun composes the next job after this one: catch its errors too
                os.environ[_FULL_ERROR] = "1"
            return result

        hydra_main = hydra.main(config_path=CONFIG_DIR, config_name=config_name, version_base="1.3")(run_task)

        @functools.wraps(task)
        def main() -> None:
            from s2robot.config import register_configs

            global _full_error_is_ours

            register_configs()
            # Hydra prints a composition error over several lines (with a hint to append a key
            # with +, which the schema would refuse); with HYDRA_FULL_ERROR=1 it raises it to us.
            # Set by the user, HYDRA_FULL_ERROR keeps its meaning: full tracebacks for everything.
            _full_error_is_ours = _FULL_ERROR not in os.environ
            if _full_error_is_ours:
                os.environ[_FULL_ERROR] = "1"
            try:
                hydra_main()
            except Exception as e:
                if not _full_error_is_ours or not is_composition_error(e):
                    raise
                print(f"error: {composition_error_line(e)}", file=sys.stderr)
                sys.exit(2)
            finally:
                if _full_error_is_ours:
                    os.environ.pop(_FULL_ERROR, None)
                    _full_error_is_ours = False

        return main

    return decorate


def is_composition_error(e: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(e, (HydraException, OmegaConfBaseException)) or is_user_error(e)


def composition_error_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line that names the key."""
    from omegaconf.errors import OmegaConfBaseException

    from s2robot.config.checks import did_you_mean, schema_fields

    text = str(e)
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    key = getattr(cause, "full_key", None)
    msg = str(getattr(cause, "msg", None) or cause).splitlines()[0]
    # the override as typed (key=value), from "Error merging override k=v" / "... use +k=v"
    typed = re.search(r"(?:override |use \+)(\S+=\S*)", text)
    what = typed.group(1) if typed and key and typed.group(1).startswith(f"{key}=") else key
    if key and isinstance(cause, (AttributeError, KeyError)):  # ConfigAttributeError / ConfigKeyError
        parent = getattr(cause, "parent_node", None)
        fields = [str(f) for f in (schema_fields(parent) or parent.keys())] if parent is not None else []
        where = key.rpartition(".")[0] or "the top level"
        known = f"; known keys: {', '.join(fields)}" if fields else ""
        return f"{what}: no such key in {where}{did_you_mean(getattr(cause, 'key', key), fields)}{known}"
    if key:
        return f"{key}=null: a value is required here" if "is not Optional" in msg else f"{what}: {msg}"
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    options = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
    if missing and options:
        group, option = missing.groups()
        hint = did_you_mean(option, options)
        return f"{group}={option}: no such option in {group}{hint}; options: {', '.join(options)}"
    lines = []
    for line in text.splitlines():
        if line.startswith(("Config search path", "To append to your config")):
            break
        if line.strip():
            lines.append(line.strip())
    return "; ".join(lines)


def remove_refused_run_dir() -> None:
    """Remove the run directory Hydra made for a refused run, if it holds only Hydra's files
    (``.hydra/`` and the job's log); anything else in it, or the launch directory itself, stays."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir).resolve()
    cwd = Path.cwd().resolve()
    if run_dir == cwd or run_dir in cwd.parents or not run_dir.is_dir():
        return
    log_name = f"{hc.job.name}.log"
    hydra_files = {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", log_name}
    present = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if not p.is_dir()}
    dirs = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_dir()}
    if not present <= hydra_files or not dirs <= {".hydra"}:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):  # Hydra's file handler holds the log open and would reopen it
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).resolve().parent == run_dir:
            root.removeHandler(handler)
            handler.close()
    for rel in present:
        (run_dir / rel).unlink()
    for rel in dirs:
        (run_dir / rel).rmdir()
    run_dir.rmdir()
    # Hydra's default dirs nest (outputs/<date>/<time>): parents left empty under the launch dir go
    # too, and a sweep dir that holds only Hydra's multirun.yaml (no other job ran) with them
    sweep_yaml = Path(hc.sweep.dir).resolve() / "multirun.yaml" if str(hc.mode).endswith("MULTIRUN") else None
    for parent in run_dir.parents:
        if parent == cwd or cwd not in parent.parents:
            break
        if (
            sweep_yaml is not None
            and sweep_yaml.parent == parent
            and [p.name for p in parent.iterdir()] == [sweep_yaml.name]
        ):
            sweep_yaml.unlink()
        if any(parent.iterdir()):
            break
        parent.rmdir()
