"""What every part of the run service shares: a run in this process's hands (`RunJob`), and
`RunCore`, the state and the few moves all parts make (the clock, this process's owner name, the
runs in hand, listeners and background tasks, and writes that wait out a database outage).

The parts are `run_slots` (queue and slots), `run_lease` (heartbeats, takeover, retries),
`run_endings` (ending runs and telling people) and the `runs.RunService` facade. Imports `db`,
`blocks` and `scheduler.*`; never Bolt. The database's own busy handling lives in `db/`: the
waits here are for a database that does not answer at all, whichever it is.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.records import Progress, Run, SlackCalls, add_slack_calls
from db.session import database_trouble
from scheduler.notify import Notifier, ProgressDM
from scheduler.run_events import RunEvent
from scheduler.schedules import ScheduleService

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Listener = Callable[[RunEvent], "Awaitable[None] | None"]
T = TypeVar("T")

# Pauses between attempts to reach a database that does not answer: quick at first (a blip),
# then every few seconds, so a run goes on within seconds of the database being back.
DATABASE_RETRY_S = (0.5, 1.0, 2.0, 3.0, 5.0)


def retry_pause(attempt: int) -> float:
    """How long to wait before attempt `attempt + 1` to reach the database."""
    return DATABASE_RETRY_S[min(attempt, len(DATABASE_RETRY_S) - 1)]


@dataclass(eq=False)
class RunJob:
    """A run this process owns: queued for a slot, or running."""

    run: Run
    recipient: str | None  # who hears about it by DM
    base_messages: int  # stored by earlier attempts of the same job_run_id
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    shutdown: bool = False
    lost: bool = False  # another process took the run over: write nothing more
    progress: Progress | None = None
    dm: ProgressDM | None = None
    attempt_calls: tuple[SlackCalls, ...] = ()  # what this attempt asked of Slack, once it ended
    attempt_removed: int | None = None  # messages this attempt pruned, once it ended

    @property
    def job_run_id(self) -> int:
        return self.run.job_run_id

    def slack_calls(self, attempt: tuple[SlackCalls, ...]) -> tuple[SlackCalls, ...]:
        """The run's figures with this attempt's added (earlier attempts are on the row)."""
        return add_slack_calls(self.run.slack_calls, attempt)

    def messages_removed(self, attempt: int | None) -> int | None:
        """The run's pruned messages with this attempt's added (earlier attempts are on the row);
        None while no attempt pruned."""
        if attempt is None:
            return self.run.messages_removed
        return (self.run.messages_removed or 0) + attempt

    def counts(self) -> tuple[int | None, int | None]:
        if self.progress is None:
            return None, None
        return self.base_messages + self.progress.messages_stored, self.progress.channels_done

    def stop_cancelled(self) -> None:
        """A cancel request reached this run: it stops at its next page boundary."""
        self.cancel_requested = True
        self.cancel.set()

    def stop_lost(self) -> None:
        """Another process holds the run now: stop, and write nothing more."""
        self.lost = True
        self.cancel.set()


class RunCore:
    """The state the parts of a `RunService` share, and their common moves."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        notifier: Notifier | None,
        schedules: ScheduleService | None,
        clock: Clock,
        owner: str,
    ) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.schedules = schedules
        self.clock = clock
        self.owner = owner
        self.jobs: dict[int, RunJob] = {}  # every run this process owns
        self.progress: dict[str, Progress] = {}  # workspace -> latest progress of its run here
        self.listeners: list[Listener] = []
        self.background: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self.give_up_at = float("inf")  # when stopping: monotonic deadline for database waits

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def emit(self, event: RunEvent) -> None:
        """Tell every listener; an async listener runs in the background."""
        for listener in list(self.listeners):
            try:
                outcome = listener(event)
            except Exception:
                logger.exception("run listener failed")
                continue
            if inspect.isawaitable(outcome):
                self.spawn(_guard(outcome))

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def until_written(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        """`write()`, again with backoff while the database does not answer, until it does (or,
        when this process is stopping, until the shutdown's patience runs out: then the error
        is raised). One log line per outage, not one per attempt."""
        attempt = 0
        while True:
            try:
                result = await write()
            except Exception as exc:
                if not database_trouble(exc) or time.monotonic() > self.give_up_at:
                    raise
                if attempt == 0:
                    logger.warning(
                        "%s waits: the database does not answer (%s); trying again until it does",
                        what,
                        type(exc).__name__,
                    )
                await asyncio.sleep(retry_pause(attempt))
                attempt += 1
                continue
            if attempt:
                logger.warning("%s done: the database answers again", what)
            return result


async def _guard(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("run listener failed")


__all__ = ["DATABASE_RETRY_S", "Clock", "Listener", "RunCore", "RunJob", "retry_pause"]
