"""The shutdown budget (`SHUTDOWN_TIMEOUT`): from SIGTERM to exit within that many seconds,
whatever the app is doing. Owns the clock of one shutdown, the bound on each of its steps, the
one line that says what was cut short, and the watchdog that ends the process when the budget
from a stop signal is spent. Imports nothing of ours.

`app.runtime` orders the steps. Runs and schedule fires are told to stop the moment the shutdown
begins (`at_begin`), so runs reach a safe point while the fronts close: Socket Mode, the HTTP
server, the listeners' replies in flight. Then the runs' release is awaited, and the stores close.
Each step waits at most what is left of the budget, less the share kept for the stores
(`closing_s`) and the exit's own margin; a step still going then is cancelled, given a moment to
unwind, and left behind. Nothing is lost by that: a run's checkpoints are consistent at any
moment, and a Chroma batch is idempotent by document id, so what was cut short is redone by
whichever process resumes the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger("backfill")

# The budget's last moments are the exit's own: the one line, flushing the logs, `os._exit`.
EXIT_MARGIN_S: Final = 0.5
# What a step cut short is given to unwind its cancellation (a rollback, a release) before the
# shutdown moves on without it.
CANCEL_GRACE_S: Final = 0.5
# The share of the budget kept for closing the stores once the runs are released.
CLOSING_SHARE: Final = 0.1
CLOSING_MAX_S: Final = 2.0

# A step: called when it starts; its result, when a non-empty string, is something it cut short
# itself (the run service names the runs it let go of before their safe point).
Step = Callable[[], Awaitable[object]]
ExitCallback = Callable[[], Awaitable[None]]


class ShutdownBudget:
    """The clock of one shutdown, shared by its steps.

    The clock starts at `on_signal()` (SIGTERM/SIGINT), or when the app's exit begins; `step()`
    and `at_begin()` make the exit callbacks that run the steps, each bounded by what is left.
    `cut_short` lists, in plain words, what did not finish. `on_signal()` also arms a watchdog
    thread that ends the process, exit code 0, when the budget is spent, even if the event loop
    itself is stuck: only a stop signal does, so a test that runs the app in its own process
    (or a start-up that fails) is never ended by it."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds <= 0:
            raise ValueError(f"a shutdown budget must be positive, got {seconds}")
        self.seconds = float(seconds)
        self.closing_s = min(CLOSING_MAX_S, CLOSING_SHARE * self.seconds)
        self.cut_short: list[str] = []
        # Steps abandoned before they finished: what they were waiting for (a thread blocked in a
        # call to a store) may still hold up the interpreter's exit, even once they are cancelled.
        self.left_behind: list[str] = []
        self._clock = clock
        self._started_at: float | None = None
        self._begun = False
        self._early: dict[str, Step] = {}
        self._tasks: dict[str, asyncio.Future[object]] = {}
        # The steps being waited for right now, and what was cut short: read by the watchdog's
        # thread too, hence the lock.
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._watchdog: threading.Timer | None = None

    # -- the clock ------------------------------------------------------------------------------
    def start_clock(self) -> None:
        """The shutdown starts now (idempotent): the deadline is set."""
        if self._started_at is None:
            self._started_at = self._clock()

    def on_signal(self) -> None:
        """The process was asked to stop: the clock starts, and the watchdog is armed to end the
        process when the budget is spent (idempotent)."""
        self.start_clock()
        if self._watchdog is None:
            left = max(0.0, self.seconds - self.elapsed())
            self._watchdog = threading.Timer(left, self._spent)
            self._watchdog.daemon = True  # never what holds the process up
            self._watchdog.start()

    @property
    def signalled(self) -> bool:
        return self._watchdog is not None

    def elapsed(self) -> float:
        return 0.0 if self._started_at is None else self._clock() - self._started_at

    def left(self, keep: float = 0.0) -> float:
        """Seconds left for the step about to wait, keeping `keep` for the steps after it and the
        exit's margin."""
        return max(0.0, self.seconds - EXIT_MARGIN_S - self.elapsed() - keep)

    # -- steps ----------------------------------------------------------------------------------
    def begin(self) -> None:
        """The app's exit begins: start the clock (unless the signal did) and the steps that
        start at once (`at_begin`)."""
        self.start_clock()
        if self._begun:
            return
        self._begun = True
        for what, work in self._early.items():
            self._tasks[what] = asyncio.ensure_future(work())

    def at_begin(self, what: str, work: Step, *, keep: float | None = None) -> ExitCallback:
        """`work()` starts the moment the exit begins, alongside every step; the callback returned
        (for an exit stack) waits for it where it stands in the order, within the budget."""
        if what in self._early:
            raise ValueError(f"two shutdown steps named {what!r}")
        self._early[what] = work
        if self._begun:  # registered during the exit itself: start it now
            self._tasks[what] = asyncio.ensure_future(work())

        async def finish() -> None:
            self.begin()
            await self._wait(what, self._tasks[what], keep)

        return finish

    def step(self, what: str, work: Step, *, keep: float | None = None) -> ExitCallback:
        """An exit callback that runs `work()` and waits for it at most what is left of the
        budget, keeping `keep` seconds (default: the stores' share) for the steps after it.
        `what` names it in the line saying what was cut short."""

        async def run() -> None:
            self.begin()
            await self._wait(what, asyncio.ensure_future(work()), keep)

        return run

    async def _wait(self, what: str, task: asyncio.Future[object], keep: float | None) -> None:
        with self._lock:
            self._waiting.add(what)
        try:
            await asyncio.wait({task}, timeout=self.left(self.closing_s if keep is None else keep))
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=min(CANCEL_GRACE_S, self.left()))
                task.add_done_callback(_retrieve)  # whatever it raises later is not news
                self._cut(what)
                self.left_behind.append(what)
                return
        finally:
            with self._lock:
                self._waiting.discard(what)
        if task.cancelled():
            self._cut(what)
            return
        note = task.result()  # a step's own error goes on up the exit stack, as it did before
        if isinstance(note, str) and note:
            self._cut(note)

    def _cut(self, what: str) -> None:
        with self._lock:
            self.cut_short.append(what)

    # -- the end --------------------------------------------------------------------------------
    def summary(self) -> str | None:
        """The one line saying what was cut short, or None when every step finished."""
        if not self.cut_short:
            return None
        return (
            f"shutdown cut short to exit within SHUTDOWN_TIMEOUT={self.seconds:g}s "
            f"({self.elapsed():.1f} s since the signal): " + "; ".join(self.cut_short)
        )

    def exit_now(self) -> None:
        """End the process at once, exit code 0: what a step left behind (a thread blocked in a
        call to a store, a task that outlives its cancellation) would hold up the interpreter's
        own exit, which waits for every such thread."""
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)

    def _spent(self) -> None:
        # The watchdog's thread: the event loop did not get the process out in time.
        with self._lock:
            parts = [*self.cut_short, *(f"{what} (still going)" for what in sorted(self._waiting))]
        log.warning(
            "shutdown budget spent: exiting now to stay within SHUTDOWN_TIMEOUT=%gs; cut short: %s",
            self.seconds,
            "; ".join(parts) or "the interpreter's own exit",
        )
        self.exit_now()


def _retrieve(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


__all__ = ["EXIT_MARGIN_S", "ShutdownBudget"]
