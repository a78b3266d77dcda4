"""Requests first: work that can wait lets Slack's requests be acknowledged before it runs.

Slack gives an app 3 seconds to acknowledge, and a workspace can send many requests at once (a
channel full of people typing `/backfill status`, Home tabs opened together). On one event loop,
every request's slow half (database reads, the reply, `views.publish`) started right after its
ack would interleave with the acknowledgements still queued behind it, so the last ack of a
burst waited for the whole burst's slow work. Here the HTTP front marks each request while it is
being answered (`begin`/`end`), and deferrable work awaits `quiet()`: no request in progress and
none for `SETTLE_SECONDS`. Never longer than `MAX_WAIT_SECONDS`, so under a steady stream of
requests deferred work is late, never starved.

One `Foreground` per event loop (`foreground()`), so the app, its tests and the demo, each on a
loop of its own, never share one.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

SETTLE_SECONDS: Final = 0.005
MAX_WAIT_SECONDS: Final = 1.0
# Deferred works running at once: when a new burst arrives, at most this many are interleaving
# with its acknowledgements (each is a few short steps: a query or two, one reply).
DEFERRED_CONCURRENCY: Final = 8


class Foreground:
    """Counts the requests being answered on one loop and wakes deferred work when they stop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        settle: float = SETTLE_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
        concurrency: int = DEFERRED_CONCURRENCY,
    ) -> None:
        self._loop = loop
        self._settle = settle
        self._max_wait = max_wait
        self._active = 0
        self._last = float("-inf")
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def active(self) -> int:
        """Requests being answered right now."""
        return self._active

    def begin(self) -> None:
        self._active += 1
        self._last = self._loop.time()

    def end(self) -> None:
        self._active -= 1
        self._last = self._loop.time()
        if self._active == 0 and self._waiters:
            self._arm()

    def is_quiet(self) -> bool:
        return self._active == 0 and self._loop.time() - self._last >= self._settle

    async def quiet(self) -> None:
        """Return once no request is being answered (at most `max_wait` seconds from now)."""
        if self.is_quiet():
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        deadline = self._loop.call_later(self._max_wait, _release, waiter)
        if self._active == 0:
            self._arm()
        try:
            await waiter
        finally:
            deadline.cancel()
            if waiter in self._waiters:  # released by its deadline, not by a quiet moment
                self._waiters.remove(waiter)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self._loop.call_at(self._last + self._settle, self._check)

    @asynccontextmanager
    async def deferred(self) -> AsyncIterator[None]:
        """Hold one of the deferred-work slots, entered at a quiet moment."""
        async with self._slots:
            await self.quiet()
            yield

    def _check(self) -> None:
        self._timer = None
        if self._active:
            return  # `end()` arms again
        if not self.is_quiet():
            self._arm()
            return
        # Timers run after this iteration's reads: a request read just now begins only in the
        # next iteration, ahead of this callback, which then sees it and waits again.
        self._loop.call_soon(self._release_if_still_quiet)

    def _release_if_still_quiet(self) -> None:
        if self._active:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _release(waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Foreground] = (
    weakref.WeakKeyDictionary()
)


def foreground() -> Foreground:
    """The running loop's `Foreground` (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _per_loop.get(loop)
    if found is None:
        found = _per_loop[loop] = Foreground(loop)
    return found
