"""Collect scripted-expert demonstrations into a Zarr store (resumes an existing one).

    s2robot-collect n_episodes=100 env.image_size=224 store=data/cube_pick_224.zarr
"""

import json

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.simulator import quiet_robosuite_import

quiet_robosuite_import()


@hydra_command("collect_demos")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.data.collect import collect_demos

    summary = collect_demos(
        cfg.env,
        to_absolute_path(cfg.store),
        n_episodes=cfg.n_episodes,
        seed_start=cfg.seed_start,
        expert_noise=cfg.expert.noise,
        keep_failures=cfg.keep_failures,
        progress=True,
    )
    rate = summary["expert_success_rate"]
    print(f"expert success: {'n/a (store already complete)' if rate is None else f'{rate:.1%}'} "
          f"({summary['successes']}/{summary['attempts']} this run)")
    print(f"store: {summary['store']}: {summary['n_episodes']} episodes, {summary['n_steps']} steps, "
          f"{summary['bytes_on_disk'] / 2**20:.1f} MiB on disk")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
