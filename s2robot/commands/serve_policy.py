"""Serve a trained policy to a robot: WebSocket + MessagePack on loopback by default.

    s2robot-serve checkpoint=runs/2026-11-27_10-00-00_mvp_b
    S2ROBOT_SERVE_TOKEN=secret s2robot-serve checkpoint=runs/x host=0.0.0.0 port=8000 device=cuda

The robot connects with `s2robot_client.PolicyClient("ws://host:port", token=...)`; see docs/DEPLOYMENT.md.
Health check: curl http://host:port/healthz

Exit codes: 2 a mistake to fix (one ``error:`` line), 1 a crash (one ``error:`` line, the traceback in
the log). The token is never printed: Hydra's own crash report lists the command-line overrides,
which may hold it, so no exception is let through to Hydra.
"""

import asyncio
import logging
import sys
import traceback

from omegaconf import DictConfig

from s2robot.cli import hydra_command

log = logging.getLogger("serve_policy")


def redact(text: str, secret) -> str:
    return text.replace(str(secret), "<token>") if secret else text


def serve(cfg: DictConfig) -> None:
    from hydra.utils import to_absolute_path

    from s2robot.serving import PolicyServer, check_bind, check_listen

    # Before torch is even imported: a wrong address costs one line, not a model load.
    check_bind(cfg.host, cfg.token)
    check_listen(cfg.host, cfg.port)

    from s2robot.checkpoint import CheckpointError
    from s2robot.device import resolve_device
    from s2robot.rollout.controller import PolicyController

    if not cfg.checkpoint:
        raise CheckpointError(
            "checkpoint= is required: pass a run directory of train_policy.py or its "
            "checkpoint.pt, e.g. checkpoint=runs/2026-11-27_10-00-00_mvp_b"
        )
    runner = PolicyController.from_checkpoint(
        to_absolute_path(str(cfg.checkpoint)),
        device=resolve_device(cfg.device),
        encoder_weights=to_absolute_path(cfg.encoder_weights) if cfg.encoder_weights else None,
        dtype=cfg.dtype,
        compile=cfg.compile,
    )
    server = PolicyServer(
        runner,
        host=cfg.host,
        port=cfg.port,
        token=cfg.token,
        max_message_bytes=cfg.max_message_bytes,
        max_queue=cfg.max_queue,
        idle_timeout_s=cfg.idle_timeout_s,
        max_connections=cfg.max_connections,
        log_interval_s=cfg.log_interval_s,
        max_batch=cfg.max_batch,
        batch_window_ms=cfg.batch_window_ms,
    )

    async def run() -> None:
        await server.start()  # ServingError should the port have been taken since check_listen
        print(f"listening on ws://{server.host}:{server.port}", flush=True)
        await server.serve_forever()

    asyncio.run(run())


@hydra_command("serve_policy")
def main(cfg: DictConfig) -> None:
    try:
        token = cfg.token
    except Exception:  # noqa: BLE001 -- an interpolation that cannot resolve: nothing to hide then
        token = None
    try:
        serve(cfg)
    except KeyboardInterrupt:
        log.info("stopped")
    except Exception as e:  # noqa: BLE001 -- see the module docstring: Hydra would print the overrides
        from s2robot.cli import USER_ERRORS  # only now: a wrong address is refused before torch loads

        if isinstance(e, USER_ERRORS):
            log.debug("%s", redact(str(e), token))
            print(f"error: {redact(str(e), token)}", file=sys.stderr)
            sys.exit(2)
        log.error("serve_policy crashed:\n%s", redact("".join(traceback.format_exception(e)), token).rstrip())
        what = redact(f"{type(e).__name__}: {e}", token).replace("\n", " ")[:400]
        print(
            f"error: serve_policy crashed: {what} (the traceback is in serve_policy.log of the run directory)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
