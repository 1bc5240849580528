"""The robot interface and the robot-side safety around it: the control loop at a fixed rate,
actions clipped to the server's bounds, a watchdog that holds the arm when no fresh action
comes in time, and a stop on the way out (Ctrl-C included). A real arm needs only an adapter
implementing `Robot` (see docs/DEPLOYMENT.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from websockets.exceptions import ConnectionClosed

from s2robot_client.client import BadReply, ServerError

log = logging.getLogger(__name__)


class Robot(Protocol):
    """What the control loop (and recording) drives. Optional members, used when present:
    ``reset(seed)`` before each episode (e.g. go home); ``done`` (true ends the episode);
    ``success`` (the episode's outcome, recorded with it); ``description()`` -> the robot's
    ``RobotDescription`` or its dict form (``to_dict``: action_dim, action_low/high, action_kind,
    control_hz, cameras {name: [H, W]}, proprio_dim, gripper_index, ...), checked against the
    policy before the arm moves and stored with every recorded episode; ``hold_action(last)`` ->
    the action that keeps the arm where it is (else see `hold_for`); ``close()``."""

    def get_observation(self) -> dict[str, np.ndarray]:
        """The current observation: every camera in the metadata's ``camera_keys`` as uint8 RGB
        (H, W, 3), top-left origin, at its ``image_shapes`` entry; ``proprio`` float32 (``proprio_dim``,)."""

    def apply_action(self, action: np.ndarray) -> None:
        """Command one control step: float32 (``action_dim``,), already clipped to the bounds."""

    def stop(self) -> None:
        """Bring the arm to a safe standstill (hold position); called once when the loop ends."""


def clip_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(action, dtype=np.float32), low, high).astype(np.float32)


def hold_action(action_dim: int, gripper: float, gripper_index: int | None = -1) -> np.ndarray:
    """Zero deltas (a delta controller keeps the arm where it is), the gripper command unchanged."""
    a = np.zeros(action_dim, dtype=np.float32)
    if gripper_index is not None:
        a[gripper_index] = gripper
    return a


def hold_for(
    description: Mapping | None, robot: object = None, initial_gripper: float = -1.0
) -> Callable[[np.ndarray | None], np.ndarray | None]:
    """``hold(last applied action) -> action`` (None: apply nothing this tick) for the watchdog.

    The adapter's own ``hold_action(last)`` when it has one. Else, by the description's
    ``action_kind``: a delta action space holds with zeros (its ``gripper_index`` element, if it
    names one, keeps its last command); any other (absolute targets such as joint positions)
    repeats the last applied action, and before the first one applies nothing, leaving the arm's
    own controller on its current target. No description (a server from before descriptions,
    which only served CubePick): zeros with the last element as the gripper. Before any action
    the gripper element holds ``initial_gripper``."""
    if callable(own := getattr(robot, "hold_action", None)):
        return own
    if description is None:
        return None  # the loop's legacy hold: it knows the action size
    dim, gi = int(description["action_dim"]), description.get("gripper_index")
    if "delta" in str(description.get("action_kind", "")):
        return lambda last: hold_action(dim, initial_gripper if last is None or gi is None else float(last[gi]), gi)
    return lambda last: None if last is None else np.asarray(last, dtype=np.float32).copy()


# Reconnection attempts after a lost connection: the first at once, then after 0.1, 0.2, 0.4 ... s,
# at most this far apart, until the loop's ``reconnect_s`` runs out.
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_GAP_S = 2.0


@dataclass
class LoopStats:
    steps: int = 0
    fresh: int = 0  # ticks that applied a fresh policy action
    held: int = 0  # ticks the watchdog held the arm
    server_errors: int = 0  # error replies (the server refused the request)
    bad_replies: int = 0  # replies that were unreadable or had no usable action
    overruns: int = 0  # ticks that took longer than the control period
    reconnects: int = 0  # connections lost and re-established during the loop
    lost: str | None = None  # why the loop gave up on the server (None: it did not)
    connected: bool = True  # False: the loop ended (gave up, or its episode ended) without a connection
    actions: list = field(default_factory=list)  # every applied action (when record=True)


def reconnect_within(reconnect: Callable[[float], None], within_s: float) -> str | None:
    """Blocking: call ``reconnect(timeout)`` with backoff until it succeeds or ``within_s`` runs out.
    -> None once connected, else why not (for use while the arm is stopped, e.g. between episodes)."""
    start, gap, why = time.monotonic(), RECONNECT_FIRST_S, "no attempt"
    while True:
        left = start + within_s - time.monotonic()
        try:
            reconnect(min(5.0, max(0.1, left)))
            return None
        except (ConnectionError, OSError, ConnectionClosed) as e:
            why = str(e) or type(e).__name__
        if time.monotonic() + gap > start + within_s:
            return f"could not reconnect within {within_s:g} s (last error: {why})"
        time.sleep(gap)
        gap = min(2 * gap, RECONNECT_MAX_GAP_S)


def _usable(action, dim: int) -> np.ndarray | None:
    try:
        a = np.asarray(action, dtype=np.float32)
    except (ValueError, TypeError):
        return None
    return a if a.shape == (dim,) and np.all(np.isfinite(a)) else None


def run_control_loop(
    robot: Robot,
    policy: Callable[..., np.ndarray],
    action_low,
    action_high,
    rate_hz: float | None = 20.0,
    watchdog_s: float = 0.2,
    max_steps: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial_gripper: float = -1.0,
    record: bool = False,
    reconnect: Callable[[float], None] | None = None,
    reconnect_s: float = 10.0,
    description: Mapping | None = None,
    on_step: Callable[[dict, np.ndarray, bool], None] | None = None,
) -> LoopStats:
    """Run ``robot`` with ``policy(obs, timeout=s) -> action`` until ``max_steps`` ticks,
    ``should_stop()``, a lost connection that does not come back, or Ctrl-C; ``robot.stop()`` is
    always called.

    Each tick: observe, ask the policy (waiting at most ``watchdog_s``), clip to the bounds and
    apply; if no action came in time, or the reply was malformed (unreadable, no action, wrong
    shape, NaN), or the server answered with an error, apply the hold action instead.
    ``rate_hz=None`` runs as fast as the robot steps (simulation).

    A lost connection ends the loop at once (``stats.lost`` says why) unless ``reconnect(timeout)``
    is given: the loop then keeps holding the arm at its rate while it calls ``reconnect`` with
    backoff (it raises OSError on failure), for at most ``reconnect_s`` seconds before giving up.

    ``description`` (the robot's, as a dict) decides what holding means (`hold_for`); without
    it the hold is CubePick's. ``on_step(obs, applied action, held)`` sees every applied step
    (recording); a tick where the hold applies nothing is not a step.
    """
    low = np.asarray(action_low, dtype=np.float32)
    high = np.asarray(action_high, dtype=np.float32)
    dim = len(low)
    hold = hold_for(description, robot, initial_gripper)
    if hold is None:
        hold = lambda last: hold_action(dim, float(initial_gripper) if last is None else float(last[-1]))  # noqa: E731
    last: np.ndarray | None = None
    period = 1.0 / rate_hz if rate_hz else 0.0
    stats = LoopStats()
    next_tick = time.monotonic()
    lost_at: float | None = None  # when the connection went; None while connected
    next_try, gap, why = 0.0, RECONNECT_FIRST_S, ""
    try:
        while (max_steps is None or stats.steps < max_steps) and not (should_stop and should_stop()):
            obs = robot.get_observation()
            action = None
            if lost_at is None:
                try:
                    action = _usable(raw := policy(obs, timeout=watchdog_s), dim)
                    if action is None:
                        stats.bad_replies += 1
                        log.error("policy returned a bad action %r; holding", raw)
                except TimeoutError:
                    log.warning("no action within %.3f s (watchdog); holding the arm", watchdog_s)
                except ServerError as e:
                    stats.server_errors += 1
                    log.error("server refused the request: %s; holding the arm", e)
                except BadReply as e:
                    stats.bad_replies += 1
                    log.error("malformed reply: %s; holding the arm", e)
                except (ConnectionClosed, ConnectionError) as e:
                    why = str(e) or type(e).__name__
                    if reconnect is None:
                        stats.lost = f"connection to the server lost ({why})"
                        log.error("%s; stopping the arm", stats.lost)
                        break
                    lost_at = next_try = time.monotonic()
                    gap = RECONNECT_FIRST_S
                    log.error(
                        "connection to the server lost (%s); holding the arm, reconnecting for up to %g s",
                        why,
                        reconnect_s,
                    )
            held = action is None
            if held:
                action = hold(last)
                stats.held += 1
            else:
                stats.fresh += 1
            if action is not None:
                action = clip_action(action, low, high)
                robot.apply_action(action)
                last = action
                if on_step is not None:
                    on_step(obs, action, held)
                if record:
                    stats.actions.append(action)
            stats.steps += 1
            if lost_at is not None:
                # After the hold was applied: the arm stands still while an attempt blocks.
                now = time.monotonic()
                if now >= next_try:
                    try:
                        reconnect(min(max(1.0, watchdog_s), max(0.1, lost_at + reconnect_s - now)))
                    except (ConnectionError, OSError, ConnectionClosed) as e:
                        why = str(e) or type(e).__name__
                        next_try, gap = time.monotonic() + gap, min(2 * gap, RECONNECT_MAX_GAP_S)
                    else:
                        log.info("reconnected after %.1f s", time.monotonic() - lost_at)
                        lost_at = None
                        stats.reconnects += 1
                if lost_at is not None and time.monotonic() - lost_at >= reconnect_s:
                    stats.lost = f"could not reconnect within {reconnect_s:g} s (last error: {why})"
                    log.error("%s; stopping the arm", stats.lost)
                    break
            if period:
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    stats.overruns += 1
                    next_tick = time.monotonic()  # do not sprint to catch up
    finally:
        robot.stop()
    stats.connected = lost_at is None and stats.lost is None
    return stats
