"""configs/serve_policy.yaml: serve a checkpoint to robots (``s2robot-serve``). The yaml belongs to
the serving side; this schema mirrors its keys, and a key added there must be added here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from s2robot.config import checks


@dataclass
class ServePolicySchema:
    checkpoint: str | None = MISSING
    host: str = MISSING
    port: int = MISSING
    device: str = MISSING
    encoder_weights: str | None = MISSING
    token: str | None = MISSING  # ${oc.env:S2ROBOT_SERVE_TOKEN,null}
    max_message_bytes: int | None = MISSING  # null: sized from one observation of the policy
    max_queue: int = MISSING
    idle_timeout_s: float | None = MISSING  # null: never
    max_connections: int = MISSING
    log_interval_s: float = MISSING
    dtype: str = MISSING  # auto | fp32 | bf16 (the encoders'; normalisation and the head stay fp32)
    compile: bool | None = MISSING  # null: on CUDA only
    max_batch: int = MISSING  # requests of several robots run as one forward pass; 1 = no batching
    batch_window_ms: float = MISSING


def validate_serve_policy(cfg: Any) -> None:
    checks.check_known_keys(cfg)
    checks.require(bool(cfg.host), "host", cfg.host, "an address to listen on, e.g. 127.0.0.1")
    checks.number(cfg, "port", 0, 65535, hint="0 picks a free port")
    checks.device(cfg)
    checks.number(cfg, "max_message_bytes", 1, optional=True, hint="null: sized from one observation")
    checks.number(cfg, "max_queue", 1)
    checks.number(cfg, "idle_timeout_s", 0, low_open=True, optional=True, hint="null: never")
    checks.number(cfg, "max_connections", 1)
    checks.number(cfg, "log_interval_s", 0)
    checks.choice(cfg, "dtype", ("auto", "fp32", "bf16"))
    checks.number(cfg, "max_batch", 1, 256, hint="1 = no batching across robots")
    checks.number(cfg, "batch_window_ms", 0, 20, hint="every batch's first request waits this long at most")
