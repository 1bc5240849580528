"""Serving a trained checkpoint to a robot over WebSocket + MessagePack (the wire format lives in
the robot-side package `s2robot_client.protocol`, so both ends share one definition)."""

try:
    import s2robot_client  # noqa: F401
except ImportError as e:  # the dev install puts it there (Makefile); a bare `pip install -e .` does not
    raise ImportError("s2robot.serving needs the robot-side package of this repo: pip install -e client") from e

from s2robot.serving.limits import ThrottledLog, auto_max_message_bytes
from s2robot.serving.listen import ServingError, check_bind, check_listen, check_port, is_loopback
from s2robot.serving.observation import observation_spec, validate_observation
from s2robot.serving.server import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUE, PolicyServer

__all__ = [
    "PolicyServer",
    "ServingError",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUEUE",
    "ThrottledLog",
    "auto_max_message_bytes",
    "check_bind",
    "check_listen",
    "check_port",
    "is_loopback",
    "observation_spec",
    "validate_observation",
]
