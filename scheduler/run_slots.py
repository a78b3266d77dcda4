"""The queue of runs and the slots that run them: at most `run_concurrency` runs at once in this
process, in arrival order. A slot takes the next run, runs the engine (waiting out a database
that goes away mid-run and resuming from the checkpoints), and hands the result to
`run_endings`. Scheduled fires take their turn to claim a run only when a slot is free
(`turn_to_claim`), so a process never hoards fires that other processes have room for.
Imports `db`, `blocks` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from db.records import Progress
from db.session import database_trouble
from scheduler.backfill.engine import BackfillEngine, RunRequest
from scheduler.backfill.progress import RunResult
from scheduler.log_context import working_for
from scheduler.run_core import RunCore, RunJob
from scheduler.run_endings import RunEndings, final_progress
from scheduler.run_events import RunEvent

logger = logging.getLogger(__name__)

# A run resumes after this many database outages; one more and it fails (and says why).
MAX_OUTAGE_RESUMES = 5

WaitForDatabase = Callable[[RunJob], Awaitable[bool]]


class RunSlots:
    """Queued runs and the slot tasks working through them. `wait_for_database(job)` waits
    until the database answers a heartbeat of `job` (False: do not resume it)."""

    def __init__(
        self,
        core: RunCore,
        engine: BackfillEngine,
        endings: RunEndings,
        *,
        concurrency: int,
        wait_for_database: WaitForDatabase,
    ) -> None:
        self._core = core
        self.engine = engine
        self._endings = endings
        self._concurrency = concurrency
        self._wait_for_database = wait_for_database
        self._queue: deque[RunJob] = deque()  # in arrival order
        self._wakeup = asyncio.Condition()
        self._active: set[int] = set()
        self._room = asyncio.Condition()  # a slot came free, or waiting claimers must go ahead
        self._stop_waiting = False
        self.workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stop_waiting = False
        self.workers = [
            asyncio.create_task(self._worker(), name=f"backfill-run-slot-{i}")
            for i in range(self._concurrency)
        ]

    async def stop(self) -> None:
        """Cancel the slot tasks (runs still in them are released as they go)."""
        for task in self.workers:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self.workers, return_exceptions=True)
        self.workers = []

    async def wake_all(self) -> None:
        async with self._wakeup:
            self._wakeup.notify_all()

    def has_room(self) -> bool:
        """Fewer runs in this process's hands (queued or running) than it has slots."""
        return len(self._core.jobs) < self._concurrency

    @contextlib.asynccontextmanager
    async def turn_to_claim(self) -> AsyncIterator[None]:
        """Entered when this process may take one more run: a slot is free (or no slot runs yet,
        or `stop_waiting()` was called). One claimer at a time, in arrival order; a claim made
        inside that enqueues its run fills the room before the next claimer looks.

        Every process gets every fire and the database gives each fire to the first claimer, so
        a process that claimed whatever came would queue fires while the others sit idle (one of
        three took 54 % of 1,000 simultaneous fires). Waiting for a free slot first lets the
        fires go to the processes that can start them; the ones still waiting here are not
        lost when this process stops: `stop_waiting` lets them claim and the stop releases
        them like any queued run."""
        async with self._room:
            await self._room.wait_for(
                lambda: self._stop_waiting or not self.workers or self.has_room()
            )
            try:
                yield
            finally:
                if self.has_room():
                    self._room.notify()  # the next claimer's turn (this one took no slot)

    async def stop_waiting(self) -> None:
        """Let every claimer waiting for a slot go ahead now (the process is stopping)."""
        async with self._room:
            self._stop_waiting = True
            self._room.notify_all()

    async def _slot_freed(self) -> None:
        async with self._room:
            self._room.notify()

    def enqueue(self, job: RunJob) -> None:
        """Take `job` in hand and queue it for the next free slot."""
        core = self._core
        core.jobs[job.job_run_id] = job
        self._queue.append(job)
        if not self.workers:
            logger.warning("run #%s queued before RunService.start()", job.job_run_id)
        core.spawn(self.wake_all())
        core.emit(RunEvent("queued", job.run.workspace_id, job.run))

    async def end_if_queued(self, job: RunJob) -> None:
        """A cancelled run still waiting for a slot ends at once, without running."""
        async with self._wakeup:
            if job not in self._queue:
                return
            self._queue.remove(job)
        try:
            if not job.lost:
                await self._endings.finish(job, RunResult(cancelled=True))
        finally:
            self._core.jobs.pop(job.job_run_id, None)
            await self._slot_freed()

    async def _worker(self) -> None:
        core = self._core
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
                await asyncio.shield(self._endings.release(job))
                raise
            except Exception:
                logger.exception("run #%s crashed in the run service", job.job_run_id)
                await self._endings.release(job)
            finally:
                self._active.discard(job.job_run_id)
                core.jobs.pop(job.job_run_id, None)
                if core.progress.get(job.run.workspace_id) is job.progress:
                    core.progress.pop(job.run.workspace_id, None)
                core.spawn(self._slot_freed())

    async def _execute(self, job: RunJob) -> None:
        core = self._core
        run = job.run
        if core.stopping or job.shutdown:
            await self._endings.release(job)
            return
        if job.cancel.is_set():
            if job.lost:
                return
            await self._endings.finish(job, RunResult(cancelled=True))
            return
        core.emit(RunEvent("started", run.workspace_id, run))
        if run.job_type == "manual" and job.recipient and core.notifier is not None:
            job.dm = await core.notifier.progress_started(
                run.workspace_id,
                job.recipient,
                run.job_run_id,
                run.started_at,
                Progress(
                    channels_done=0,
                    channels_total=0,
                    messages_stored=job.base_messages,
                    started_at=run.started_at,
                    job_run_id=run.job_run_id,
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
            job.progress = final_progress(job, result)
            job.attempt_calls = result.slack_calls
            job.attempt_removed = result.messages_removed
            await self._endings.release(job)
            return
        await self._endings.finish(job, result)

    async def _run_engine(self, job: RunJob, request: RunRequest) -> RunResult:
        """The engine's run of `job`; when the database goes away mid-way, wait for it and resume
        from the checkpoints (up to `MAX_OUTAGE_RESUMES` times). Never raises but cancellation."""
        outages = 0
        while True:
            try:
                return await self.engine.run(
                    request,
                    progress=lambda p: self._endings.on_progress(job, p),
                    cancel=job.cancel,
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
                    if await self._wait_for_database(job):
                        logger.warning(
                            "run #%s resumes: the database answers again", job.job_run_id
                        )
                        _carry_over(job)
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


def _carry_over(job: RunJob) -> None:
    """Before the engine runs `job` again: what it stored so far becomes the base (the new
    engine run counts from zero, and resumes from the checkpoints)."""
    if job.progress is not None:
        job.base_messages += job.progress.messages_stored
        job.progress = None


__all__ = ["MAX_OUTAGE_RESUMES", "RunSlots"]
