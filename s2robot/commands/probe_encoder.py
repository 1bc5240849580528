"""Linear probe of a frozen S² encoder: does it know where the cube is?

    s2robot-probe encoder=vit_t encoder.weights=random encoder.img_size=64 scales=[1,2]
    s2robot-probe encoder=vit_t encoder.weights=<run>/encoder.pt encoder.img_size=64

Ridge regression (K-fold held out) from each episode's first-frame features to the cube's x, y;
prints JSON with the error in cm next to the predict-the-mean baseline, and R² per axis.
"""

import json
from pathlib import Path

from omegaconf import DictConfig

from s2robot.cli import hydra_command


@hydra_command("probe_encoder")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.device import resolve_device
    from s2robot.encoders.config import EncoderConfig
    from s2robot.encoders.probe import probe_encoder

    encoder = EncoderConfig.from_cfg(cfg.encoder, cfg.scales).build(resolve_device(cfg.device))
    result = probe_encoder(
        encoder, to_absolute_path(cfg.store), cfg.camera, cfg.n_folds, batch_size=cfg.encoder.batch_size, seed=cfg.seed
    )
    text = json.dumps(result)
    print(text)
    p, b = result["probe"], result["mean_baseline"]
    print(
        f"cube x,y from first-frame features ({result['n']} episodes, {result['n_folds']}-fold held out): "
        f"RMS error {p['rms_dist_cm']:.2f} cm vs {b['rms_dist_cm']:.2f} cm predicting the mean; "
        f"R² x {result['r2'][0]:.3f}, y {result['r2'][1]:.3f}"
    )
    if cfg.output:
        Path(to_absolute_path(cfg.output)).write_text(text + "\n")


if __name__ == "__main__":
    main()
