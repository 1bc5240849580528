"""Evaluate a trained policy on fixed evaluation seeds: success rate with a 95% interval,
per-episode records, videos and a contact sheet in <run dir>/eval.

    s2robot-eval checkpoint=runs/2026-11-27_10-00-00_mvp_b
    s2robot-eval checkpoint=runs/x n_episodes=200 n_workers=8 device=cuda +env.horizon=200
    s2robot-eval checkpoint=runs/privileged privileged_noise_cm=1.0 noise_mode=per_step out_dir=runs/privileged/eval_1cm
"""

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.simulator import quiet_robosuite_import

# s2robot's heavy modules are imported inside main(): env worker processes are spawned, and each
# re-imports this module, so its top level stays light.
quiet_robosuite_import()


@hydra_command("eval_policy")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.checkpoint import resolve_checkpoint_path
    from s2robot.config.env import validate_env_overrides
    from s2robot.device import resolve_device
    from s2robot.rollout.evaluate import evaluate, report_lines

    if cfg.torch_threads:
        import torch

        torch.set_num_threads(int(cfg.torch_threads))
    ckpt = resolve_checkpoint_path(to_absolute_path(str(cfg.checkpoint)))
    out_dir = to_absolute_path(cfg.out_dir) if cfg.out_dir else ckpt.parent / "eval"
    result = evaluate(
        ckpt,
        out_dir,
        n_episodes=cfg.n_episodes,
        n_workers=cfg.n_workers,
        seed_start=cfg.seed_start,
        n_videos=cfg.n_videos,
        device=str(resolve_device(cfg.device)),
        env_overrides=validate_env_overrides(cfg.env),
        progress=cfg.progress,
        encoder_weights=to_absolute_path(cfg.encoder_weights) if cfg.encoder_weights else None,
        cube_pos_noise_m=cfg.privileged_noise_cm / 100,
        cube_yaw_noise_deg=cfg.privileged_yaw_noise_deg,
        noise_mode=cfg.noise_mode,
        cube_pos_noise_axes=cfg.privileged_noise_axes,
        dtype=cfg.dtype,
        compile=cfg.compile,
    )
    print("\n".join(report_lines(result)))


if __name__ == "__main__":
    main()
