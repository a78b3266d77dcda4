"""Requests first: the one home of request gating. Owns the count of Slack requests being
answered (`Foreground`), the runner of listeners' slow halves (`after_ack`, handed to listeners
as `Deps.after_ack`), and the engine's yield (`requests_first`). Imports `handlers.errors` for the
words of a failure; nothing else of ours.

Slack gives an app 3 seconds to acknowledge, and a workspace can send many requests at once (a
channel full of people typing `/backfill status`, Home tabs opened together). On one event loop,
every request's slow half (database reads, the reply, `views.publish`) started right after its
ack would interleave with the acknowledgements still queued behind it, so the last ack of a
burst waited for the whole burst's slow work. Here the HTTP and Socket Mode fronts mark each
request while it is being answered (`begin`/`end`), and deferrable work awaits `quiet()`: no
request in progress and none for `SETTLE_SECONDS`. Never longer than `MAX_WAIT_SECONDS`, so under
a steady stream of requests deferred work is late, never starved.

The app runs Bolt with `process_before_response=True`, so a request's HTTP response leaves as
soon as its listener returns. Listeners acknowledge, hand the rest (database reads, replies,
views) to `after_ack`, and return; without this, Bolt would keep every request open polling every
10 ms for the acknowledgement, which under a burst of commands starves the event loop. A failure
is told in plain words (`handlers.errors`): the database away or busy says so.

One `Foreground` per event loop (`foreground()`), so the app, its tests and the demo, each on a
loop of its own, never share one.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.errors import PLAIN_ERROR, explain_failure

log = logging.getLogger(__name__)
__all__ = [
    "PLAIN_ERROR",
    "Foreground",
    "after_ack",
    "drain",
    "foreground",
    "requests_first",
]

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


async def requests_first() -> None:
    """The engine's Slack calls and writes wait while this process is answering Slack's requests
    (at most a second): a run must never push an acknowledgement past Slack's 3 seconds."""
    await foreground().quiet()


# -- the slow half of a listener, run after Bolt has answered Slack ------------------------------

_tasks: set[asyncio.Task[None]] = set()


def after_ack(
    work: Coroutine[Any, Any, object],
    respond: AsyncRespond | None = None,
    *,
    urgent: bool = False,
) -> None:
    """Run `work` in the background; a failure is logged and the user told in plain words.

    `urgent` work starts at once, not when the requests being answered are done: opening a modal
    must use its `trigger_id` within the 3 seconds Slack gives it, and is one call."""
    task = asyncio.get_running_loop().create_task(_guarded(work, respond, urgent))
    _tasks.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_tasks.discard)


async def _guarded(
    work: Coroutine[Any, Any, object], respond: AsyncRespond | None, urgent: bool
) -> None:
    try:
        if urgent:
            await work
        else:
            async with foreground().deferred():
                await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - logged and told in plain words below
        text = explain_failure(exc, "listener work after the acknowledgement failed")
        if respond is None:
            return
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            log.warning("could not tell the user about the failure", exc_info=True)


async def drain(timeout: float = 10.0) -> None:
    """On shutdown: let replies in flight finish, then cancel what is left."""
    pending = set(_tasks)
    if not pending:
        return
    _done, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
