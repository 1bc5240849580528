"""MAE pre-training of a registry ViT on robot frames (MVP recipe), single-scale or S².

    s2robot-pretrain +pretrain=cpu                       # ViT-Tiny, 64 px, CPU, <= ~30 min
    s2robot-pretrain encoder=vit_s scales=[1,2] data.stores=[data/cube_pick_224.zarr]
    s2robot-pretrain +pretrain=cpu resume=true hydra.run.dir=<run dir>

Prints the encoder checkpoint and the overrides that make train_policy.py / probe_encoder.py use it.
"""

import json

from omegaconf import DictConfig

from s2robot.cli import hydra_command


@hydra_command("pretrain_mae")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from s2robot.pretrain.loop import pretrain

    run_dir = HydraConfig.get().runtime.output_dir
    summary = pretrain(cfg, run_dir)
    print(json.dumps(summary))
    print(f"run directory: {run_dir}")
    print(f"encoder weights: {summary['encoder_weights']}")
    print(
        f"use them with: encoder={summary['encoder']} encoder.weights={summary['encoder_weights']} "
        f"encoder.img_size={summary['img_size']}"
    )


if __name__ == "__main__":
    main()
