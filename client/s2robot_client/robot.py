"""The robot interface and the robot-side safety around it: the control loop at a fixed rate,
actions clipped to the server's bounds, a watchdog that holds the arm when no fresh action
comes in time, and a stop on the way out (Ctrl-C included). A real arm needs only an adapter
implementing `Robot` (see docs/DEPLOYMENT.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from websockets.exceptions import ConnectionClosed

from s2robot_client.client import ServerError

log = logging.getLogger(__name__)


class Robot(Protocol):
    def get_observation(self) -> dict[str, np.ndarray]:
        """The current observation: every camera in the metadata's ``camera_keys`` as uint8 RGB
        (H, W, 3), top-left origin, at ``image_shape``; ``proprio`` float32 (``proprio_dim``,)."""

    def apply_action(self, action: np.ndarray) -> None:
        """Command one control step: float32 (``action_dim``,), already clipped to the bounds."""

    def stop(self) -> None:
        """Bring the arm to a safe standstill (hold position); called once when the loop ends."""


def clip_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(action, dtype=np.float32), low, high).astype(np.float32)


def hold_action(action_dim: int, gripper: float) -> np.ndarray:
    """Zero pose delta (the OSC controller keeps the arm where it is), gripper command unchanged."""
    a = np.zeros(action_dim, dtype=np.float32)
    a[-1] = gripper
    return a


@dataclass
class LoopStats:
    steps: int = 0
    fresh: int = 0            # ticks that applied a fresh policy action
    held: int = 0             # ticks the watchdog held the arm
    server_errors: int = 0
    overruns: int = 0         # ticks that took longer than the control period
    actions: list = field(default_factory=list)  # every applied action (when record=True)


def run_control_loop(robot: Robot, policy: Callable[..., np.ndarray], action_low, action_high,
                     rate_hz: float | None = 20.0, watchdog_s: float = 0.2, max_steps: int | None = None,
                     should_stop: Callable[[], bool] | None = None, initial_gripper: float = -1.0,
                     record: bool = False) -> LoopStats:
    """Run ``robot`` with ``policy(obs, timeout=s) -> action`` until ``max_steps`` ticks,
    ``should_stop()``, a lost connection, or Ctrl-C; ``robot.stop()`` is always called.

    Each tick: observe, ask the policy (waiting at most ``watchdog_s``), clip to the bounds and
    apply; if no action came in time, or it was malformed, or the server answered with an error,
    apply the hold action instead. ``rate_hz=None`` runs as fast as the robot steps (simulation).
    """
    low = np.asarray(action_low, dtype=np.float32)
    high = np.asarray(action_high, dtype=np.float32)
    dim = len(low)
    gripper = float(initial_gripper)
    period = 1.0 / rate_hz if rate_hz else 0.0
    stats = LoopStats()
    next_tick = time.monotonic()
    try:
        while (max_steps is None or stats.steps < max_steps) and not (should_stop and should_stop()):
            obs = robot.get_observation()
            action = None
            try:
                action = np.asarray(policy(obs, timeout=watchdog_s), dtype=np.float32)
                if action.shape != (dim,) or not np.all(np.isfinite(action)):
                    log.error("policy returned a bad action %r; holding", action)
                    action = None
            except TimeoutError:
                log.warning("no action within %.3f s (watchdog); holding the arm", watchdog_s)
            except ServerError as e:
                stats.server_errors += 1
                log.error("server refused the request: %s; holding the arm", e)
            if action is None:
                action = hold_action(dim, gripper)
                stats.held += 1
            else:
                action = clip_action(action, low, high)
                stats.fresh += 1
            robot.apply_action(action)
            gripper = float(action[-1])
            stats.steps += 1
            if record:
                stats.actions.append(action)
            if period:
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    stats.overruns += 1
                    next_tick = time.monotonic()  # do not sprint to catch up
    except ConnectionClosed as e:
        log.error("connection to the server lost (%s); stopping the arm", e)
    finally:
        robot.stop()
    return stats
