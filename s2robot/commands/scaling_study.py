"""The scaling study: model size against S² scales, each cell a train_policy.py run.

    s2robot-study                                   # study=paper (GPU, MVP weights)
    s2robot-study study=small allow_random=true     # CPU-sized grid
    s2robot-study dry_run=true                      # the cells' commands and states
    s2robot-study report_only=true study_dir=multirun/2025-01-01/12-00-00
    s2robot-study report_only=true study_dir=runs/baselines report_dir=/tmp/report

Rerunning skips finished cells, resumes interrupted ones and retries failed ones. Writes
<study_dir>/scaling.csv, scaling.md and scaling.png.

Cells run as subprocesses: each is exactly the command a user would type (so a Hydra multirun
or a cluster launcher produces the same run directories), a crash or out-of-memory in one
cell cannot take the study down, and every cell starts with a clean GPU and fresh memory.
"""

import shlex
from pathlib import Path

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.errors import UserError


def _say(msg: str) -> None:
    print(msg, flush=True)


@hydra_command("scaling_study")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    study_dir = Path(to_absolute_path(cfg.study_dir))
    if cfg.report_only and not study_dir.is_dir():  # before the study's modules load torch
        raise UserError(f"study_dir={study_dir} does not exist; point report_only=true at a finished study")

    from s2robot.device import resolve_device
    from s2robot.study.grid import cell_state, run_grid, subprocess_launcher
    from s2robot.study.measure import measure_encoder
    from s2robot.study.plan import baseline_dirs, plan
    from s2robot.study.report import build_report
    from s2robot.study.runs import find_run_dirs, run_info

    if cfg.report_only:
        infos = [run_info(d) for d in find_run_dirs(study_dir)]
        missing = [
            {"cell": str(Path(i["run_dir"]).relative_to(study_dir)) or ".", "reason": i["reason"]}
            for i in infos
            if not i["finished"]
        ]
    else:
        cells, randomised = plan(cfg)
        if cfg.dry_run:
            for c in cells:
                state, why = cell_state(study_dir / c.name, cfg.epochs, cfg.eval_episodes, c.overrides)
                _say(f"# {c.name}: {state} ({why})")
                _say(
                    shlex.join(
                        [
                            "python",
                            "train_policy.py",
                            *c.overrides,
                            "eval.enabled=true",
                            f"hydra.run.dir={study_dir / c.name}",
                        ]
                    )
                )
            return
        _say(
            f"study {cfg.name}: {len(cells)} cells in {study_dir}"
            + (f"; RANDOM weights for {randomised}" if randomised else "")
        )
        statuses = run_grid(
            cells, study_dir, cfg.epochs, cfg.eval_episodes, subprocess_launcher(cfg.cell_threads), log=_say
        )
        infos, missing = [], []
        for cell, status in zip(cells, statuses):
            info = run_info(study_dir / cell.name)
            infos.append(info)
            if status["status"] != "finished" or not info["finished"]:
                missing.append({"cell": cell.name, "reason": status.get("reason") or info["reason"]})
    seen = {i["run_dir"] for i in infos}
    for d in baseline_dirs(cfg):
        if str(d) not in seen:
            info = run_info(d)
            infos.append(info)
            if not info["finished"]:
                missing.append({"cell": f"baseline {d}", "reason": info["reason"]})
    device = str(resolve_device(cfg.device))
    if cfg.measure.torch_threads:
        import torch

        torch.set_num_threads(int(cfg.measure.torch_threads))
    m = cfg.measure

    def measure(info, dev):
        return measure_encoder(info, dev, probe=m.probe, latency=m.latency, repeats=m.latency_repeats)

    report_dir = Path(to_absolute_path(cfg.report_dir)) if cfg.report_dir else study_dir
    rows = build_report(
        report_dir,
        infos,
        missing,
        measure=measure if (m.probe or m.latency) else None,
        device=device,
        name=cfg.name if not cfg.report_only else study_dir.name,
        source=study_dir,
        log=_say,
    )
    _say(f"{len(rows)} rows, {len(missing)} missing cell(s): {report_dir / 'scaling.md'}")
    for m_ in missing:
        _say(f"  missing {m_['cell']}: {m_['reason']}")


if __name__ == "__main__":
    main()
