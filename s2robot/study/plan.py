"""Planning the scaling study: its Hydra config -> the grid of cells (encoder x scales x seed,
plus baselines), each an ordinary train_policy.py command line."""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
BASELINE_INPUTS = {"blind": "[proprio]", "privileged": "[proprio,cube_pos,cube_yaw]"}


def scales_tag(scales: Sequence[int]) -> str:
    return "s" + "-".join(str(int(s)) for s in scales)


def scales_arg(scales: Sequence[int]) -> str:
    return "[" + ",".join(str(int(s)) for s in scales) + "]"


@dataclass(frozen=True)
class Cell:
    """One training + evaluation run of the grid."""

    name: str  # its directory under the study directory
    kind: str  # "vision" | "blind" | "privileged"
    seed: int
    encoder: str | None = None
    scales: tuple[int, ...] = ()
    overrides: tuple[str, ...] = field(default=(), compare=False)  # train_policy.py command line


def plan_cells(
    grid: Sequence[dict],
    seeds: Sequence[int],
    common: Sequence[str] = (),
    encoder_overrides: dict | None = None,
    baselines: Sequence[str] = (),
) -> list[Cell]:
    """``grid``: ``[{encoder: mvp_b, scales: [[1], [1, 2]]}, ...]``; ``encoder_overrides``:
    ``{mvp_b: [encoder.weights=..., ...]}``; ``common``: overrides for every cell (store, epochs,
    eval); ``baselines``: kinds to train as extra cells ("blind", "privileged")."""
    cells, seen = [], set()
    for entry in grid:
        enc = str(entry["encoder"])
        for scales in entry["scales"]:
            scales = tuple(int(s) for s in scales)
            for seed in seeds:
                name = f"{enc}_{scales_tag(scales)}_seed{int(seed)}"
                if name in seen:
                    raise ValueError(f"cell {name} is listed twice in the grid")
                seen.add(name)
                ov = (
                    f"encoder={enc}",
                    f"scales={scales_arg(scales)}",
                    f"seed={int(seed)}",
                    *(encoder_overrides or {}).get(enc, ()),
                    *common,
                )
                cells.append(Cell(name, "vision", int(seed), enc, scales, ov))
    for kind in baselines:
        if kind not in BASELINE_INPUTS:
            raise ValueError(f"unknown baseline {kind!r}; known: {', '.join(BASELINE_INPUTS)}")
        for seed in seeds:
            ov = (f"inputs={BASELINE_INPUTS[kind]}", f"seed={int(seed)}", *common)
            cells.append(Cell(f"{kind}_seed{int(seed)}", kind, int(seed), overrides=ov))
    return cells


def encoder_overrides(cfg: DictConfig) -> tuple[dict, list[str]]:
    """encoder -> [encoder.weights=..., encoder.img_size=...]; and the encoders switched to random."""
    from hydra.utils import to_absolute_path

    out, randomised = {}, []
    for entry in cfg.grid:
        enc = str(entry.encoder)
        ov = []
        weights = (cfg.weights or {}).get(enc)
        if weights is not None:
            weights = str(weights)
            if weights not in ("auto", "random") and not Path(to_absolute_path(weights)).is_file() and cfg.allow_random:
                log.warning(
                    "%s: weights file %s does not exist; allow_random=true, so using RANDOM weights", enc, weights
                )
                randomised.append(enc)
                weights = "random"
            ov.append(f"encoder.weights={weights}")
        size = (cfg.img_size or {}).get(enc)
        if size is not None:
            ov.append(f"encoder.img_size={int(size)}")
        out[enc] = ov
    return out, randomised


def plan(cfg: DictConfig) -> tuple[list[Cell], list[str]]:
    """The study's cells, and the encoders whose missing weights were replaced by random ones."""
    per_encoder, randomised = encoder_overrides(cfg)
    none = lambda x: "null" if x is None else x  # noqa: E731
    common = [
        f"data.store={cfg.store}",
        f"env.image_size={cfg.image_size}",
        f"data.n_episodes={cfg.n_demos}",
        f"train.epochs={cfg.epochs}",
        f"eval.n_episodes={cfg.eval_episodes}",
        f"eval.n_videos={cfg.eval_videos}",
        f"eval.n_workers={none(cfg.eval_workers)}",
        f"device={cfg.device}",
        "train.progress=false",
        *cfg.overrides,
    ]
    grid = OmegaConf.to_container(cfg.grid, resolve=True)
    kinds = ["blind", "privileged"] if cfg.baselines.train else []
    return plan_cells(grid, list(cfg.seeds), common, per_encoder, kinds), randomised


def baseline_dirs(cfg: DictConfig) -> list[Path]:
    from hydra.utils import to_absolute_path

    if cfg.baselines.train:
        return []
    dirs = []
    for kind in ("blind", "privileged"):
        for pattern in cfg.baselines.get(kind) or []:
            matched = sorted(glob.glob(to_absolute_path(str(pattern))))
            if not matched:
                log.warning("baselines.%s: nothing matches %s", kind, pattern)
            dirs += [Path(p) for p in matched if Path(p).is_dir()]
    return dirs
