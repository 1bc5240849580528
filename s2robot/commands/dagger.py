"""DAgger with the scripted expert, N rounds as one command (see s2robot.dagger.rounds).

s2robot-dagger run=runs/my_run rounds=2 episodes_per_round=50
s2robot-dagger 'train_overrides=["+experiment=demo_cpu","eval.enabled=false"]' rounds=2   # trains round 0 too
"""

import json

from omegaconf import DictConfig

from s2robot.cli import hydra_command
from s2robot.simulator import quiet_robosuite_import

# Heavy modules are imported inside the task: the rollout workers are spawned and re-import this file.
quiet_robosuite_import()


@hydra_command("dagger")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from s2robot.dagger.rounds import run_dagger

    out_dir = HydraConfig.get().runtime.output_dir
    summary = run_dagger(cfg, out_dir)
    for row in summary["rounds"]:
        t = row["rollout"]
        line = (
            f"round {row['round']}: policy {t['successes']}/{t['episodes']} on its rollouts, store "
            f"{row['store_episodes']} episodes; rollout {t['total_s']:.0f} s (relabel {t['relabel_s']:.1f} s), "
            f"re-cache {row['cache_s']:.0f} s, train {row['train_s']:.0f} s"
        )
        if "eval" in row:
            line += f"; eval {row['eval']['successes']}/{row['eval']['n_episodes']}"
        print(line)
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}))
    print(f"run directory: {out_dir}")


if __name__ == "__main__":
    main()
