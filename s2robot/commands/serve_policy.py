"""Serve a trained policy to a robot: WebSocket + MessagePack on loopback by default.

    s2robot-serve checkpoint=runs/2026-11-27_10-00-00_mvp_b
    S2ROBOT_SERVE_TOKEN=secret s2robot-serve checkpoint=runs/x host=0.0.0.0 port=8000 device=cuda

The robot connects with `s2robot_client.PolicyClient("ws://host:port", token=...)`; see docs/DEPLOYMENT.md.
Health check: curl http://host:port/healthz
"""

import asyncio
import logging
import sys

import hydra
from omegaconf import DictConfig

from s2robot.cli import CONFIG_DIR


@hydra.main(config_path=CONFIG_DIR, config_name="serve_policy", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.serving import PolicyServer, ServingError, check_bind

    log = logging.getLogger("serve_policy")
    try:
        check_bind(cfg.host, cfg.token)  # before torch is even imported
    except ServingError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

    from s2robot.checkpoint import CheckpointError
    from s2robot.cli import USER_ERRORS
    from s2robot.rollout.controller import PolicyController
    from s2robot.device import resolve_device

    try:
        if not cfg.checkpoint:
            raise CheckpointError("checkpoint= is required: pass a run directory of train_policy.py or its "
                                  "checkpoint.pt, e.g. checkpoint=runs/2026-11-27_10-00-00_mvp_b")
        runner = PolicyController.from_checkpoint(
            to_absolute_path(str(cfg.checkpoint)), device=resolve_device(cfg.device),
            encoder_weights=to_absolute_path(cfg.encoder_weights) if cfg.encoder_weights else None)
        server = PolicyServer(runner, host=cfg.host, port=cfg.port, token=cfg.token,
                              max_message_bytes=cfg.max_message_bytes)

        async def serve() -> None:
            try:
                await server.start()
            except OSError as e:  # port in use, address not on this machine
                raise ServingError(f"cannot listen on {cfg.host}:{cfg.port}: {e}; pick another port= or host=") from e
            print(f"listening on ws://{server.host}:{server.port}", flush=True)
            await server.serve_forever()

        asyncio.run(serve())
    except (*USER_ERRORS, ServingError) as e:
        log.debug("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
