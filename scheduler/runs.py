"""The run lifecycle's front: `RunService` is what handlers, the app and the scheduler call to
start (manual, scheduled, retry), cancel, watch and read runs.

The database decides who runs what, so several app processes can share one PostgreSQL: a run
is a `running` row (the partial unique index allows one per workspace), a scheduled fire is
claimed by UNIQUE(schedule_id, fire_time), the owning process beats `heartbeat_at` and reads
cancel requests from the row, and any process (this one included, for a run it no longer holds)
takes over a run whose heartbeat went stale.

The work is split along its seams: `run_claims` (inserting a run's row), `run_slots` (the queue
and the slots that run the engine), `run_lease` (heartbeats, takeover, automatic retries, waits
for the database), `run_endings` (ending runs, progress fan-out and DMs, pausing a schedule) and
`run_core` (what they share). The database may go away and come back at any moment: a run that
loses it waits and resumes from its checkpoints, and a run whose end cannot be written stays in
this process's hands until it is. Imports `db`, `blocks` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.limits import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS, check_days
from db import runs as repo
from db.models import utcnow
from db.records import Progress, Run, Totals
from db.session import reading
from scheduler.backfill.engine import BackfillEngine
from scheduler.heartbeat import Pulse, process_owner_id
from scheduler.notify import Notifier
from scheduler.outcomes import PERMANENT_REASONS
from scheduler.run_claims import claim_fire, claim_run, who_started
from scheduler.run_core import Clock, Listener, RunCore, RunJob
from scheduler.run_endings import RunEndings
from scheduler.run_events import RunEvent, RunRefused
from scheduler.run_lease import RunLease
from scheduler.run_slots import RunSlots
from scheduler.schedules import ScheduleService

# On shutdown, how long writes of a run's state may wait for a database that does not answer
# (a run not released is taken over after its heartbeat goes stale: nothing is lost).
STOP_DATABASE_WAIT_S = 10.0
# The last part of a stop's time (at most a third of it), kept for cancelling the runs still short
# of a safe point and writing their release.
STOP_RELEASE_S = 2.0


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
        self.owner = owner or process_owner_id()
        self._core = RunCore(
            sessions=sessions, notifier=notifier, schedules=schedules, clock=clock, owner=self.owner
        )
        self._stop_timeout = stop_timeout_s
        self._endings = RunEndings(
            self._core,
            retries=max(0, run_retries),
            backoff=tuple(float(b) for b in retry_backoff) or (60.0,),
            arm_retry=lambda job_run_id, delay: self._lease.arm_retry_timer(job_run_id, delay),
        )
        self._lease = RunLease(
            self._core,
            self._endings,
            heartbeat_s=heartbeat_s,
            stale_after_s=stale_after_s,
            max_interruptions=max_interruptions,
            enqueue=lambda job: self._slots.enqueue(job),
            end_if_queued=lambda job: self._slots.end_if_queued(job),
        )
        self._slots = RunSlots(
            self._core,
            engine,
            self._endings,
            concurrency=run_concurrency,
            wait_for_database=self._lease.wait_for_database,
        )
        if schedules is not None:  # fires waiting for a slot claim at once when firing stops
            schedules.on_closing(self._slots.stop_waiting)
        self._started = False

    # What a test stands in for, or reads to stop a service the way SIGKILL would.
    @property
    def _engine(self) -> BackfillEngine:
        return self._slots.engine

    @_engine.setter
    def _engine(self, engine: BackfillEngine) -> None:
        self._slots.engine = engine

    @property
    def _stopping(self) -> bool:
        return self._core.stopping

    @_stopping.setter
    def _stopping(self, stopping: bool) -> None:
        self._core.stopping = stopping

    @property
    def _pulse(self) -> Pulse:
        return self._lease.pulse

    @property
    def _jobs(self) -> dict[int, RunJob]:
        return self._core.jobs

    @property
    def _workers(self) -> list[asyncio.Task[None]]:
        return self._slots.workers

    @_workers.setter
    def _workers(self, workers: list[asyncio.Task[None]]) -> None:
        self._slots.workers = workers

    # -- life of the service ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start the slots, then heartbeats and recovery (a first pass at once, so runs left by
        a dead or stopped process resume right away)."""
        if self._started:
            return
        self._started, self._core.stopping = True, False
        self._core.give_up_at = float("inf")
        self._slots.start()
        self._lease.pulse.start()

    async def stop(self, timeout: float | None = None) -> list[int]:
        """Graceful shutdown within `timeout` seconds (default: the service's stop timeout). No
        run is taken any more; runs stop at their next safe point (a page boundary) and stay
        `running`, released (owner cleared, heartbeat at the epoch), so another process, or the
        next start, resumes them at once. A run still short of a safe point when the wait is over
        is cancelled where it stands and released all the same: its checkpoints are consistent
        at any moment, and a write it was in is redone on resume. Returns the ids of those."""
        if not self._started:
            return []
        core = self._core
        span = self._stop_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + span

        def until(cap: float = float("inf")) -> float:
            return max(0.0, min(cap, deadline - time.monotonic()))

        async def within(work: Awaitable[object]) -> None:  # past the deadline, left running
            await asyncio.wait({asyncio.ensure_future(work)}, timeout=until())

        core.stopping = True  # from here on, no run is claimed, taken over or retried here
        await self._slots.stop_waiting()  # fires still waiting for a slot are refused now
        core.give_up_at = min(deadline, time.monotonic() + STOP_DATABASE_WAIT_S)
        for job in list(core.jobs.values()):
            job.shutdown = True
            job.cancel.set()
        self._lease.drop_retry_timers()
        await within(self._lease.pulse.stop())  # a tick may be waiting on the database
        await self._slots.wake_all()
        # The last part of the time is for letting go: cancelling and releasing what is left.
        wait_until = deadline - min(STOP_RELEASE_S, span / 3)
        while core.jobs and time.monotonic() < wait_until:
            await asyncio.sleep(0.02)
        cut = sorted(core.jobs)
        await within(self._slots.stop())  # a cancelled slot releases its run
        stuck = [self._endings.release(job) for job in core.jobs.values()]
        if stuck:  # past the time, or a slot that did not unwind: let go anyway
            await within(asyncio.gather(*stuck, return_exceptions=True))
        core.jobs.clear()
        if core.background:  # DMs and listeners of the last events
            await asyncio.wait(set(core.background), timeout=until(cap=5))
        self._started = False
        return cut

    async def wait_idle(self, timeout: float = 120) -> None:
        """Wait until this process has no run queued or running and no automatic retry pending
        (tests)."""
        core, timers = self._core, self._lease.retry_timers
        deadline = time.monotonic() + timeout
        while core.jobs or timers or core.background:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"runs still busy: {sorted(core.jobs)}, retries {sorted(timers)}"
                )
            await asyncio.sleep(0.02)

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(RunEvent)` (sync or async) on every run state or progress change.
        Progress events come as often as pages are written: throttle on the caller's side."""
        self._core.listeners.append(callback)

    # -- reads -----------------------------------------------------------------------------------
    async def current(self, workspace_id: str) -> Run | None:
        """The workspace's running run (whichever process runs it), or None."""
        async with reading(self._core.sessions) as session:
            return await repo.running_run(session, workspace_id)

    def progress(self, workspace_id: str) -> Progress | None:
        """The latest progress of the workspace's run, when this process runs it."""
        return self._core.progress.get(workspace_id)

    async def history(self, workspace_id: str, limit: int = 10) -> list[Run]:
        """The workspace's last `limit` runs, newest first."""
        async with reading(self._core.sessions) as session:
            return await repo.list_runs(session, workspace_id, limit)

    async def get(self, job_run_id: int) -> Run | None:
        async with reading(self._core.sessions) as session:
            return await repo.get_run(session, job_run_id)

    async def totals(self, workspace_id: str) -> Totals:
        """Messages stored, channels with messages, and when the last successful run ended."""
        async with reading(self._core.sessions) as session:
            return await repo.run_totals(session, workspace_id)

    async def paused_reason(self, workspace_id: str) -> str | None:
        """Why the app paused the workspace's schedule, if it did."""
        async with reading(self._core.sessions) as session:
            return await repo.get_paused_reason(session, workspace_id)

    # -- starting runs ---------------------------------------------------------------------------
    async def start_manual(
        self,
        workspace_id: str,
        user_id: str,
        *,
        days: int = DEFAULT_DAYS,
        channel_ids: Sequence[str] | None = None,
    ) -> Run:
        """Start a manual run of the last `days` days (all channels, or `channel_ids`).
        Raises `RunRefused` when the workspace already has a run going."""
        if check_days(days) is None:
            raise RunRefused(f"Days must be a whole number from {MIN_DAYS} to {MAX_DAYS}.")
        channels = tuple(dict.fromkeys(channel_ids)) if channel_ids else None
        row = await claim_run(
            self._core,
            workspace_id,
            job_type="manual",
            triggered_by=user_id,
            days=days,
            channel_ids=channels,
        )
        self._slots.enqueue(RunJob(row, user_id, 0))
        return row

    async def on_schedule_fire(
        self, workspace_id: str, schedule_id: int, fire_time: datetime
    ) -> Run | None:
        """A schedule fired (pass this as `ScheduleService`'s `on_fire`). Every process gets the
        fire; the one whose insert of (schedule_id, fire_time) wins runs it, the others return
        None. The second fire of a repeated wall-clock time (DST fall-back) is skipped.

        A fire `ScheduleService` is handling comes with the schedule it read, and that service
        records it when this returns; a fire made by hand (another process's test, a CLI) is
        read here and recorded here, once."""
        schedules = self._core.schedules
        schedule = None if schedules is None else schedules.fire_in_hand(workspace_id, fire_time)
        # A claim waits its turn for a free slot here (meanwhile a process with one takes the
        # fire), unless it is refused whatever the wait: then it is made, and refused, at once.
        settled = not self._slots.has_room() and await self._fire_settled(
            workspace_id, schedule_id, fire_time
        )
        async with contextlib.nullcontext() if settled else self._slots.turn_to_claim():
            claimed = await claim_fire(self._core, workspace_id, schedule_id, fire_time, schedule)
            if claimed is None:
                return None  # ignored: nothing to record
            row, recipient = claimed
            if row is not None:
                # In hand at once (before any other wait): a claimed run is never without an
                # owner beating it, and goes ahead even when recording the fire below fails.
                self._slots.enqueue(RunJob(row, recipient, 0))
        if schedule is None and schedules is not None:  # a fire by hand: recorded here
            await schedules.after_fire(workspace_id, fire_time)
        return row

    async def _fire_settled(self, workspace_id: str, schedule_id: int, fire_time: datetime) -> bool:
        """Whether the claim of this fire is refused whatever the wait: another process claimed
        it already, or the workspace has a run going (the fire is skipped now, as always)."""
        async with reading(self._core.sessions) as session:
            if await repo.run_for_fire(session, schedule_id, fire_time.astimezone(UTC)):
                return True
            return await repo.running_run(session, workspace_id) is not None

    async def retry(self, workspace_id: str, job_run_id: int, user_id: str) -> Run:
        """ "Retry now": a new run of the same kind and window as a failed or cancelled run. A
        pending automatic retry of that run is dropped."""
        async with reading(self._core.sessions) as session:
            old = await repo.get_run(session, job_run_id)
        if old is None or old.workspace_id != workspace_id:
            raise RunRefused(f"There is no run #{job_run_id} in this workspace.")
        if old.status == "running":
            raise RunRefused(f"Run #{job_run_id} is still running.")
        if old.status == "success":
            raise RunRefused(
                f"Run #{job_run_id} finished successfully; start a new one with /backfill run."
            )
        row = await claim_run(
            self._core,
            workspace_id,
            job_type=old.job_type,
            triggered_by=user_id if old.job_type == "manual" else None,
            schedule_id=old.schedule_id if old.job_type == "scheduled" else None,
            days=old.days,
            channel_ids=old.channel_ids,
            clear_retry_of=job_run_id,
        )
        self._lease.cancel_retry_timer(job_run_id)
        self._slots.enqueue(RunJob(row, user_id, 0))
        return row

    async def cancel(
        self, workspace_id: str, user_id: str, *, is_admin: bool, job_run_id: int | None = None
    ) -> Run:
        """Ask the workspace's running run to stop (within one page, whichever process runs it).
        Members may cancel only manual runs they started. With `job_run_id` (a Cancel button
        names its run), only that run: a button left on screen never stops a newer run."""
        core = self._core
        async with reading(core.sessions) as session:
            run = await repo.running_run(session, workspace_id)
        if job_run_id is not None and (run is None or run.job_run_id != job_run_id):
            raise RunRefused(f"Run #{job_run_id} has already ended; nothing was cancelled.")
        if run is None:
            raise RunRefused("There is no backfill running to cancel.")
        if not is_admin and not (run.job_type == "manual" and run.triggered_by == user_id):
            raise RunRefused(
                f"Run #{run.job_run_id} was {who_started(run)}; only an admin can cancel a run "
                "someone else started."
            )
        async with core.sessions.begin() as session:
            row = await repo.request_cancel(session, run.job_run_id, user_id, core.now())
        if row is None:
            raise RunRefused(f"Run #{run.job_run_id} has just ended; there is nothing to cancel.")
        job = core.jobs.get(row.job_run_id)
        if job is not None:
            job.stop_cancelled()
            await self._slots.end_if_queued(job)
        core.emit(RunEvent("cancel_requested", workspace_id, row))
        return row


__all__ = ["PERMANENT_REASONS", "RunEvent", "RunRefused", "RunService"]
