"""Train a behaviour-cloning head on frozen S² features.

    python train_policy.py encoder=mvp_b scales=[1,2]
    python train_policy.py encoder=vit_t encoder.weights=random scales=[1,2] train.epochs=20
    torchrun --nproc_per_node=2 train_policy.py hydra.run.dir=runs/ddp ...   # data-parallel

Every run writes to its own directory (runs/<date>_<encoder> unless hydra.run.dir is set).
"""

import logging
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.errors import ConfigError
from s2robot.simulator import quiet_robosuite_import

# s2robot's heavy modules are imported inside the task (after the schema's range checks, which
# need none): evaluation's env workers are spawned and re-import this file, so its top level stays light.
quiet_robosuite_import()
log = logging.getLogger("train_policy")
SECONDS_PER_DEMO = 2.4  # the scripted expert at 224 px on 2 busy cores: 150 demos in ~6 min


def confirm_collection(cfg: DictConfig) -> None:
    """A ``data.store`` that does not exist starts minutes of collection: often a typo. Say so
    before starting and, at a terminal, ask; non-interactive runs (tests, CI, study cells) go on."""
    store = Path(cfg.data.store)
    if store.exists() or int(os.environ.get("RANK", "0")) != 0:
        return
    minutes = max(1, round(cfg.data.n_episodes * SECONDS_PER_DEMO / 60))
    log.warning(
        "data.store=%s does not exist: collecting %d expert demos into it (~%d min); Ctrl-C and fix the path "
        "if that was a typo",
        cfg.data.store,
        cfg.data.n_episodes,
        minutes,
    )
    if sys.stdin is not None and sys.stdin.isatty():
        answer = input(f"collect {cfg.data.n_episodes} demos into {store}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise ConfigError(
                f"data.store={cfg.data.store} does not exist and collecting was declined; fix the path "
                f"or answer y (data.collect_if_missing=false refuses without asking)"
            )


@hydra_command("train_policy")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from s2robot.training.preflight import validate
    from s2robot.training.train import train

    run_dir = HydraConfig.get().runtime.output_dir
    validate(cfg)  # what the config points at, the weights and the store, before collecting
    confirm_collection(cfg)
    metrics = train(cfg, run_dir, validated=True)
    if cfg.eval.enabled and "val_action_mae" in metrics:  # a store without a simulator: nothing to roll out in
        log.info("eval.enabled: no rollout evaluation without a simulator; the held-out action error stands in")
    elif cfg.eval.enabled and int(os.environ.get("RANK", "0")) == 0:
        from s2robot.device import resolve_device
        from s2robot.rollout.evaluate import evaluate, report_lines

        result = evaluate(
            run_dir,
            os.path.join(run_dir, "eval"),
            n_episodes=cfg.eval.n_episodes,
            n_workers=cfg.eval.n_workers,
            n_videos=cfg.eval.n_videos,
            device=str(resolve_device(cfg.device)),
            progress=cfg.train.progress,
            dtype=cfg.eval.dtype,
            compile=cfg.eval.compile,
        )
        print("\n".join(report_lines(result)))
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    main()
