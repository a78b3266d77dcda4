"""Workspace schedules: the `backfill_schedules` table and the APScheduler jobs kept in step.

The table is the truth; APScheduler only holds one in-memory job per active schedule
(`schedule:<workspace_id>`), rebuilt from the table by `load_all`. A fire that finds the
database away waits for it and goes ahead once it answers, as long as it is within the misfire
grace; later than that it is dropped with one clear log line (like any misfire).

APScheduler is used through its public API only: jobs run on a plain `AsyncIOExecutor`, and a
job learns its exact scheduled time from the EVENT_JOB_SUBMITTED listener (see "fire-time
capture" below). This service is the one place a fire is checked against the table and recorded
(`after_fire`); its `on_fire` (the run service) only claims it. Imports `db` and
`scheduler.cron`; never Slack or Block Kit code. One module (~550 lines) because a change and a
fire both keep the same pair in step, the row and the job, through the service's own state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import schedules as repo
from db.messages import ensure_workspace
from db.models import utcnow
from db.records import Schedule
from db.session import database_trouble, reading
from scheduler.cron import (
    ScheduleError,
    ScheduleSpec,
    build_trigger,
    next_fire_time,
)

logger = logging.getLogger(__name__)

EXECUTOR_ALIAS = "backfill.schedules"
JOB_ID_PREFIX = "schedule:"
# A fire missed by up to this much (a busy loop, a restart) still runs; later, it is skipped.
MISFIRE_GRACE_SECONDS = 300
# Pauses between attempts of a fire that found the database away (capped at the last one).
FIRE_RETRY_S = (0.5, 1.0, 2.0, 3.0, 5.0)

OnFire = Callable[[str, int, datetime], Awaitable[None]]
Clock = Callable[[], datetime]

_CREATE_HINT = 'Create one with /backfill schedule "0 2 * * *".'


def spec_of(row: Schedule) -> ScheduleSpec:
    """What a stored schedule was made from: the trigger is built from this."""
    return ScheduleSpec(
        cron_expression=row.cron_expression,
        timezone=row.timezone,
        days_to_backfill=row.days_to_backfill,
        include_all_channels=row.include_all_channels,
        channel_ids=tuple(row.channel_ids),
    )


def job_id(workspace_id: str) -> str:
    """The APScheduler job id of a workspace's schedule."""
    return f"{JOB_ID_PREFIX}{workspace_id}"


def _job_name(row: Schedule) -> str:
    # The name carries what the job was built from, so `load_all` can tell a stale job.
    return f"backfill {row.workspace_id} #{row.schedule_id} [{row.cron_expression}] {row.timezone}"


# --- fire-time capture ------------------------------------------------------------------------
#
# APScheduler 3 calls a job function with its args only, never with the time it was scheduled
# for, and that time is the claim key of a scheduled run: (schedule_id, fire_time). Rather than
# guess it back from the trigger and the clock, the service listens to the scheduler's public
# EVENT_JOB_SUBMITTED, whose `scheduled_run_times` are APScheduler's exact run times, and the job
# takes its own from there. APScheduler dispatches that event in the pass that submits the job,
# before the job's task first runs; the job still waits one loop turn for it, should a task ever
# start eagerly. Each job names its service by a key in its kwargs (two services, e.g. two test
# nodes, may share a process), and jobs coalesce with `max_instances=1`: the time a job takes is
# the one submitted for that very run.

_SERVICES: weakref.WeakValueDictionary[str, ScheduleService] = weakref.WeakValueDictionary()
_SERVICE_KEYS = itertools.count(1)


async def fire_schedule(workspace_id: str, schedule_id: int, service: str | None = None) -> None:
    """The APScheduler job function of every schedule: ids in, the service does the rest."""
    owner = _SERVICES.get(service) if service is not None else None
    if owner is None:
        raise RuntimeError(
            f"fire_schedule runs only as a ScheduleService job on its {EXECUTOR_ALIAS!r} executor"
        )
    await owner._run_job(workspace_id, schedule_id)


