"""The run lifecycle: start (manual or scheduled), queue, run, heartbeat, cancel, retry, recover,
finish and notify. `RunService` is what handlers and the scheduler call.

The database decides who runs what, so several app processes can share one PostgreSQL: a run
is a `running` row (the partial unique index allows one per workspace), a scheduled fire is
claimed by UNIQUE(schedule_id, fire_time), the owning process beats `heartbeat_at` and reads
cancel requests from the row, and any process (this one included, for a run it no longer holds)
takes over a run whose heartbeat went stale.

The database may go away and come back at any moment. A run that loses it mid-way waits for it
and resumes from its checkpoints; a run whose end cannot be written keeps trying (with backoff)
until the database answers, and stays in this process's hands meanwhile, so it is never left
`running` with nobody beating it. Imports `db`, `blocks` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.limits import MAX_DAYS, MIN_DAYS
from blocks.models import ProgressInfo, Totals
from db import runs as repo
from db import schedules as schedules_repo
from db.models import utcnow
from db.session import database_trouble, reading
from scheduler.backfill.engine import BackfillEngine, RunRequest
from scheduler.backfill.progress import Progress, RunResult
from scheduler.cron import ScheduleError
from scheduler.heartbeat import Pulse, process_owner_id
from scheduler.log_context import working_for
from scheduler.notify import Notifier, ProgressDM
from scheduler.outcomes import PERMANENT_REASONS, decide_outcome
from scheduler.run_rows import RunEvent, RunRefused, RunRow
from scheduler.schedules import Schedule, ScheduleService

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Listener = Callable[["RunEvent"], "Awaitable[None] | None"]
T = TypeVar("T")

# Pauses between attempts to reach a database that does not answer: quick at first (a blip),
# then every few seconds, so a run goes on within seconds of the database being back.
DATABASE_RETRY_S = (0.5, 1.0, 2.0, 3.0, 5.0)
# A run resumes after this many database outages; one more and it fails (and says why).
MAX_OUTAGE_RESUMES = 5
# On shutdown, how long writes of a run's state may wait for a database that does not answer
# (a run not released is taken over after its heartbeat goes stale: nothing is lost).
STOP_DATABASE_WAIT_S = 10.0


@dataclass(eq=False)
class _Job:
    """A run this process owns: queued for a slot, or running."""

    run: RunRow
    recipient: str | None  # who hears about it by DM
    base_messages: int  # stored by earlier attempts of the same job_run_id
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    shutdown: bool = False
    lost: bool = False  # another process took the run over: write nothing more
    progress: Progress | None = None
    dm: ProgressDM | None = None

    @property
    def job_run_id(self) -> int:
        return self.run.job_run_id

    def counts(self) -> tuple[int | None, int | None]:
        if self.progress is None:
            return None, None
        return self.base_messages + self.progress.messages_stored, self.progress.channels_done


def _ago(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _who(run: RunRow | repo.StoredRun) -> str:
    if run.job_type == "manual" and run.triggered_by:
        return f"started by <@{run.triggered_by}>"
    return "started by the schedule"


def _wall(moment: datetime, zone: str) -> datetime:
    try:
        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001 - an invalid zone never reaches a stored schedule
        tz = ZoneInfo("UTC")
    return moment.astimezone(tz).replace(tzinfo=None)


class RunService:
    """Runs backfills for the workspaces of this app, a bounded number at a time per process."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        engine: BackfillEngine,
        notifier: Notifier | None,
        schedules: ScheduleService | None,
        run_concurrency: int = 2,
        run_retries: int = 2,
        retry_backoff: Sequence[float] = (60, 300),
        heartbeat_s: float = 5,
        stale_after_s: float = 20,
        max_interruptions: int = 3,
        stop_timeout_s: float = 60,
        clock: Clock = utcnow,
        owner: str | None = None,
    ) -> None:
        if run_concurrency < 1:
            raise ValueError("run_concurrency must be at least 1")
        self._sessions = sessions
        self._engine = engine
        self._notifier = notifier
        self._schedules = schedules
        self._concurrency = run_concurrency
        self._retries = max(0, run_retries)
        self._backoff = tuple(float(b) for b in retry_backoff) or (60.0,)
        self._stale_after = timedelta(seconds=stale_after_s)
        self._max_interruptions = max_interruptions
        self._stop_timeout = stop_timeout_s
        self._clock = clock
        self.owner = owner or process_owner_id()
        self._pulse = Pulse(self._tick, heartbeat_s, outage=database_trouble)
        self._queue: deque[_Job] = deque()  # in arrival order
        self._wakeup = asyncio.Condition()
        self._jobs: dict[int, _Job] = {}  # every run this process owns
        self._active: set[int] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._progress: dict[str, Progress] = {}
        self._listeners: list[Listener] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._retry_timers: dict[int, asyncio.TimerHandle] = {}
        self._started = False
        self._stopping = False
        self._give_up_at = float("inf")  # when stopping: monotonic deadline for database waits

    # -- life of the service ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start the slots, then heartbeats and recovery (a first pass at once, so runs left by
        a dead or stopped process resume right away)."""
        if self._started:
            return
        self._started, self._stopping = True, False
        self._give_up_at = float("inf")
        self._workers = [
            asyncio.create_task(self._worker(), name=f"backfill-run-slot-{i}")
            for i in range(self._concurrency)
        ]
        self._pulse.start()

    async def stop(self) -> None:
        """Graceful shutdown: runs stop at a page boundary and stay `running`, released (owner
        cleared, heartbeat at the epoch) so the next process start resumes them at once."""
        if not self._started:
            return
        self._stopping = True
        self._give_up_at = time.monotonic() + min(self._stop_timeout, STOP_DATABASE_WAIT_S)
        await self._pulse.stop()
        for handle in self._retry_timers.values():
            handle.cancel()  # retry_at is in the row: whoever is up when it is due retries
        self._retry_timers.clear()
        for job in list(self._jobs.values()):
            job.shutdown = True
            job.cancel.set()
        async with self._wakeup:
            self._wakeup.notify_all()
        deadline = time.monotonic() + self._stop_timeout
        while self._jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._workers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for job in list(self._jobs.values()):  # stuck past the timeout: let go anyway
            await self._release(job)
        self._jobs.clear()
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)
        self._started = False

    async def wait_idle(self, timeout: float = 120) -> None:
        """Wait until this process has no run queued or running and no automatic retry pending
        (tests)."""
        deadline = time.monotonic() + timeout
        while self._jobs or self._retry_timers or self._background:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"runs still busy: {sorted(self._jobs)}, retries {sorted(self._retry_timers)}"
                )
            await asyncio.sleep(0.02)

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(RunEvent)` (sync or async) on every run state or progress change.
        Progress events come as often as pages are written: throttle on the caller's side."""
        self._listeners.append(callback)

    # -- reads -----------------------------------------------------------------------------------
    async def current(self, workspace_id: str) -> RunRow | None:
        """The workspace's running run (whichever process runs it), or None."""
        async with reading(self._sessions) as session:
            run = await repo.running_run(session, workspace_id)
        return None if run is None else RunRow.of(run)

    def progress(self, workspace_id: str) -> Progress | None:
        """The latest progress of the workspace's run, when this process runs it."""
        return self._progress.get(workspace_id)

    async def history(self, workspace_id: str, limit: int = 10) -> list[RunRow]:
        """The workspace's last `limit` runs, newest first."""
        async with reading(self._sessions) as session:
            runs = await repo.list_runs(session, workspace_id, limit)
        return [RunRow.of(r) for r in runs]

    async def get(self, job_run_id: int) -> RunRow | None:
        async with reading(self._sessions) as session:
            run = await repo.get_run(session, job_run_id)
        return None if run is None else RunRow.of(run)

    async def totals(self, workspace_id: str) -> Totals:
        """Messages stored, channels with messages, and when the last successful run ended."""
        async with reading(self._sessions) as session:
            messages, channels, last = await repo.run_totals(session, workspace_id)
        return Totals(messages_stored=messages, channels=channels, last_success_at=last)

    async def paused_reason(self, workspace_id: str) -> str | None:
        """Why the app paused the workspace's schedule, if it did."""
        async with reading(self._sessions) as session:
            return await repo.get_paused_reason(session, workspace_id)

    # -- starting runs ---------------------------------------------------------------------------
    async def start_manual(
        self,
        workspace_id: str,
        user_id: str,
        *,
        days: int = 7,
        channel_ids: Sequence[str] | None = None,
    ) -> RunRow:
        """Start a manual run of the last `days` days (all channels, or `channel_ids`).
        Raises `RunRefused` when the workspace already has a run going."""
        if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
            raise RunRefused(f"Days must be a whole number from {MIN_DAYS} to {MAX_DAYS}.")
        channels = tuple(dict.fromkeys(channel_ids)) if channel_ids else None
        row = await self._insert(
            workspace_id,
            job_type="manual",
            triggered_by=user_id,
            days=days,
            channel_ids=channels,
        )
        self._enqueue(_Job(row, user_id, 0))
        return row

    async def on_schedule_fire(
        self, workspace_id: str, schedule_id: int, fire_time: datetime
    ) -> RunRow | None:
        """A schedule fired (pass this as `ScheduleService`'s `on_fire`). Every process gets the
        fire; the one whose insert of (schedule_id, fire_time) wins runs it, the others return
        None. The second fire of a repeated wall-clock time (DST fall-back) is skipped.

        A fire `ScheduleService` is handling comes with the schedule it read, and that service
        records it when this returns; a fire made by hand (another process's test, a CLI) is
        read here and recorded here, once."""
        fire_time = fire_time.astimezone(UTC)
        schedules = self._schedules
        schedule: Schedule | schedules_repo.StoredSchedule | None = (
            None if schedules is None else schedules.fire_in_hand(workspace_id, fire_time)
        )
        by_hand = schedule is None
        if schedule is None:
            async with reading(self._sessions) as session:
                schedule = await schedules_repo.get_schedule(session, workspace_id)
        if schedule is None or schedule.schedule_id != schedule_id or not schedule.is_active:
            logger.info(
                "fire of schedule #%s of %s ignored: schedule gone or paused",
                schedule_id,
                workspace_id,
            )
            return None
        last = schedule.last_run_at
        if (
            last is not None
            and last != fire_time
            and _wall(last, schedule.timezone) == _wall(fire_time, schedule.timezone)
        ):
            logger.info(
                "second fire of %s at the repeated local time %s skipped",
                workspace_id,
                _wall(fire_time, schedule.timezone),
            )
            return None
        row: RunRow | None = None
        try:
            row = await self._insert(
                workspace_id,
                job_type="scheduled",
                schedule_id=schedule_id,
                fire_time=fire_time,
                days=schedule.days_to_backfill,
                channel_ids=None if schedule.include_all_channels else schedule.channel_ids,
            )
        except RunRefused as refused:
            async with reading(self._sessions) as session:
                claimed = await repo.run_for_fire(session, schedule_id, fire_time)
            if claimed is not None:
                logger.info(
                    "fire %s of %s already claimed by run #%s",
                    fire_time.isoformat(),
                    workspace_id,
                    claimed.job_run_id,
                )
            else:
                logger.warning("scheduled run of %s skipped: %s", workspace_id, refused)
        if row is not None:
            # In hand at once (before any other wait): a claimed run is never without an owner
            # beating it, and goes ahead even when recording the fire below fails.
            self._enqueue(_Job(row, schedule.created_by, 0))
        if by_hand and schedules is not None:
            await schedules.after_fire(workspace_id, fire_time)
        return row

    async def retry(self, workspace_id: str, job_run_id: int, user_id: str) -> RunRow:
        """ "Retry now": a new run of the same kind and window as a failed or cancelled run. A
        pending automatic retry of that run is dropped."""
        async with reading(self._sessions) as session:
            old = await repo.get_run(session, job_run_id)
        if old is None or old.workspace_id != workspace_id:
            raise RunRefused(f"There is no run #{job_run_id} in this workspace.")
        if old.status == "running":
            raise RunRefused(f"Run #{job_run_id} is still running.")
        if old.status == "success":
            raise RunRefused(
                f"Run #{job_run_id} finished successfully; start a new one with /backfill run."
            )
        row = await self._insert(
            workspace_id,
            job_type=old.job_type,
            triggered_by=user_id if old.job_type == "manual" else None,
            schedule_id=old.schedule_id if old.job_type == "scheduled" else None,
            days=old.days,
            channel_ids=old.channel_ids,
            clear_retry_of=job_run_id,
        )
        self._cancel_retry_timer(job_run_id)
        self._enqueue(_Job(row, user_id, 0))
        return row

    async def cancel(
        self, workspace_id: str, user_id: str, *, is_admin: bool, job_run_id: int | None = None
    ) -> RunRow:
        """Ask the workspace's running run to stop (within one page, whichever process runs it).
        Members may cancel only manual runs they started. With `job_run_id` (a Cancel button
        names its run), only that run: a button left on screen never stops a newer run."""
        async with reading(self._sessions) as session:
            run = await repo.running_run(session, workspace_id)
        if job_run_id is not None and (run is None or run.job_run_id != job_run_id):
            raise RunRefused(f"Run #{job_run_id} has already ended; nothing was cancelled.")
        if run is None:
            raise RunRefused("There is no backfill running to cancel.")
        if not is_admin and not (run.job_type == "manual" and run.triggered_by == user_id):
            raise RunRefused(
                f"Run #{run.job_run_id} was {_who(run)}; only an admin can cancel a run "
                "someone else started."
            )
        async with self._sessions.begin() as session:
            stored = await repo.request_cancel(session, run.job_run_id, user_id, self._now())
        if stored is None:
            raise RunRefused(f"Run #{run.job_run_id} has just ended; there is nothing to cancel.")
        row = RunRow.of(stored)
        job = self._jobs.get(row.job_run_id)
        if job is not None:
            job.cancel_requested = True
            job.cancel.set()
            await self._end_if_queued(job)
        self._emit(RunEvent("cancel_requested", workspace_id, row))
        return row

    async def _end_if_queued(self, job: _Job) -> None:
        """A cancelled run still waiting for a slot ends at once, without running."""
        async with self._wakeup:
            if job not in self._queue:
                return
            self._queue.remove(job)
        try:
            if not job.lost:
                await self._finish(job, RunResult(cancelled=True))
        finally:
            self._jobs.pop(job.job_run_id, None)

    # -- internals: claiming ---------------------------------------------------------------------
    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    async def _insert(
        self,
        workspace_id: str,
        *,
        job_type: str,
        triggered_by: str | None = None,
        schedule_id: int | None = None,
        fire_time: datetime | None = None,
        days: int | None = None,
        channel_ids: Sequence[str] | None = None,
        clear_retry_of: int | None = None,
    ) -> RunRow:
        if self._stopping:
            raise RunRefused("The app is restarting; try again in a minute.")
        try:
            async with self._sessions.begin() as session:
                await repo.ensure_workspace_row(session, workspace_id)
                stored = await repo.insert_run(
                    session,
                    workspace_id=workspace_id,
                    job_type=job_type,
                    owner=self.owner,
                    now=self._now(),
                    triggered_by=triggered_by,
                    schedule_id=schedule_id,
                    fire_time=fire_time,
                    days=days,
                    channel_ids=channel_ids,
                )
                if clear_retry_of is not None:
                    await repo.clear_retry(session, clear_retry_of)
        except IntegrityError:
            raise RunRefused(await self._busy_message(workspace_id)) from None
        return RunRow.of(stored)

    async def _busy_message(self, workspace_id: str) -> str:
        async with reading(self._sessions) as session:
            running = await repo.running_run(session, workspace_id)
        if running is None:
            return "Another backfill has just started or ended in this workspace; try again."
        return (
            f"A backfill is already running in this workspace: run #{running.job_run_id} "
            f"({running.job_type}, {_who(running)} at {_ago(running.started_at)}). "
            "Wait for it to finish, or stop it with /backfill cancel."
        )

    def _enqueue(self, job: _Job) -> None:
        self._jobs[job.job_run_id] = job
        self._queue.append(job)
        if not self._started:
            logger.warning("run #%s queued before RunService.start()", job.job_run_id)
        self._spawn(self._notify_slots())
        self._emit(RunEvent("queued", job.run.workspace_id, job.run))

    async def _notify_slots(self) -> None:
        async with self._wakeup:
            self._wakeup.notify_all()

    # -- internals: slots ------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            async with self._wakeup:
                await self._wakeup.wait_for(lambda: bool(self._queue))
                job = self._queue.popleft()
            self._active.add(job.job_run_id)
            try:
                # Every log line of the run (engine, gateway, writer) names its ids in JSON logs.
                with working_for(workspace_id=job.run.workspace_id, job_run_id=job.job_run_id):
                    await self._execute(job)
            except asyncio.CancelledError:
                await asyncio.shield(self._release(job))
                raise
            except Exception:
                logger.exception("run #%s crashed in the run service", job.job_run_id)
                await self._release(job)
            finally:
                self._active.discard(job.job_run_id)
                self._jobs.pop(job.job_run_id, None)
                if self._progress.get(job.run.workspace_id) is job.progress:
                    self._progress.pop(job.run.workspace_id, None)

    async def _execute(self, job: _Job) -> None:
        run = job.run
        if self._stopping or job.shutdown:
            await self._release(job)
            return
        if job.cancel.is_set():
            if job.lost:
                return
            await self._finish(job, RunResult(cancelled=True))
            return
        self._emit(RunEvent("started", run.workspace_id, run))
        if run.job_type == "manual" and job.recipient and self._notifier is not None:
            job.dm = await self._notifier.progress_started(
                job.recipient,
                run.job_run_id,
                run.started_at,
                ProgressInfo(
                    0, 0, job.base_messages, started_at=run.started_at, job_run_id=run.job_run_id
                ),
            )
        request = RunRequest(
            workspace_id=run.workspace_id,
            job_run_id=run.job_run_id,
            days=run.days or 7,
            incremental=run.job_type == "scheduled",
            channel_ids=list(run.channel_ids) if run.channel_ids else None,
            now=run.started_at.timestamp(),
        )
        result = await self._run_engine(job, request)
        if job.lost:
            logger.warning(
                "run #%s was taken over by another process; stopped here", run.job_run_id
            )
            return
        if job.shutdown and not job.cancel_requested:
            job.progress = _final_progress(job, result)
            await self._release(job)
            return
        await self._finish(job, result)

    async def _run_engine(self, job: _Job, request: RunRequest) -> RunResult:
        """The engine's run of `job`; when the database goes away mid-way, wait for it and resume
        from the checkpoints (up to `MAX_OUTAGE_RESUMES` times). Never raises but cancellation."""
        outages = 0
        while True:
            try:
                return await self._engine.run(
                    request, progress=lambda p: self._on_progress(job, p), cancel=job.cancel
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = type(exc).__name__
                trouble = database_trouble(exc)
                if trouble and outages < MAX_OUTAGE_RESUMES and not job.cancel.is_set():
                    outages += 1
                    logger.warning(
                        "run #%s paused: the database does not answer (%s); it "
                        "resumes when the database is back",
                        job.job_run_id,
                        error,
                    )
                    if await self._await_database(job):
                        logger.warning(
                            "run #%s resumes: the database answers again", job.job_run_id
                        )
                        self._carry_over(job)
                        continue
                    if job.cancel_requested:  # cancelled while it waited: it ends cancelled
                        messages, channels = job.counts()
                        return RunResult(
                            messages_collected=(messages or job.base_messages) - job.base_messages,
                            channels_processed=channels or 0,
                            cancelled=True,
                        )
                elif trouble:
                    logger.warning(
                        "run #%s stopped: the database does not answer (%s)", job.job_run_id, error
                    )
                else:
                    logger.exception("run #%s stopped on an internal error", job.job_run_id)
                messages, channels = job.counts()
                return RunResult(
                    messages_collected=(messages or job.base_messages) - job.base_messages,
                    channels_processed=channels or 0,
                    error=error,
                    error_kind="database" if trouble else "internal",
                )

    def _carry_over(self, job: _Job) -> None:
        """Before the engine runs `job` again: what it stored so far becomes the base (the new
        engine run counts from zero, and resumes from the checkpoints)."""
        if job.progress is not None:
            job.base_messages += job.progress.messages_stored
            job.progress = None

    async def _await_database(self, job: _Job) -> bool:
        """Wait until the database answers a heartbeat of `job`. False when the job must not
        resume: this process is stopping, the run was taken over, or it was cancelled meanwhile
        (its cancel flag is then set, for the caller to end it)."""
        attempt = 0
        while not (self._stopping or job.shutdown or job.lost):
            try:
                async with self._sessions.begin() as session:
                    messages, channels = job.counts()
                    owned, cancel = await repo.heartbeat(
                        session,
                        job.job_run_id,
                        self.owner,
                        self._now(),
                        messages_collected=messages,
                        channels_processed=channels,
                    )
            except Exception as exc:
                if not database_trouble(exc):
                    logger.exception("run #%s: heartbeat after an outage failed", job.job_run_id)
                    return False
                await asyncio.sleep(DATABASE_RETRY_S[min(attempt, len(DATABASE_RETRY_S) - 1)])
                attempt += 1
                continue
            if not owned:
                job.lost = True
                job.cancel.set()
                return False
            if cancel:
                job.cancel_requested = True
                job.cancel.set()
                return False
            return True
        return False

    async def _until_written(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        """`write()`, again with backoff while the database does not answer, until it does (or,
        when this process is stopping, until the shutdown's patience runs out: then the error
        is raised). One log line per outage, not one per attempt."""
        attempt = 0
        while True:
            try:
                result = await write()
            except Exception as exc:
                if not database_trouble(exc) or time.monotonic() > self._give_up_at:
                    raise
                if attempt == 0:
                    logger.warning(
                        "%s waits: the database does not answer (%s); trying again until it does",
                        what,
                        type(exc).__name__,
                    )
                await asyncio.sleep(DATABASE_RETRY_S[min(attempt, len(DATABASE_RETRY_S) - 1)])
                attempt += 1
                continue
            if attempt:
                logger.warning("%s done: the database answers again", what)
            return result

    async def _on_progress(self, job: _Job, progress: Progress) -> None:
        job.progress = progress
        shown = dataclasses.replace(
            progress, messages_stored=job.base_messages + progress.messages_stored
        )
        self._progress[job.run.workspace_id] = shown
        self._emit(RunEvent("progress", job.run.workspace_id, job.run, shown))
        if job.dm is not None and self._notifier is not None:
            info = ProgressInfo(
                channels_done=shown.channels_done,
                channels_total=shown.channels_total,
                messages_stored=shown.messages_stored,
                current_channel=shown.current_channel,
                calls=shown.calls,
                rate_limit_waits=shown.rate_limit_waits,
                eta_seconds=shown.eta_s,
                started_at=job.run.started_at,
                job_run_id=job.job_run_id,
            )
            # Off the engine's path: a slow chat.update must not hold up the pages.
            self._spawn(self._notifier.progress(job.dm, info))

    # -- internals: ending -----------------------------------------------------------------------
    async def _release(self, job: _Job) -> None:
        if job.lost:
            return
        messages, channels = job.counts()

        async def write() -> None:
            async with self._sessions.begin() as session:
                await repo.release_run(
                    session,
                    job.job_run_id,
                    self.owner,
                    messages_collected=messages,
                    channels_processed=channels,
                )

        try:
            await self._until_written(f"release of run #{job.job_run_id}", write)
        except Exception as exc:
            if database_trouble(exc):
                logger.warning(
                    "could not release run #%s: the database does not answer (%s); "
                    "it is resumed once its heartbeat is stale",
                    job.job_run_id,
                    type(exc).__name__,
                )
            else:
                logger.exception("could not release run #%s", job.job_run_id)
            return
        logger.info("run #%s released for another process to resume", job.job_run_id)
        self._emit(RunEvent("released", job.run.workspace_id, job.run))

    async def _finish(self, job: _Job, result: RunResult) -> None:
        run = job.run
        now = self._now()
        messages = job.base_messages + result.messages_collected
        outcome = decide_outcome(
            run,
            result,
            cancel_requested=job.cancel_requested,
            retries=self._retries,
            backoff=self._backoff,
            now=now,
        )
        retry_at = outcome.retry_at

        async def write() -> repo.StoredRun | None:
            async with self._sessions.begin() as session:
                return await repo.finish_run(
                    session,
                    run.job_run_id,
                    self.owner,
                    status=outcome.status,
                    now=now,
                    messages_collected=messages,
                    channels_processed=result.channels_processed,
                    channels_skipped=result.channels_skipped,
                    error_message=outcome.error_message,
                    retry_at=retry_at,
                )

        # Kept in hand (and beating, once the database is back) until its end is written.
        stored = await self._until_written(f"end of run #{run.job_run_id}", write)
        if stored is None:
            logger.warning("run #%s was no longer ours when it ended", run.job_run_id)
            return
        row = RunRow.of(stored)
        if outcome.pause_reason is not None:
            await self._pause_schedule(run.workspace_id, outcome.pause_reason)
        if retry_at is not None:
            self._arm_retry_timer(row.job_run_id, (retry_at - now).total_seconds())
        self._emit(RunEvent("finished", row.workspace_id, row))
        logger.info(
            "run #%s %s: %s messages, %s channels",
            row.job_run_id,
            row.status,
            row.messages_collected,
            row.channels_processed,
        )
        await self._tell(job, row, outcome.action)

    async def _tell(self, job: _Job, row: RunRow, action: str) -> None:
        notifier = self._notifier
        if notifier is None:
            return
        recipient = job.recipient or await self._schedule_creator(row)
        if job.dm is not None:
            self._spawn(notifier.close_progress(job.dm, row.info()))
        if recipient is None:
            logger.warning("nobody to tell about run #%s", row.job_run_id)
            return
        if row.status == "failed":
            await notifier.run_failed(recipient, row.info(), action_taken=action)
        else:
            await notifier.run_succeeded(recipient, row.info())

    async def _schedule_creator(self, run: RunRow | repo.StoredRun) -> str | None:
        if run.job_type == "manual":
            return run.triggered_by
        async with reading(self._sessions) as session:
            schedule = await schedules_repo.get_schedule(session, run.workspace_id)
        return None if schedule is None else schedule.created_by

    async def _pause_schedule(self, workspace_id: str, reason: str) -> None:
        if self._schedules is not None:
            with contextlib.suppress(ScheduleError):  # already paused
                await self._schedules.pause(workspace_id)
            async with self._sessions.begin() as session:
                await repo.set_paused_reason(session, workspace_id, reason)
            return
        async with self._sessions.begin() as session:
            await schedules_repo.set_active(session, workspace_id, False, next_run_at=None)
            await repo.set_paused_reason(session, workspace_id, reason)

    # -- internals: heartbeat, takeover, retries -------------------------------------------------
    async def _tick(self) -> None:
        if self._stopping:
            return
        await self._beat()
        await self._take_over_stale()
        await self._start_due_retries()

    async def _beat(self) -> None:
        jobs = list(self._jobs.values())
        if not jobs:
            return
        now = self._now()
        seen: list[tuple[_Job, bool, bool]] = []
        async with self._sessions.begin() as session:
            for job in jobs:
                messages, channels = job.counts()
                owned, cancel = await repo.heartbeat(
                    session,
                    job.job_run_id,
                    self.owner,
                    now,
                    messages_collected=messages,
                    channels_processed=channels,
                )
                seen.append((job, owned, cancel))
        for job, owned, cancel in seen:
            if not owned and job.job_run_id in self._jobs:
                job.lost = True
                job.cancel.set()
            elif cancel and not job.cancel_requested:
                logger.info("run #%s: cancel requested from another process", job.job_run_id)
                job.cancel_requested = True
                job.cancel.set()
                await self._end_if_queued(job)

    async def _take_over_stale(self) -> None:
        now = self._now()
        cutoff = now - self._stale_after
        async with reading(self._sessions) as session:
            stale = await repo.stale_runs(session, cutoff)
        for candidate in stale:
            if candidate.job_run_id in self._jobs:
                continue  # ours and in hand (perhaps waiting for the database to write its end)
            # Not in hand, even if the row names this process (its slot crashed before its end
            # was written): nobody beats it, so it is taken over like any other stale run.
            async with self._sessions.begin() as session:
                claimed = await repo.claim_stale(
                    session, candidate, self.owner, cutoff=cutoff, now=now
                )
            if claimed is None:
                continue  # another process got there first
            row = RunRow.of(claimed)
            recipient = await self._schedule_creator(row)
            job = _Job(row, recipient, row.messages_collected)
            if row.cancel_requested_at is not None:
                job.cancel_requested = True
                await self._end_claimed(job, "cancelled", None, "")
            elif row.interruptions > self._max_interruptions:
                message = (
                    f"interrupted: the app stopped {row.interruptions} times while running it, "
                    "so it was not resumed again."
                )
                await self._end_claimed(job, "failed", message, "Not resumed again; use Retry now.")
            else:
                logger.info(
                    "run #%s taken over (heartbeat %s), resuming",
                    row.job_run_id,
                    candidate.heartbeat_at,
                )
                self._enqueue(job)

    async def _end_claimed(
        self, job: _Job, status: str, error_message: str | None, action: str
    ) -> None:
        async def write() -> repo.StoredRun | None:
            async with self._sessions.begin() as session:
                return await repo.end_unowned(
                    session,
                    job.job_run_id,
                    self.owner,
                    status=status,
                    now=self._now(),
                    error_message=error_message,
                )

        stored = await self._until_written(f"end of run #{job.job_run_id}", write)
        if stored is None:
            return
        row = RunRow.of(stored)
        self._emit(RunEvent("finished", row.workspace_id, row))
        await self._tell(job, row, action)

    async def _start_due_retries(self) -> None:
        now = self._now()
        async with reading(self._sessions) as session:
            due = await repo.due_retries(session, now)
        for run in due:
            async with reading(self._sessions) as session:
                newer = await repo.has_newer_run(session, run.workspace_id, run.job_run_id)
            if newer:
                async with self._sessions.begin() as session:
                    await repo.clear_retry(session, run.job_run_id)
                self._retry_timers.pop(run.job_run_id, None)
                continue
            try:
                async with self._sessions.begin() as session:
                    claimed = await repo.claim_retry(session, run.job_run_id, self.owner, now)
            except IntegrityError:
                continue  # another run is going: retry once it ends
            self._cancel_retry_timer(run.job_run_id)
            if claimed is None:
                continue
            row = RunRow.of(claimed)
            logger.info("run #%s: automatic retry %s", row.job_run_id, row.attempt)
            self._enqueue(_Job(row, await self._schedule_creator(row), row.messages_collected))

    def _arm_retry_timer(self, job_run_id: int, delay: float) -> None:
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        self._cancel_retry_timer(job_run_id)
        self._retry_timers[job_run_id] = loop.call_later(
            max(0.0, delay) + 0.01, lambda: self._spawn(self._retry_now(job_run_id))
        )

    async def _retry_now(self, job_run_id: int) -> None:
        try:
            await self._start_due_retries()
        finally:
            # Still pending (e.g. another run is going): the pulse picks it up later.
            self._retry_timers.pop(job_run_id, None)

    def _cancel_retry_timer(self, job_run_id: int) -> None:
        handle = self._retry_timers.pop(job_run_id, None)
        if handle is not None:
            handle.cancel()

    # -- internals: listeners and background tasks -----------------------------------------------
    def _emit(self, event: RunEvent) -> None:
        for listener in list(self._listeners):
            try:
                outcome = listener(event)
            except Exception:
                logger.exception("run listener failed")
                continue
            if inspect.isawaitable(outcome):
                self._spawn(_guard(outcome))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _guard(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("run listener failed")


def _final_progress(job: _Job, result: RunResult) -> Progress:
    base = job.progress
    return Progress(
        channels_done=result.channels_processed,
        channels_total=base.channels_total if base else 0,
        messages_stored=result.messages_collected,
        messages_written=result.messages_written,
        current_channel=None,
        calls=base.calls if base else 0,
        rate_limit_waits=base.rate_limit_waits if base else 0,
        wait_seconds=base.wait_seconds if base else 0.0,
        elapsed_s=result.duration_s,
        eta_s=None,
    )


__all__ = ["PERMANENT_REASONS", "RunEvent", "RunRefused", "RunRow", "RunService"]
