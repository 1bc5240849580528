"""Evaluate a trained policy on fixed evaluation seeds: success rate with a 95% interval,
per-episode records, videos and a contact sheet in <run dir>/eval.

    s2robot-eval checkpoint=runs/2026-11-27_10-00-00_mvp_b
    s2robot-eval checkpoint=runs/x n_episodes=200 n_workers=8 device=cuda +env.horizon=200
"""

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from s2robot.cli import CONFIG_DIR

# s2robot is imported inside main(): env worker processes are spawned, and each re-imports this
# module, so its top level stays light.


@hydra.main(config_path=CONFIG_DIR, config_name="eval_policy", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.checkpoint import CheckpointError, resolve_checkpoint_path
    from s2robot.cli import USER_ERRORS
    from s2robot.rollout.evaluate import evaluate, report_lines
    from s2robot.device import resolve_device

    if cfg.torch_threads:
        import torch

        torch.set_num_threads(int(cfg.torch_threads))
    try:
        if not cfg.checkpoint:
            raise CheckpointError("checkpoint= is required: pass a run directory of train_policy.py or its "
                                  "checkpoint.pt, e.g. checkpoint=runs/2026-11-27_10-00-00_mvp_b")
        ckpt = resolve_checkpoint_path(to_absolute_path(str(cfg.checkpoint)))
        out_dir = to_absolute_path(cfg.out_dir) if cfg.out_dir else ckpt.parent / "eval"
        result = evaluate(ckpt, out_dir, n_episodes=cfg.n_episodes, n_workers=cfg.n_workers, seed_start=cfg.seed_start,
                 n_videos=cfg.n_videos, device=str(resolve_device(cfg.device)),
                 env_overrides=OmegaConf.to_container(cfg.env, resolve=True), progress=cfg.progress,
                 encoder_weights=to_absolute_path(cfg.encoder_weights) if cfg.encoder_weights else None)
    except USER_ERRORS as e:
        logging.getLogger("eval_policy").debug("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(report_lines(result)))


if __name__ == "__main__":
    main()
