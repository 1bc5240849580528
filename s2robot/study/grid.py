"""Running the scaling study's grid (planned by ``study.plan``): decide which cells are finished
and run the rest, each one as exactly the ``train_policy.py`` command a user would type, in its
own run directory under the study directory.

A cell is finished when ``eval/eval.json`` holds the planned number of episodes of the
checkpoint that is there, and that checkpoint reached the planned epochs. A cell whose
checkpoint matches the plan but stopped early resumes (``train.resume=true``); anything else
left behind (a crash before the first checkpoint, a different configuration) is wiped and
rerun from scratch. A failing cell (e.g. missing encoder weights) is recorded with its
reason in ``<cell dir>/study_cell.json`` and the grid goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from s2robot.fileio import atomic_write
from s2robot.study.plan import Cell

STATUS_NAME = "study_cell.json"
LOG_NAME = "cell.log"
# Overrides that do not change what a checkpoint learned: they may differ on resume.
_NOT_TRAINING = ("hydra.", "eval.", "train.resume", "train.progress", "device")


# -- state of a cell on disk --------------------------------------------------------------------


def read_checkpoint_meta(run_dir: str | Path) -> dict | None:
    """``{"epoch", "config"}`` of ``run_dir/checkpoint.pt``, or None when absent or unreadable."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        return None
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return {"epoch": int(ckpt["train_state"]["epoch"]), "config": ckpt.get("config") or {}}
    except Exception:  # a damaged file is just "not finished"
        return None


def read_eval(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "eval" / "eval.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _parse_override(item: str) -> tuple[str, object]:
    key, _, value = item.partition("=")
    return key.lstrip("+~"), yaml.safe_load(value)


def config_mismatches(overrides: Sequence[str], config: dict) -> list[str]:
    """The training-relevant ``key=value`` overrides that ``config`` (a checkpoint's) does not hold."""
    from omegaconf import OmegaConf

    conf = OmegaConf.create(config)
    bad = []
    for item in overrides:
        key, want = _parse_override(item)
        if key.startswith(_NOT_TRAINING):
            continue
        have = OmegaConf.select(conf, key, default="<absent>")
        have = OmegaConf.to_container(have) if OmegaConf.is_config(have) else have
        if isinstance(have, dict) and isinstance(want, str):  # a group choice: encoder=mvp_b
            have = have.get("name")
        if have != want and str(have) != str(want):
            bad.append(f"{key}: checkpoint {have!r} vs planned {want!r}")
    return bad


def cell_state(run_dir: str | Path, epochs: int, n_episodes: int, overrides: Sequence[str] = ()) -> tuple[str, str]:
    """("finished" | "resume" | "fresh", why) for a cell planned with ``epochs`` training epochs,
    ``n_episodes`` evaluation episodes and the given ``train_policy.py`` overrides."""
    run_dir = Path(run_dir)
    meta = read_checkpoint_meta(run_dir)
    if meta is None:
        return "fresh", "no readable checkpoint"
    bad = config_mismatches(overrides, meta["config"])
    if bad:
        return "fresh", "checkpoint from another configuration (" + "; ".join(bad) + ")"
    if meta["epoch"] > epochs:
        return "fresh", f"checkpoint at epoch {meta['epoch']} > planned {epochs}"
    if meta["epoch"] < epochs:
        return "resume", f"checkpoint at epoch {meta['epoch']} of {epochs}"
    result = read_eval(run_dir)
    if result is None:
        return "resume", "trained, not evaluated (evaluation running now, or interrupted)"
    if result.get("n_episodes") != n_episodes:
        return "resume", f"evaluated on {result.get('n_episodes')} episodes, planned {n_episodes}"
    from s2robot.checkpoint import checkpoint_hash

    if result.get("checkpoint_hash") not in (None, checkpoint_hash(run_dir)):
        return "resume", "eval.json belongs to another checkpoint"
    return "finished", f"{result['successes']}/{result['n_episodes']} successes"


# -- running cells ---------------------------------------------------------------------------


CellLauncher = Callable[[list, Path], int]  # (argv, log file) -> exit code


def subprocess_launcher(threads: int | None = 1) -> CellLauncher:
    """Run argv with its output in the log file. ``threads`` caps OpenMP/MKL threads per cell:
    two processes with torch's default threads each stall a small CPU."""

    def run(argv: list, log_path: Path) -> int:
        env = dict(os.environ)
        env.setdefault("MUJOCO_GL", "egl")
        env.setdefault("PYOPENGL_PLATFORM", "egl")
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        with open(log_path, "a") as log:
            return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env).returncode

    return run


