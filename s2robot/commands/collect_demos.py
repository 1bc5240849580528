"""Collect scripted-expert demonstrations into a Zarr store (resumes an existing one).

s2robot-collect n_episodes=100 env.image_size=224 store=data/cube_pick_224.zarr
s2robot-collect expert.dart_noise=0.2 store=data/cube_pick_224_dart.zarr   # DART: noise executed, clean labels
"""

import json

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.simulator import quiet_robosuite_import

quiet_robosuite_import()


@hydra_command("collect_demos")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.config.collect import label_noise
    from s2robot.data.collect import collect_demos

    summary = collect_demos(
        cfg.env,
        to_absolute_path(cfg.store),
        n_episodes=cfg.n_episodes,
        seed_start=cfg.seed_start,
        label_noise=label_noise(cfg.expert),
        dart_noise=cfg.expert.dart_noise,
        dart_per_episode=cfg.expert.dart_per_episode,
        keep_failures=cfg.keep_failures,
        progress=True,
    )
    rate = summary["expert_success_rate"]
    print(
        f"expert success: {'n/a (store already complete)' if rate is None else f'{rate:.1%}'} "
        f"({summary['successes']}/{summary['attempts']} this run)"
    )
    print(
        f"store: {summary['store']}: {summary['n_episodes']} episodes, {summary['n_steps']} steps, "
        f"{summary['bytes_on_disk'] / 2**20:.1f} MiB on disk"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
