"""Per-method pacing before Slack says no: calls of one method start evenly spaced, never more than
its rate in any sliding "minute", in FIFO order; a 429 pushes that method back and slows it down.
Clock and sleep are injected so tests run exact and instant. Imports nothing of ours but profiles.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from scheduler.backfill.profiles import RateProfile

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# How late (in intervals) a start may be and still keep the schedule instead of restarting it.
_TOLERANCE = 0.5


@dataclass
class MethodStats:
    """What pacing did to one method so far."""

    calls: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    rate_limited: int = 0  # 429s reported through `penalize`
    retry_after_seconds: float = 0.0  # sum of the Retry-After values received
    slowdown: float = 1.0  # current interval multiplier (1.0 = the tier's pace)


class _MethodPacer:
    """Start times of one method. Callers queue on a FIFO lock; the holder sleeps until its start
    is allowed, re-checking after every sleep so a penalty that lands meanwhile is honoured.

    Starts follow an ideal schedule (slot k+1 = slot k + interval) rather than the moment the
    previous caller actually woke up, so sleep overshoot and loop latency do not accumulate into
    lost throughput. A start more than half an interval behind its slot (an idle method, a hiccup)
    restarts the schedule from now, so nothing bursts to catch up. Independently of the schedule,
    the last N actual starts must fit in one window: that is the hard guarantee.
    """

    def __init__(self, rate: int, minute: float, margin: float) -> None:
        self.rate = rate
        self.window = minute * (1.0 + margin)
        self.base_interval = self.window / rate
        self.starts: deque[float] = deque(maxlen=rate)  # actual starts, newest last
        self.next_slot = float("-inf")
        self.not_before = float("-inf")
        self.lock = asyncio.Lock()  # asyncio.Lock wakes waiters first come, first served
        self.stats = MethodStats()

    @property
    def interval(self) -> float:
        return self.base_interval * self.stats.slowdown

    def earliest_start(self) -> float:
        earliest = max(self.next_slot, self.not_before)
        if len(self.starts) == self.rate:
            earliest = max(earliest, self.starts[0] + self.window)
        return earliest

    def record_start(self, now: float, slot: float) -> None:
        self.starts.append(now)
        on_time = now - slot <= _TOLERANCE * self.interval
        self.next_slot = (slot if on_time else now) + self.interval


class Pacer:
    """Paces calls per Slack method according to a `RateProfile`.

    `await acquire(method)` returns when a call may start. Calls are spaced `minute / N` apart,
    stretched by `margin` (default 1 %) so network jitter cannot push N + 1 calls into one of
    Slack's windows. Different methods have independent queues and never block each other.
    """

    def __init__(
        self,
        profile: RateProfile,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        margin: float = 0.01,
        penalty_factor: float = 1.25,
        max_slowdown: float = 2.0,
    ) -> None:
        if not 0.0 <= margin <= 0.02:
            raise ValueError("margin must be between 0 and 0.02")
        self.profile = profile
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._penalty_factor = penalty_factor
        self._max_slowdown = max_slowdown
        self._methods: dict[str, _MethodPacer] = {}

    def _pacer(self, method: str) -> _MethodPacer:
        pacer = self._methods.get(method)
        if pacer is None:
            pacer = _MethodPacer(
                self.profile.rate(method), self.profile.seconds_per_minute, self._margin
            )
            self._methods[method] = pacer
        return pacer

    def interval(self, method: str) -> float:
        """Current seconds between two starts of `method` (penalties included)."""
        return self._pacer(method).interval

    async def acquire(self, method: str) -> None:
        """Wait until a call of `method` may start, then record that it starts now."""
        pacer = self._pacer(method)
        async with pacer.lock:
            waited = False
            while True:
                now = self._clock()
                slot = pacer.earliest_start()
                if slot <= now:
                    break
                waited = True
                pacer.stats.wait_seconds += slot - now
                await self._sleep(slot - now)
            pacer.record_start(now, slot)
            pacer.stats.calls += 1
            if waited:
                pacer.stats.waits += 1

    def penalize(self, method: str, retry_after_s: float) -> None:
        """Slack answered 429 for `method`: start nothing before Retry-After has passed, and from
        then on space that method's calls `penalty_factor` wider (capped at `max_slowdown`)."""
        pacer = self._pacer(method)
        retry_after_s = max(0.0, retry_after_s)
        pacer.not_before = max(pacer.not_before, self._clock() + retry_after_s)
        pacer.stats.rate_limited += 1
        pacer.stats.retry_after_seconds += retry_after_s
        pacer.stats.slowdown = min(self._max_slowdown, pacer.stats.slowdown * self._penalty_factor)

    def stats(self) -> dict[str, MethodStats]:
        """A snapshot of per-method statistics."""
        return {method: replace(p.stats) for method, p in self._methods.items()}

    @property
    def total_wait_seconds(self) -> float:
        return sum(p.stats.wait_seconds for p in self._methods.values())