# --- the service ------------------------------------------------------------------------------


class ScheduleService:
    """Create, replace, pause, resume and delete a workspace's schedule, and fire it.

    Every change is committed to the table first, then mirrored in the scheduler; `next_run_at`
    in the table always matches the job's next fire (null while paused). `on_fire(workspace_id,
    schedule_id, fire_time)` receives the exact scheduled instant (aware UTC), the claim key of
    the run: every process fires, the database decides which one runs.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        scheduler: AsyncIOScheduler,
        on_fire: OnFire,
        *,
        clock: Clock = utcnow,
        misfire_grace_time: int = MISFIRE_GRACE_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._scheduler = scheduler
        self._on_fire = on_fire
        self._clock = clock
        self._grace = misfire_grace_time
        self._closing = False
        self._sync_failing = False
        self._key = f"schedules-{next(_SERVICE_KEYS)}"
        _SERVICES[self._key] = self
        # job id -> (scheduled fire time, job name) of the run APScheduler just submitted
        self._submitted: dict[str, tuple[datetime, str]] = {}
        self._in_flight: set[asyncio.Task[object]] = set()  # the job tasks running a fire now
        self._in_hand: dict[str, tuple[datetime, Schedule]] = {}  # workspace -> fire being run
        self._closing_listeners: list[Callable[[], Awaitable[None]]] = []
        try:
            scheduler.remove_executor(EXECUTOR_ALIAS, shutdown=False)
        except KeyError:
            pass
        scheduler.add_executor(AsyncIOExecutor(), alias=EXECUTOR_ALIAS)
        scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop firing, let the fires already started finish (up to `timeout`), then stop
        APScheduler. A fire holds database connections: cancelled mid-query (APScheduler's
        shutdown cancels running jobs, and so does the event loop's end), SQLAlchemy's shielded
        close of an aiosqlite connection can wait forever, and the process never exits."""
        self._closing = True  # a fire waiting for the database stops waiting
        for listener in self._closing_listeners:  # and one waiting for a run slot goes ahead
            await listener()
        if not self._scheduler.running:
            return
        self._scheduler.pause()  # no new fire starts
        await asyncio.sleep(0)  # a fire submitted just before the pause starts (and is counted)
        pending = {t for t in self._in_flight if not t.done()}
        if pending:
            _done, late = await asyncio.wait(pending, timeout=timeout)
            if late:
                logger.warning(
                    "%d schedule fire(s) still going after %.0f s: cancelled", len(late), timeout
                )
        self._scheduler.remove_listener(self._on_submitted)
        self._scheduler.shutdown(wait=False)

    def on_closing(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Await `listener()` when `close` begins, before it waits for the fires under way."""
        self._closing_listeners.append(listener)

    # -- reads --

    async def get(self, workspace_id: str) -> Schedule | None:
        """The workspace's schedule, or None (a read that never waits for SQLite's write lock)."""
        async with reading(self._sessions) as session:
            return await repo.get_schedule(session, workspace_id)

    # -- changes --

    async def save(
        self,
        workspace_id: str,
        spec: ScheduleSpec,
        created_by: str,
        *,
        workspace_name: str | None = None,
    ) -> Schedule:
        """Create the workspace's schedule or replace it (same `schedule_id`); it is active after.

        The workspace row is created when missing (named `workspace_name`, else its id until
        `ensure_workspace` names it); an existing name is only changed when one is given.
        """
        build_trigger(spec)  # a hand-made spec is checked like a typed one
        now = self._now()
        upcoming = next_fire_time(spec, now)
        async with self._sessions.begin() as session:
            if workspace_name is not None:
                await ensure_workspace(session, workspace_id, workspace_name)
            elif not await repo.workspace_exists(session, workspace_id):
                await ensure_workspace(session, workspace_id, workspace_id)
            row = await repo.upsert_schedule(
                session,
                workspace_id,
                cron_expression=spec.cron_expression,
                timezone=spec.timezone,
                days_to_backfill=spec.days_to_backfill,
                include_all_channels=spec.include_all_channels,
                channel_ids=spec.channel_ids,
                created_by=created_by,
                next_run_at=upcoming,
                now=now,
            )
        self._install(row, upcoming)
        return row

    async def pause(self, workspace_id: str) -> Schedule:
        """Stop firing (the job is removed, `next_run_at` cleared); the schedule is kept."""
        async with self._sessions.begin() as session:
            row = await repo.get_schedule(session, workspace_id)
            if row is None:
                raise ScheduleError(f"There is no schedule to pause. {_CREATE_HINT}")
            if row.is_active:
                row = await repo.set_active(
                    session, workspace_id, False, next_run_at=None, now=self._now()
                )
                assert row is not None
                paused = True
            else:
                paused = False
        self._remove(workspace_id)
        if not paused:
            raise ScheduleError("The schedule is already paused. Resume it with /backfill resume.")
        return row

    async def resume(self, workspace_id: str) -> Schedule:
        """Fire again from the next matching time (missed fires are not made up)."""
        now = self._now()
        async with self._sessions.begin() as session:
            row = await repo.get_schedule(session, workspace_id)
            if row is None:
                raise ScheduleError(f"There is no schedule to resume. {_CREATE_HINT}")
            resumed = not row.is_active
            upcoming = next_fire_time(spec_of(row), now)
            if resumed:
                row = await repo.set_active(
                    session, workspace_id, True, next_run_at=upcoming, now=now
                )
                assert row is not None
        if not resumed:
            self._ensure_installed(row, now)
            raise ScheduleError("The schedule is already active. Pause it with /backfill pause.")
        self._install(row, upcoming)
        return row

    async def delete(self, workspace_id: str) -> Schedule:
        """Delete the schedule and its job; returns it as it was. Past runs are kept."""
        async with self._sessions.begin() as session:
            row = await repo.delete_schedule(session, workspace_id)
        self._remove(workspace_id)
        if row is None:
            raise ScheduleError(f"There is no schedule to delete. {_CREATE_HINT}")
        return row

    async def after_fire(self, workspace_id: str, fire_time: datetime) -> Schedule | None:
        """Record a fire: `last_run_at` = `fire_time` (never moves back), `next_run_at` = the
        first fire after both `fire_time` and now. None when the schedule is gone."""
        now = self._now()
        async with self._sessions.begin() as session:
            row = await repo.get_schedule(session, workspace_id)
            if row is None:
                return None
            upcoming = (
                next_fire_time(spec_of(row), max(fire_time.astimezone(UTC), now))
                if row.is_active
                else None
            )
            row = await repo.mark_fired(
                session,
                workspace_id,
                row.schedule_id,
                fire_time=fire_time.astimezone(UTC),
                next_run_at=upcoming,
            )
        return row

    # -- start-up and reconciliation --

    async def load_all(self) -> list[Schedule]:
        """Make the scheduler's jobs match the active schedules in the table (idempotent).

        Adds or replaces a job per active schedule, removes jobs of schedules paused or deleted
        meanwhile (by this or another process), and refreshes `next_run_at`. A fire missed by
        less than the misfire grace (e.g. during a restart) still runs once. A row that no
        longer validates is logged and skipped. Call it on start, and periodically when
        several processes share the database.
        """
        now = self._now()
        async with self._sessions() as session:
            rows = await repo.list_active_schedules(session)
        loaded: list[Schedule] = []
        updates: dict[str, datetime | None] = {}
        for row in rows:
            try:
                upcoming = self._ensure_installed(row, now)
            except ScheduleError as exc:
                logger.warning(
                    "schedule of %s is invalid and not loaded: %s", row.workspace_id, exc
                )
                self._remove(row.workspace_id)
                continue
            if upcoming != row.next_run_at:
                updates[row.workspace_id] = upcoming
            loaded.append(row)
        wanted = {job_id(row.workspace_id) for row in rows}
        for job in self._scheduler.get_jobs():
            if job.id.startswith(JOB_ID_PREFIX) and job.id not in wanted:
                self._remove(job.id.removeprefix(JOB_ID_PREFIX))
        if updates:
            async with self._sessions.begin() as session:
                for workspace_id, upcoming in updates.items():
                    await repo.set_next_run_at(session, workspace_id, upcoming)
            loaded = [
                replace(s, next_run_at=updates[s.workspace_id]) if s.workspace_id in updates else s
                for s in loaded
            ]
        return loaded

    async def sync(self) -> None:
        """`load_all` for the periodic re-read of the table. While the database does not answer
        it logs one line when that starts and one when it ends, not a traceback a minute."""
        try:
            await self.load_all()
        except Exception as exc:
            if not database_trouble(exc):
                raise
            if not self._sync_failing:
                self._sync_failing = True
                logger.warning(
                    "schedules not re-read: the database does not answer (%s); "
                    "trying again at the next sync",
                    type(exc).__name__,
                )
            return
        if self._sync_failing:
            self._sync_failing = False
            logger.warning("schedules re-read: the database answers again")

    # -- firing --

    def fire_in_hand(self, workspace_id: str, fire_time: datetime) -> Schedule | None:
        """The schedule as read for the fire of `workspace_id` at `fire_time` that this service
        is handling now (`on_fire` is running for it), else None. The service checked that fire
        against the table and records it (`after_fire`) when `on_fire` returns: the one place a
        fire is checked and recorded. A fire made by hand (no APScheduler job) is not in hand."""
        in_hand = self._in_hand.get(workspace_id)
        if in_hand is None or in_hand[0] != fire_time.astimezone(UTC):
            return None
        return in_hand[1]

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        """EVENT_JOB_SUBMITTED: note the exact scheduled time of the run just submitted."""
        job_key: str = event.job_id
        if not job_key.startswith(JOB_ID_PREFIX) or not event.scheduled_run_times:
            return
        job = self._scheduler.get_job(job_key, event.jobstore)
        if job is None:
            return
        fire_time: datetime = event.scheduled_run_times[-1]  # one: jobs coalesce
        self._submitted[job_key] = (fire_time.astimezone(UTC), job.name)

    async def _run_job(self, workspace_id: str, schedule_id: int) -> None:
        """One run of a schedule's job: its submitted fire time in, `_handle_fire` for it."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            submitted = self._submitted.pop(job_id(workspace_id), None)
            if submitted is None:  # the task started before the submission event was dispatched
                await asyncio.sleep(0)
                submitted = self._submitted.pop(job_id(workspace_id), None)
            if submitted is None:
                raise RuntimeError(f"no submission seen for {job_id(workspace_id)}")
            fire_time, built_from = submitted
            await self._handle_fire(workspace_id, schedule_id, fire_time, built_from=built_from)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _handle_fire(
        self, workspace_id: str, schedule_id: int, fire_time: datetime, *, built_from: str
    ) -> None:
        """Run one fire of a job, waiting for the database while it does not answer.

        Each attempt is whole and safe to repeat: the (schedule, fire time) claim keeps a fire to
        one run, and recording a fire twice changes nothing. While it waits, APScheduler holds
        the job's next fires (`max_instances=1`) and coalesces them when this one ends.
        """
        fire_time = fire_time.astimezone(UTC)
        attempt = 0
        while True:
            try:
                await self._fire_once(workspace_id, schedule_id, fire_time, built_from=built_from)
            except Exception as exc:
                if not database_trouble(exc):
                    raise
                late = (self._now() - fire_time).total_seconds()
                if late > self._grace or self._closing:
                    logger.error(
                        "fire of %s at %s dropped: the database did not answer for %.0f s "
                        "(%s)%s; the schedule fires again at its next time",
                        job_id(workspace_id),
                        fire_time.isoformat(),
                        late,
                        type(exc).__name__,
                        " and the app is stopping"
                        if self._closing
                        else f", longer than the {self._grace} s misfire grace",
                    )
                    return
                if attempt == 0:
                    logger.warning(
                        "fire of %s at %s waits: the database does not answer (%s); it goes "
                        "ahead when it does, up to %s s after its time",
                        job_id(workspace_id),
                        fire_time.isoformat(),
                        type(exc).__name__,
                        self._grace,
                    )
                await asyncio.sleep(FIRE_RETRY_S[min(attempt, len(FIRE_RETRY_S) - 1)])
                attempt += 1
                continue
            if attempt:
                logger.warning(
                    "fire of %s at %s went ahead: the database answers again",
                    job_id(workspace_id),
                    fire_time.isoformat(),
                )
            return

    async def _fire_once(
        self, workspace_id: str, schedule_id: int, fire_time: datetime, *, built_from: str
    ) -> None:
        """Check the fire against the table, call `on_fire`, record it.

        The table decides: a fire of a schedule that was paused, deleted or changed since this
        job was built (perhaps by another process) only re-syncs the job.
        """
        async with self._sessions() as session:
            row = await repo.get_schedule(session, workspace_id)
        if (
            row is None
            or not row.is_active
            or row.schedule_id != schedule_id
            or _job_name(row) != built_from
        ):
            logger.info("stale fire of %s at %s skipped", job_id(workspace_id), fire_time)
            if row is None or not row.is_active:
                self._remove(workspace_id)
            else:
                self._ensure_installed(row, self._now())
            return
        self._in_hand[workspace_id] = (fire_time, row)
        try:
            await self._on_fire(workspace_id, schedule_id, fire_time)
        finally:
            self._in_hand.pop(workspace_id, None)
            await self.after_fire(workspace_id, fire_time)

    # -- scheduler side --

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _install(self, row: Schedule, upcoming: datetime | None) -> None:
        if upcoming is None:
            self._remove(row.workspace_id)
            return
        self._scheduler.add_job(
            fire_schedule,
            trigger=build_trigger(spec_of(row)),
            args=(row.workspace_id, row.schedule_id),
            kwargs={"service": self._key},
            id=job_id(row.workspace_id),
            name=_job_name(row),
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=self._grace,
            max_instances=1,
            executor=EXECUTOR_ALIAS,
            next_run_time=upcoming,
        )

    def _ensure_installed(self, row: Schedule, now: datetime) -> datetime | None:
        """Install the row's job unless an identical one is there; returns its next fire."""
        job = self._scheduler.get_job(job_id(row.workspace_id))
        if (
            job is not None
            and job.name == _job_name(row)
            and job.kwargs.get("service") == self._key
        ):
            upcoming: datetime | None = job.next_run_time
            return None if upcoming is None else upcoming.astimezone(UTC)
        upcoming = next_fire_time(spec_of(row), now)
        missed = row.next_run_at
        if missed is not None and now - timedelta(seconds=self._grace) <= missed <= now:
            # Due while no process was running it (every write of a spec rewrites next_run_at,
            # so it is a fire of this spec): APScheduler runs it at once, and the
            # (schedule, fire time) claim keeps it to one run across processes.
            upcoming = missed
        self._install(row, upcoming)
        return upcoming

    def _remove(self, workspace_id: str) -> None:
        try:
            self._scheduler.remove_job(job_id(workspace_id))
        except JobLookupError:
            pass


__all__ = [
    "EXECUTOR_ALIAS",
    "JOB_ID_PREFIX",
    "MISFIRE_GRACE_SECONDS",
    "ScheduleService",
    "fire_schedule",
    "job_id",
    "spec_of",
]
