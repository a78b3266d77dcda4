"""Sliding-window-log rate limiter: at most N calls in any window of 60 s (compressible).

Keys are (token, team, method[, channel]); rejected calls are not logged, so they do not count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Hashable


class SlidingWindowLimiter:
    def __init__(
        self, *, time_compression: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if time_compression <= 0:
            raise ValueError("time_compression must be > 0")
        self.time_compression = time_compression
        self.clock = clock
        self._logs: dict[Hashable, deque[float]] = {}

    def window(self, seconds: float) -> float:
        """Real seconds that a nominal window of `seconds` lasts."""
        return seconds / self.time_compression

    def peek(self, key: Hashable, limit: int, window_s: float = 60.0) -> int:
        """0 if a call would be allowed now, else the Retry-After (whole real seconds, >= 1)."""
        now = self.clock()
        span = self.window(window_s)
        log = self._logs.setdefault(key, deque())
        while log and log[0] <= now - span:
            log.popleft()
        if len(log) >= limit:
            # The oldest logged call leaves the window at log[0] + span.
            return max(1, math.ceil(log[0] + span - now))
        return 0

    def try_acquire(self, key: Hashable, limit: int, window_s: float = 60.0) -> int:
        """Record a call and return 0, or return the Retry-After without recording it."""
        wait = self.peek(key, limit, window_s)
        if not wait:
            self._logs[key].append(self.clock())
        return wait

    def reset(self) -> None:
        self._logs.clear()
