"""Train a behaviour-cloning head on frozen S² features.

    python train_policy.py encoder=mvp_b scales=[1,2]
    python train_policy.py encoder=vit_t encoder.weights=random scales=[1,2] train.epochs=20
    torchrun --nproc_per_node=2 train_policy.py hydra.run.dir=runs/ddp ...   # data-parallel

Every run writes to its own directory (runs/<date>_<encoder> unless hydra.run.dir is set).
"""

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from s2robot.cli import CONFIG_DIR

# s2robot is imported inside main(): evaluation's env workers are spawned and re-import this
# file, so its top level stays light.


@hydra.main(config_path=CONFIG_DIR, config_name="train_policy", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from s2robot.cli import USER_ERRORS
    from s2robot.training.train import train

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        train(cfg, run_dir)
        if cfg.eval.enabled and int(os.environ.get("RANK", "0")) == 0:
            from s2robot.device import resolve_device
            from s2robot.rollout.evaluate import evaluate, report_lines

            result = evaluate(run_dir, os.path.join(run_dir, "eval"), n_episodes=cfg.eval.n_episodes,
                     n_workers=cfg.eval.n_workers, n_videos=cfg.eval.n_videos,
                     device=str(resolve_device(cfg.device)), progress=cfg.train.progress)
            print("\n".join(report_lines(result)))
    except USER_ERRORS as e:
        logging.getLogger("train_policy").error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"run directory: {run_dir}")


if __name__ == "__main__":
    main()
