"""Process-wide set-up for the robosuite simulator, done once before its first import.

``import robosuite`` warns five times on every start (no private macro file and how to make one,
robosuite_models and the mink IK for robots this project never uses), in every process that makes
an env, so a run printed them once per env worker. They say nothing about this project's task;
other robosuite warnings still come through.
"""

from __future__ import annotations

import logging

ROBOSUITE_LOGGER = "robosuite_logs"
# Prefixes of the start-up messages (robosuite 1.5: macros.py and robosuite/__init__.py).
STARTUP_NOISE = (
    "No private macro file found",
    "It is recommended to use a private macro file",
    "To setup, run:",
    "Could not import robosuite_models",
    "Could not load the mink-based whole-body IK",
)


class _DropStartupNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(STARTUP_NOISE)


def quiet_robosuite_import() -> None:
    """Drop robosuite's start-up warnings. Cheap and idempotent; imports nothing. A filter on its
    logger rather than a level: robosuite sets the level itself when it creates the logger, and
    its other warnings should stay visible. Call it at the top level of an entry module, so that
    spawned env workers, which re-import that module, are quiet too."""
    logger = logging.getLogger(ROBOSUITE_LOGGER)
    if not any(isinstance(f, _DropStartupNoise) for f in logger.filters):
        logger.addFilter(_DropStartupNoise())
