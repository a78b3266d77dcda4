"""Per-method pacing before Slack says no: each method may make its tier's allowance in any sliding
"minute", as fast as its callers come, one call at a time, in FIFO order; a 429 makes that method
wait out Retry-After and switch to even spacing at the tier's rate (learned, logged once).
Clock and sleep are injected so tests run exact and instant. Imports nothing of ours but profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from scheduler.backfill.profiles import RateProfile

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Ready = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)

# How late (in intervals) a spaced start may be and still keep the schedule instead of restarting it.
_TOLERANCE = 0.5


@dataclass
class MethodStats:
    """What pacing did to one method so far."""

    calls: int = 0
    waits: int = 0  # calls that had to wait for the window, a Retry-After or their spaced slot
    wait_seconds: float = 0.0
    rate_limited: int = 0  # 429s reported through `penalize`
    retry_after_seconds: float = 0.0  # sum of the Retry-After values received
    # True once Slack answered 429 within the window: the method's calls are then evenly spaced
    # at its tier's rate (learned, for this pacer's life) instead of spending the window at once.
    spaced: bool = False
    slowdown: float = 1.0  # spacing multiplier once spaced (a 429 while spaced widens it)
    busy_seconds: float = 0.0  # time calls spent in flight (from their start to Slack's answer)


class _MethodPacer:
    """The window of one method. Callers queue on a FIFO lock held for the whole call, so a
    method has one call in flight at a time: a 429 is then seen before anything else of that
    method starts, and a burst-intolerant limiter answers 429 once, not once per call in flight.

    The window is a log of the last N calls. A call occupies it from its start until one window
    after Slack answered it: Slack counted it somewhere in between, so the (N+1)-th call's start
    is a window after that, whatever the network's jitter. Once spaced, starts also follow an
    ideal schedule (slot k+1 = slot k + interval) rather than the moment the previous caller woke
    up, so sleep overshoot does not accumulate into lost throughput; a start more than half an
    interval behind its slot (an idle method, a hiccup) restarts the schedule from now.
    """

    def __init__(self, rate: int, minute: float, margin: float) -> None:
        self.rate = rate
        self.window = minute * (1.0 + margin)
        self.base_interval = self.window / rate
        # The last N calls, each at the time it counts from (its start, then Slack's answer).
        self.log: deque[float] = deque(maxlen=rate)
        self.next_slot = float("-inf")
        self.not_before = float("-inf")
        self.lock = asyncio.Lock()  # asyncio.Lock wakes waiters first come, first served
        self.stats = MethodStats()

    @property
    def interval(self) -> float:
        return self.base_interval * self.stats.slowdown

    def earliest_start(self) -> float:
        earliest = self.not_before
        if self.stats.spaced:
            earliest = max(earliest, self.next_slot)
        if len(self.log) == self.rate:
            earliest = max(earliest, self.log[0] + self.window)
        return earliest

    def record_start(self, now: float, slot: float) -> None:
        self.log.append(now)
        self.stats.calls += 1
        if self.stats.spaced:
            on_time = now - slot <= _TOLERANCE * self.interval
            self.next_slot = (slot if on_time else now) + self.interval

    def record_end(self, started: float, now: float) -> None:
        # The lock is held from start to end, so the newest entry is this call's.
        self.log[-1] = max(self.log[-1], now)
        self.stats.busy_seconds += max(0.0, now - started)


class Pacer:
    """Paces calls per Slack method according to a `RateProfile`.

    `async with turn(method):` holds the method's turn while the call is made: it starts as soon
    as fewer than N calls of that method lie in the last window (N = the tier's calls a minute;
    the window is a minute stretched by `margin`, default 1 %, against clock and network jitter),
    else exactly when the oldest of them leaves it. No spacing while the window has room: a run
    needing fewer calls than a minute allows makes them all at once. Different methods have
    independent windows and never block each other.

    A 429 reported through `penalize` (from inside the turn) holds the method until Retry-After
    has passed and switches it to even spacing at its tier's rate (`MethodStats.spaced`, logged
    once per method); a 429 while already spaced widens the spacing by `penalty_factor`, up to
    `max_slowdown`. `non_marketplace`'s 1 call a minute is the same either way: one call a window.
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
        """Seconds between two starts of `method` once it is spaced (penalties included)."""
        return self._pacer(method).interval

    @contextlib.asynccontextmanager
    async def turn(self, method: str, ready: Ready | None = None) -> AsyncIterator[None]:
        """Wait until a call of `method` may start, record that it starts now, and hold the
        method's turn until the block ends (Slack answered, or the call was abandoned).

        `ready` is awaited once the window allows the start, before it is recorded (the caller's
        own priorities, e.g. acknowledging Slack's requests first); the window is checked again
        after it, so the recorded start is when the call really goes out."""
        pacer = self._pacer(method)
        async with pacer.lock:
            waited = False
            while True:
                now = self._clock()
                slot = pacer.earliest_start()
                if slot > now:
                    waited = True
                    pacer.stats.wait_seconds += slot - now
                    await self._sleep(slot - now)
                    continue
                if ready is None:
                    break
                await ready()
                now = self._clock()
                slot = pacer.earliest_start()
                if slot <= now:  # else a penalty landed meanwhile: wait for it
                    break
            pacer.record_start(now, slot)
            if waited:
                pacer.stats.waits += 1
            try:
                yield
            finally:
                pacer.record_end(now, self._clock())

    async def acquire(self, method: str) -> None:
        """Wait until a call of `method` may start and record that it starts (and ends) now: for
        a caller that does not hold the turn through its call."""
        async with self.turn(method):
            pass

    def penalize(self, method: str, retry_after_s: float) -> None:
        """Slack answered 429 for `method`: start nothing of it before Retry-After has passed, and
        from then on space its calls evenly at the tier's rate (wider still on a later 429)."""
        pacer = self._pacer(method)
        retry_after_s = max(0.0, retry_after_s)
        pacer.not_before = max(pacer.not_before, self._clock() + retry_after_s)
        pacer.stats.rate_limited += 1
        pacer.stats.retry_after_seconds += retry_after_s
        if not pacer.stats.spaced:
            # Slack's limiter tolerates less burst than its documented minute: learned for good.
            pacer.stats.spaced = True
            pacer.next_slot = float("-inf")  # the schedule starts at the first start after this
            log.warning(
                "Slack answered 429 to %s within its documented allowance (%d calls a minute): "
                "its calls are now evenly spaced, %.2f s apart, after Retry-After (%g s)",
                method,
                pacer.rate,
                pacer.interval,
                retry_after_s,
            )
        else:
            pacer.stats.slowdown = min(
                self._max_slowdown, pacer.stats.slowdown * self._penalty_factor
            )

    def stats(self) -> dict[str, MethodStats]:
        """A snapshot of per-method statistics."""
        return {method: replace(p.stats) for method, p in self._methods.items()}

    @property
    def total_wait_seconds(self) -> float:
        return sum(p.stats.wait_seconds for p in self._methods.values())
