"""Rate limiters: a sliding-window log (at most N calls in any window of 60 s, compressible: how
Slack states its tiers) and leaky buckets (a burst of at most `capacity`, then the tier's rate).

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


class LeakyBucketLimiter:
    """Leaky buckets: each accepted call adds one to its key's level, which drains at the rate
    given per call (per minute, compressible); a call that would lift the level above `capacity`
    is refused. So at most `capacity` calls at once, then one per drain interval: a limiter that
    tolerates only a burst of `capacity` where the sliding window allows a whole minute's worth.
    Rejected calls add nothing."""

    def __init__(
        self,
        capacity: int,
        *,
        time_compression: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if time_compression <= 0:
            raise ValueError("time_compression must be > 0")
        self.capacity = capacity
        self.time_compression = time_compression
        self.clock = clock
        self._levels: dict[Hashable, tuple[float, float]] = {}  # key -> (level, when)

    def _drain(self, per_minute: int) -> float:
        """Calls drained per real second."""
        return per_minute * self.time_compression / 60.0

    def _level(self, key: Hashable, per_minute: int) -> float:
        now = self.clock()
        level, when = self._levels.get(key, (0.0, now))
        return max(0.0, level - (now - when) * self._drain(per_minute))

    def peek(self, key: Hashable, per_minute: int) -> int:
        """0 if a call would be allowed now, else the Retry-After (whole real seconds, >= 1)."""
        excess = self._level(key, per_minute) + 1.0 - self.capacity
        if excess <= 0:
            return 0
        return max(1, math.ceil(excess / self._drain(per_minute)))

    def try_acquire(self, key: Hashable, per_minute: int) -> int:
        """Record a call and return 0, or return the Retry-After without recording it."""
        wait = self.peek(key, per_minute)
        if not wait:
            self._levels[key] = (self._level(key, per_minute) + 1.0, self.clock())
        return wait

    def reset(self) -> None:
        self._levels.clear()
