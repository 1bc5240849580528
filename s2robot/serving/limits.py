"""What one connection may cost the server: the largest request a policy needs (from its
observation spec), the checks of the configured limits, and a log that says each kind of trouble
once in a while instead of once per request (a fuzzing client wrote 12,606 warning lines, 2.3 MB,
when every bad request had its own)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from s2robot.serving.listen import ServingError

# MessagePack framing of one typed buffer ({"__ndarray__", "dtype", "shape", "data"} and its key),
# generously: the measured size is ~70 bytes.
ARRAY_OVERHEAD = 128
ENVELOPE = 1024  # {"type", "id", "chunk", "reset", "obs"}
EXTRA_ROOM = 16 * 1024  # small keys a robot may send beside what the policy reads (ignored, e.g. cube_pos)


def observation_bytes(spec: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    """Bytes of one infer request for this spec: uint8 images (every camera of the policy),
    vectors at float64 (the widest float the server accepts), with their MessagePack framing."""
    n = ENVELOPE
    for kind, shape in spec.values():
        n += int(np.prod(shape, dtype=np.int64)) * (1 if kind == "image" else 8) + ARRAY_OVERHEAD
    return n


def auto_max_message_bytes(spec: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    """The default request limit: one observation plus a quarter and some room for extra keys.
    A 224 px camera + proprio gives ~206 kB, two cameras ~395 kB (the old fixed 8 MiB let one
    connection buffer 270 MiB)."""
    need = observation_bytes(spec)
    return need + need // 4 + EXTRA_ROOM


def check_limits(
    spec: dict, max_message_bytes: Any, max_queue: Any, idle_timeout_s: Any, max_connections: Any, log_interval_s: Any
) -> int:
    """The server's limits checked as given (ServingError naming the key) -> the request limit in
    bytes, computed from the spec when ``max_message_bytes`` is None."""
    need = observation_bytes(spec)
    if max_message_bytes is None:
        max_message_bytes = auto_max_message_bytes(spec)
    elif not _whole(max_message_bytes, need):
        raise ServingError(
            f"max_message_bytes={max_message_bytes!r} must be a whole number of bytes no smaller "
            f"than one observation of this policy ({need}); raise it, or set it to null to "
            f"have it computed"
        )
    for name, value in (("max_queue", max_queue), ("max_connections", max_connections)):
        if not _whole(value, 1):
            raise ServingError(f"{name}={value!r} must be a whole number >= 1")
    if idle_timeout_s is not None and not (_number(idle_timeout_s) and idle_timeout_s > 0):
        raise ServingError(f"idle_timeout_s={idle_timeout_s!r} must be > 0 seconds, or null for no limit")
    if not (_number(log_interval_s) and log_interval_s >= 0):
        raise ServingError(f"log_interval_s={log_interval_s!r} must be >= 0 seconds")
    return int(max_message_bytes)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _whole(x: Any, at_least: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= at_least


class ThrottledLog:
    """``warn(key, code, fmt, *args)``: at most one line per ``key`` (a connection, "auth", ...)
    every ``interval_s``; the lines held back are counted into that key's next line. ``summary()``
    reports, at most once per ``summary_s``, how many problems of each code came in since the last."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        summary_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log, self.interval_s, self.summary_s, self.clock = logger, interval_s, summary_s, clock
        self._last: dict[Hashable, float] = {}
        self._held: Counter = Counter()
        self._codes: Counter = Counter()
        self._since = clock()

    def warn(self, key: Hashable, code: str, fmt: str, *args, exc_info: BaseException | None = None) -> None:
        self._codes[code] += 1
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] += 1
        else:
            held = self._held.pop(key, 0)
            suffix = f" (and {held} more like it in the last {now - last:.0f} s)" if held else ""
            self.log.warning(fmt + suffix, *args, exc_info=exc_info)
            self._last[key] = now
        self.summary()

    def forget(self, key: Hashable) -> None:
        """The key is gone (its connection closed): drop its state so the table stays bounded."""
        self._last.pop(key, None)
        self._held.pop(key, None)

    def summary(self, force: bool = False) -> None:
        now = self.clock()
        if self._codes and (force or now - self._since >= self.summary_s):
            by_code = ", ".join(f"{code}: {n}" for code, n in self._codes.most_common())
            self.log.warning(
                "%d refused requests in the last %.0f s (%s)", sum(self._codes.values()), now - self._since, by_code
            )
            self._codes.clear()
            self._since = now
        elif not self._codes:
            self._since = now