def failure_reason(log_path: Path, returncode: int) -> str:
    """The one-line ``error: ...`` train_policy.py prints for a user error, else the log's tail."""
    try:
        lines = [ln.strip() for ln in Path(log_path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if ln.startswith("error: ")]
    if errors:
        return errors[-1].removeprefix("error: ")
    if returncode < 0:
        return f"killed by signal {-returncode}"
    tail = lines[-1] if lines else "no output"
    return f"exit code {returncode}: {tail[:300]}"


def _write_status(cell_dir: Path, status: dict) -> None:
    with atomic_write(cell_dir / STATUS_NAME, "w") as f:
        f.write(json.dumps(status, indent=1))


def read_status(cell_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(cell_dir) / STATUS_NAME).read_text())
    except (OSError, ValueError):
        return None


def cell_command(cell: Cell, cell_dir: Path, resume: bool) -> list[str]:
    # the installed module, not train_policy.py: a cell runs the same from a checkout or a wheel
    return [
        sys.executable,
        "-m",
        "s2robot.commands.train_policy",
        *cell.overrides,
        "eval.enabled=true",
        f"hydra.run.dir={cell_dir}",
        *(["train.resume=true"] if resume else []),
    ]


def run_cell(
    cell: Cell, study_dir: Path, epochs: int, n_episodes: int, launch: CellLauncher, log: Callable[[str], None] = print
) -> dict:
    """Bring one cell to "finished" if it is not already; returns its status record."""
    cell_dir = Path(study_dir) / cell.name
    state, why = cell_state(cell_dir, epochs, n_episodes, cell.overrides)
    if state == "finished":
        log(f"[skip] {cell.name}: finished ({why})")
        return {"cell": cell.name, "status": "finished", "skipped": True, "detail": why}
    if state == "fresh" and cell_dir.exists():
        shutil.rmtree(cell_dir)  # only ever our own cell directory under the study
    cell_dir.mkdir(parents=True, exist_ok=True)
    argv = cell_command(cell, cell_dir, resume=state == "resume")
    log(f"[run]  {cell.name}: {'resume' if state == 'resume' else 'fresh'} ({why})")
    status = {
        "cell": cell.name,
        "status": "running",
        "command": argv[1:],
        "started": time.time(),
        "state_before": state,
        "detail": why,
    }
    _write_status(cell_dir, status)
    t0 = time.perf_counter()
    rc = launch(argv, cell_dir / LOG_NAME)
    status["seconds"] = round(time.perf_counter() - t0, 1)
    status["returncode"] = rc
    after, after_why = cell_state(cell_dir, epochs, n_episodes, cell.overrides)
    if rc == 0 and after == "finished":
        status.update(status="finished", detail=after_why)
        log(f"[done] {cell.name}: {after_why} in {status['seconds']:.0f} s")
    else:
        reason = failure_reason(cell_dir / LOG_NAME, rc) if rc != 0 else f"exited 0 but {after_why}"
        status.update(status="failed", reason=reason)
        log(f"[FAIL] {cell.name}: {reason}")
    _write_status(cell_dir, status)
    return status


def run_grid(
    cells: Sequence[Cell],
    study_dir: str | Path,
    epochs: int,
    n_episodes: int,
    launch: CellLauncher,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run every cell in order; a failing cell is recorded and the grid goes on."""
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, cell in enumerate(cells):
        log(f"cell {i + 1}/{len(cells)}")
        out.append(run_cell(cell, study_dir, epochs, n_episodes, launch, log))
    return out
