"""configs/scaling_study.yaml and its study/* presets: the grid of train_policy.py cells (``s2robot-study``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks
from s2robot.config.encoder import validate_scales


@dataclass
class GridEntrySchema:
    encoder: str = MISSING
    scales: list[list[int]] = MISSING


@dataclass
class BaselinesSchema:
    train: bool = MISSING
    blind: list[str] = MISSING  # finished run dirs (globs) to report when not trained here
    privileged: list[str] = MISSING


@dataclass
class MeasureSchema:
    probe: bool = MISSING
    latency: bool = MISSING
    latency_repeats: int = MISSING
    torch_threads: int | None = MISSING


@dataclass
class ScalingStudySchema:
    name: str = MISSING
    study_dir: str = MISSING
    report_only: bool = MISSING
    report_dir: str | None = MISSING
    dry_run: bool = MISSING
    grid: list[GridEntrySchema] = MISSING
    seeds: list[int] = MISSING
    weights_dir: str | None = MISSING
    weights: dict[str, str | None] = field(default_factory=dict)  # encoder -> file | auto | random
    img_size: dict[str, int | None] = field(default_factory=dict)  # encoder -> encoder.img_size
    allow_random: bool = MISSING
    store: str = MISSING
    image_size: int = MISSING
    n_demos: int = MISSING
    epochs: int = MISSING
    eval_episodes: int = MISSING
    eval_videos: int = MISSING
    eval_workers: int | None = MISSING
    device: str = MISSING
    overrides: list[str] = MISSING
    cell_threads: int | None = MISSING
    baselines: BaselinesSchema = field(default_factory=BaselinesSchema)
    measure: MeasureSchema = field(default_factory=MeasureSchema)


def validate_scaling_study(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    checks.device(cfg)
    checks.number(cfg.measure, "latency_repeats", 1, prefix="measure.")
    checks.number(cfg.measure, "torch_threads", 1, optional=True, prefix="measure.")
    if cfg.report_only:  # reads finished run directories only: the grid does not matter
        return
    seeds = list(cfg.seeds)
    checks.require(
        len(seeds) > 0 and all(s >= 0 for s in seeds) and len(set(seeds)) == len(seeds),
        "seeds",
        seeds,
        "distinct training seeds >= 0, e.g. [0,1,2]",
    )
    checks.number(cfg, "image_size", 1)
    checks.number(cfg, "n_demos", 2)
    checks.number(cfg, "epochs", 1)
    checks.number(cfg, "eval_episodes", 1)
    checks.number(cfg, "eval_videos", 0)
    checks.number(cfg, "eval_workers", 1, optional=True, hint="null: one per CPU core")
    checks.number(cfg, "cell_threads", 1, optional=True)
    checks.require(len(cfg.grid) > 0, "grid", cfg.grid, "at least one {encoder: ..., scales: [[1], ...]} entry")
    for i, entry in enumerate(cfg.grid):
        checks.require(
            len(entry.scales) > 0, f"grid[{i}].scales", entry.scales, "at least one scale set, e.g. [[1],[1,2]]"
        )
        for scales in entry.scales:
            validate_scales(scales, f"grid[{i}].scales")
    # last: the encoder registry loads torch (s2robot.encoders imports it)
    from s2robot.encoders.registry import ENCODERS, get_spec

    for entry in cfg.grid:
        get_spec(entry.encoder)  # UnknownEncoderError lists the known ones
    for key in ("weights", "img_size"):
        for enc in cfg[key]:
            checks.require(
                enc in ENCODERS,
                f"{key}.{enc}",
                cfg[key][enc],
                f"{enc!r} is not an encoder{checks.did_you_mean(enc, ENCODERS)}; known: {', '.join(sorted(ENCODERS))}",
            )
