"""Reading ``train_policy.py`` run directories for the study: where the runs are, what each one
is (kind, encoder config, seed, store) and whether it finished, or why not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from s2robot.encoders.config import EncoderConfig
from s2robot.study.grid import STATUS_NAME, cell_state, failure_reason, read_eval, read_status


def find_run_dirs(root: str | Path) -> list[Path]:
    """Directories under ``root`` (itself included) that hold a train_policy.py run: a Hydra
    ``.hydra/config.yaml``, a ``checkpoint.pt`` or a study cell record."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "checkpoint.pt" in filenames or STATUS_NAME in filenames or (here / ".hydra" / "config.yaml").is_file():
            if (here / ".hydra" / "config.yaml").is_file() and not _is_train_config(here):
                continue  # some other Hydra app's output (e.g. the study's own)
            found.append(here)
            dirnames[:] = []  # eval/, tb/, .hydra/ belong to this run
        else:
            dirnames[:] = [d for d in dirnames if d not in ("features", "tb", "videos")]
    return sorted(found)


def _is_train_config(run_dir: Path) -> bool:
    cfg = _hydra_config(run_dir)
    return isinstance(cfg, dict) and "inputs" in cfg and "train" in cfg


def _hydra_config(run_dir: Path) -> dict | None:
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception:  # an unknown resolver or a damaged file: fall back to the checkpoint
        return None


def run_config(run_dir: str | Path) -> dict:
    """The run's resolved config: Hydra's copy, else the one inside the checkpoint."""
    run_dir = Path(run_dir)
    cfg = _hydra_config(run_dir)
    if cfg is None:
        from s2robot.study.grid import read_checkpoint_meta

        meta = read_checkpoint_meta(run_dir)
        cfg = meta["config"] if meta else {}
    return cfg


def kind_of(inputs: Sequence[str]) -> str:
    inputs = list(inputs)
    if "vision" in inputs:
        return "vision"
    return "privileged" if any(k in inputs for k in ("cube_pos", "cube_yaw")) else "blind"


def run_info(run_dir: str | Path) -> dict:
    """What a run directory is (kind, encoder, scales, weights, seed, store) and how it ended."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    result = read_eval(run_dir)
    inputs = cfg.get("inputs") or (result or {}).get("inputs") or []
    kind = kind_of(inputs)
    enc = cfg.get("encoder") or {}
    info = {
        "run_dir": str(run_dir),
        "name": run_dir.name,
        "kind": kind,
        "seed": cfg.get("seed"),
        "encoder": enc.get("name") if kind == "vision" else None,
        "scales": tuple(int(s) for s in cfg.get("scales") or ()) if kind == "vision" else (),
        "img_size": enc.get("img_size") if kind == "vision" else None,
        "weights_arg": str(enc.get("weights")) if kind == "vision" else None,
        "encoder_seed": enc.get("seed", 0),
        # The probe reads the features the head was given (CLS, or the token grid).
        "feature": enc.get("feature", "cls") if kind == "vision" else None,
        "output_grid": enc.get("output_grid", "native") if kind == "vision" else None,
        "weights_id": (result or {}).get("encoder_weights"),
        "encoder_config": EncoderConfig.from_cfg(enc, cfg.get("scales") or ()) if kind == "vision" else None,
        "store": (cfg.get("data") or {}).get("store"),
        # the (first) camera the policy saw: data.cameras, or data.camera in runs from before it
        "camera": ((cfg.get("data") or {}).get("cameras") or [(cfg.get("data") or {}).get("camera", "agentview")])[0],
        "epochs": (cfg.get("train") or {}).get("epochs"),
        "finished": False,
        "reason": None,
        "result": result,
    }
    n_planned = (result or {}).get("n_episodes") or (cfg.get("eval") or {}).get("n_episodes")
    if info["epochs"] is not None and n_planned is not None:
        state, why = cell_state(run_dir, int(info["epochs"]), int(n_planned))
        info["finished"] = state == "finished"
        if not info["finished"]:
            info["reason"] = why if (run_dir / "checkpoint.pt").is_file() else _unfinished_reason(run_dir)
    else:
        info["reason"] = _unfinished_reason(run_dir, has_config=bool(cfg))
    return info


def _unfinished_reason(run_dir: Path, has_config: bool = True) -> str:
    status = read_status(run_dir)
    if status and status.get("status") == "failed":
        return status.get("reason") or "failed"
    if status and status.get("status") == "running":
        return "started but not finished (running now, or killed: rerun the study to resume it)"
    for name in ("train_policy.log", "cell.log"):
        if (run_dir / name).is_file():
            reason = failure_reason(run_dir / name, 1)
            if not reason.startswith("exit code"):
                return reason
    if not has_config:
        return "no config (.hydra/config.yaml) and no readable checkpoint"
    return "no eval/eval.json (not finished, still running, or crashed)"
