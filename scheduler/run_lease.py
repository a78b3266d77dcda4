"""A run's lease on the database: this process beats `heartbeat_at` of the runs it holds (and
reads cancel requests from the rows), takes over any run whose heartbeat went stale (its process
died), starts automatic retries when they are due, and waits for a database that went away
before a run resumes. Every few seconds, one `Pulse` tick does all three; the first one runs as
the service starts.

Any process, this one included for a run it no longer holds, takes over a stale run; the claim
in the database decides who gets it. A run whose owner was a process of this very host needs no
wait for staleness when `/proc` shows that process gone (`process_identity`): a process started
after a crash resumes it in its first tick. Imports `db`, `blocks` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from db import runs as repo
from db.session import database_trouble, reading
from scheduler.heartbeat import Pulse
from scheduler.process_identity import LivenessJudge
from scheduler.run_core import RunCore, RunJob, retry_pause
from scheduler.run_endings import RunEndings

logger = logging.getLogger(__name__)


class RunLease:
    """Heartbeats, takeovers and automatic retries. `enqueue(job)` hands a run to the slots;
    `end_if_queued(job)` ends a cancelled run that has not started."""

    def __init__(
        self,
        core: RunCore,
        endings: RunEndings,
        *,
        heartbeat_s: float,
        stale_after_s: float,
        max_interruptions: int,
        enqueue: Callable[[RunJob], None],
        end_if_queued: Callable[[RunJob], Awaitable[None]],
        judge: LivenessJudge | None = None,
    ) -> None:
        self._core = core
        self._endings = endings
        self._stale_after = timedelta(seconds=stale_after_s)
        self._max_interruptions = max_interruptions
        self._enqueue = enqueue
        self._end_if_queued = end_if_queued
        self.pulse = Pulse(self._tick, heartbeat_s, outage=database_trouble)
        self.retry_timers: dict[int, asyncio.TimerHandle] = {}
        # Who owns what on this host, judged from /proc; until the first takeover pass is done.
        self._judge = judge or LivenessJudge.of_this_process()
        self._swept = False

    def drop_retry_timers(self) -> None:
        """On shutdown: `retry_at` is in the row, so whoever is up when it is due retries."""
        for handle in self.retry_timers.values():
            handle.cancel()
        self.retry_timers.clear()

    async def wait_for_database(self, job: RunJob) -> bool:
        """Wait until the database answers a heartbeat of `job`. False when the job must not
        resume: this process is stopping, the run was taken over, or it was cancelled meanwhile
        (its cancel flag is then set, for the caller to end it)."""
        core = self._core
        attempt = 0
        while not (core.stopping or job.shutdown or job.lost):
            try:
                async with core.sessions.begin() as session:
                    messages, channels = job.counts()
                    owned, cancel = await repo.heartbeat(
                        session,
                        job.job_run_id,
                        core.owner,
                        core.now(),
                        messages_collected=messages,
                        channels_processed=channels,
                    )
            except Exception as exc:
                if not database_trouble(exc):
                    logger.exception("run #%s: heartbeat after an outage failed", job.job_run_id)
                    return False
                await asyncio.sleep(retry_pause(attempt))
                attempt += 1
                continue
            if not owned:
                job.stop_lost()
                return False
            if cancel:
                job.stop_cancelled()
                return False
            return True
        return False

    # -- the tick ---------------------------------------------------------------------------------
    async def _tick(self) -> None:
        if self._core.stopping:
            return
        await self._beat()
        await self._take_over_stale()
        await self.start_due_retries()

    async def _beat(self) -> None:
        core = self._core
        jobs = list(core.jobs.values())
        if not jobs:
            return
        now = core.now()
        seen: list[tuple[RunJob, bool, bool]] = []
        async with core.sessions.begin() as session:
            for job in jobs:
                messages, channels = job.counts()
                owned, cancel = await repo.heartbeat(
                    session,
                    job.job_run_id,
                    core.owner,
                    now,
                    messages_collected=messages,
                    channels_processed=channels,
                )
                seen.append((job, owned, cancel))
        for job, owned, cancel in seen:
            if not owned and job.job_run_id in core.jobs:
                job.stop_lost()
            elif cancel and not job.cancel_requested:
                logger.info("run #%s: cancel requested from another process", job.job_run_id)
                job.stop_cancelled()
                await self._end_if_queued(job)

    async def _take_over_stale(self) -> None:
        core = self._core
        now = core.now()
        cutoff = now - self._stale_after
        at_start, judge = not self._swept, self._judge
        async with reading(core.sessions) as session:
            stale = await repo.stale_runs(session, cutoff)
            here = await repo.running_runs_owned_from(session, f"{judge.host}:")
        seen = {run.job_run_id for run in stale}
        orphans = [
            run
            for run in here
            if run.job_run_id not in seen and self._orphaned(run.owner, at_start=at_start)
        ]
        for candidate in [*stale, *orphans]:
            if candidate.job_run_id in core.jobs:
                continue  # ours and in hand (perhaps waiting for the database to write its end)
            # Not in hand, even if the row names this process (its slot crashed before its end
            # was written): nobody beats it, so it is taken over like any other stale run.
            orphaned = candidate.job_run_id not in seen
            async with core.sessions.begin() as session:
                if orphaned:
                    claimed = await repo.claim_orphaned(session, candidate, core.owner, now=now)
                else:
                    claimed = await repo.claim_stale(
                        session, candidate, core.owner, cutoff=cutoff, now=now
                    )
            if claimed is None:
                continue  # another process got there first
            row = claimed
            recipient = await self._endings.recipient_of(row)
            job = RunJob(row, recipient, row.messages_collected)
            if row.cancel_requested_at is not None:
                job.cancel_requested = True
                await self._endings.end_claimed(job, "cancelled", None, "")
            elif row.interruptions > self._max_interruptions:
                message = (
                    f"interrupted: the app stopped {row.interruptions} times while running it, "
                    "so it was not resumed again."
                )
                await self._endings.end_claimed(
                    job, "failed", message, "Not resumed again; use Retry now."
                )
            else:
                logger.info(
                    "run #%s taken over (%s), resuming",
                    row.job_run_id,
                    f"its process {candidate.owner} is gone"
                    if orphaned
                    else f"heartbeat {candidate.heartbeat_at}",
                )
                self._enqueue(job)
        self._swept = True

    def _orphaned(self, owner: str | None, *, at_start: bool) -> bool:
        """Whether `owner`, a process of this host, is known to be dead (see
        `LivenessJudge.gone`: one out of our sight counts only on the first sweep)."""
        return self._judge.gone(owner, first_look=at_start)

    # -- automatic retries ------------------------------------------------------------------------
    async def start_due_retries(self) -> None:
        core = self._core
        now = core.now()
        async with reading(core.sessions) as session:
            due = await repo.due_retries(session, now)
        for run in due:
            async with reading(core.sessions) as session:
                newer = await repo.has_newer_run(session, run.workspace_id, run.job_run_id)
            if newer:
                async with core.sessions.begin() as session:
                    await repo.clear_retry(session, run.job_run_id)
                self.retry_timers.pop(run.job_run_id, None)
                continue
            try:
                async with core.sessions.begin() as session:
                    claimed = await repo.claim_retry(session, run.job_run_id, core.owner, now)
            except IntegrityError:
                continue  # another run is going: retry once it ends
            self.cancel_retry_timer(run.job_run_id)
            if claimed is None:
                continue
            row = claimed
            logger.info("run #%s: automatic retry %s", row.job_run_id, row.attempt)
            self._enqueue(
                RunJob(row, await self._endings.recipient_of(row), row.messages_collected)
            )

    def arm_retry_timer(self, job_run_id: int, delay: float) -> None:
        """Retry `job_run_id` in `delay` seconds (sooner than the pulse would notice)."""
        core = self._core
        if core.stopping:
            return
        loop = asyncio.get_running_loop()
        self.cancel_retry_timer(job_run_id)
        self.retry_timers[job_run_id] = loop.call_later(
            max(0.0, delay) + 0.01, lambda: core.spawn(self._retry_now(job_run_id))
        )

    async def _retry_now(self, job_run_id: int) -> None:
        try:
            await self.start_due_retries()
        finally:
            # Still pending (e.g. another run is going): the pulse picks it up later.
            self.retry_timers.pop(job_run_id, None)

    def cancel_retry_timer(self, job_run_id: int) -> None:
        handle = self.retry_timers.pop(job_run_id, None)
        if handle is not None:
            handle.cancel()


__all__ = ["RunLease"]
