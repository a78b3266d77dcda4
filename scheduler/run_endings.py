"""How a run in this process's hands ends and who hears about it: its progress fanned out to
listeners and the progress DM, its end written (after waiting out a database outage), the
schedule paused when the failure needs a fix, and the summary or failure DM.

A run whose end cannot be written keeps trying until the database answers, and stays in this
process's hands meanwhile. Imports `db`, `blocks` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence

from db import runs as repo
from db import schedules as schedules_repo
from db.installations import mark_workspace_needs_reinstall
from db.records import Progress, Run
from db.session import database_trouble, reading
from scheduler.backfill.progress import RunResult
from scheduler.cron import ScheduleError

# Slack's refusals of the token itself: only a new install brings a working one.
NEEDS_REINSTALL = frozenset({"invalid_auth", "token_revoked", "invalid_refresh_token"})
from scheduler.outcomes import decide_outcome
from scheduler.run_core import RunCore, RunJob
from scheduler.run_events import RunEvent

logger = logging.getLogger(__name__)

ArmRetry = Callable[[int, float], None]  # (job_run_id, delay in seconds)


class RunEndings:
    """Ends runs (finished, released for another process, or claimed only to be ended) and
    tells people. `arm_retry(job_run_id, delay_s)` is called when a failure retries later."""

    def __init__(
        self, core: RunCore, *, retries: int, backoff: Sequence[float], arm_retry: ArmRetry
    ) -> None:
        self._core = core
        self._retries = retries
        self._backoff = tuple(backoff)
        self._arm_retry = arm_retry

    async def on_progress(self, job: RunJob, progress: Progress) -> None:
        """A page was written: listeners hear it, and the progress DM is updated."""
        core = self._core
        job.progress = progress
        # The whole run's count (a resumed run's earlier share included), and whose run it is.
        shown = dataclasses.replace(
            progress,
            messages_stored=job.base_messages + progress.messages_stored,
            job_run_id=job.job_run_id,
            started_at=job.run.started_at,
        )
        core.progress[job.run.workspace_id] = shown
        core.emit(RunEvent("progress", job.run.workspace_id, job.run, shown))
        if job.dm is not None and core.notifier is not None:
            # Off the engine's path: a slow chat.update must not hold up the pages.
            core.spawn(core.notifier.progress(job.dm, shown))

    async def release(self, job: RunJob) -> None:
        """Let go of a run that is still `running` (shutdown): owner cleared, heartbeat at the
        epoch, so the next process to look resumes it at once."""
        if job.lost:
            return
        core = self._core
        messages, channels = job.counts()

        async def write() -> None:
            async with core.sessions.begin() as session:
                await repo.release_run(
                    session,
                    job.job_run_id,
                    core.owner,
                    messages_collected=messages,
                    channels_processed=channels,
                    slack_calls=job.slack_calls(job.attempt_calls) if job.attempt_calls else None,
                    messages_removed=job.messages_removed(job.attempt_removed),
                )

        try:
            await core.until_written(f"release of run #{job.job_run_id}", write)
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
        core.emit(RunEvent("released", job.run.workspace_id, job.run))

    async def finish(self, job: RunJob, result: RunResult) -> None:
        """Write the run's end as `decide_outcome` says, pause the schedule or arm a retry if it
        says so, and tell people."""
        core = self._core
        run = job.run
        now = core.now()
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

        async def write() -> Run | None:
            async with core.sessions.begin() as session:
                return await repo.finish_run(
                    session,
                    run.job_run_id,
                    core.owner,
                    status=outcome.status,
                    now=now,
                    messages_collected=messages,
                    channels_processed=result.channels_processed,
                    channels_skipped=result.channels_skipped,
                    error_message=outcome.error_message,
                    retry_at=retry_at,
                    slack_calls=job.slack_calls(result.slack_calls),
                    messages_removed=job.messages_removed(result.messages_removed),
                )

        # Kept in hand (and beating, once the database is back) until its end is written.
        row = await core.until_written(f"end of run #{run.job_run_id}", write)
        if row is None:
            logger.warning("run #%s was no longer ours when it ended", run.job_run_id)
            return
        if outcome.pause_reason is not None:
            await self._pause_schedule(run.workspace_id, outcome.pause_reason)
        if result.error in NEEDS_REINSTALL:
            # An installed workspace's token is no good: App Home says to reinstall, and the
            # install serves nothing until then (one workspace's `SLACK_BOT_TOKEN`: no row).
            async with core.sessions.begin() as session:
                await mark_workspace_needs_reinstall(session, run.workspace_id, result.error)
        if retry_at is not None:
            self._arm_retry(row.job_run_id, (retry_at - now).total_seconds())
        core.emit(RunEvent("finished", row.workspace_id, row))
        logger.info(
            "run #%s %s: %s messages, %s channels",
            row.job_run_id,
            row.status,
            row.messages_collected,
            row.channels_processed,
        )
        await self._tell(job, row, outcome.action)

    async def end_claimed(
        self, job: RunJob, status: str, error_message: str | None, action: str
    ) -> None:
        """End a run just taken over without running it (cancelled meanwhile, or interrupted
        too often), and tell people."""
        core = self._core

        async def write() -> Run | None:
            async with core.sessions.begin() as session:
                return await repo.end_unowned(
                    session,
                    job.job_run_id,
                    core.owner,
                    status=status,
                    now=core.now(),
                    error_message=error_message,
                )

        row = await core.until_written(f"end of run #{job.job_run_id}", write)
        if row is None:
            return
        core.emit(RunEvent("finished", row.workspace_id, row))
        await self._tell(job, row, action)

    async def recipient_of(self, run: Run) -> str | None:
        """Who hears about a run: who started a manual run, else the schedule's creator."""
        if run.job_type == "manual":
            return run.triggered_by
        async with reading(self._core.sessions) as session:
            schedule = await schedules_repo.get_schedule(session, run.workspace_id)
        return None if schedule is None else schedule.created_by

    async def _tell(self, job: RunJob, row: Run, action: str) -> None:
        core = self._core
        notifier = core.notifier
        if notifier is None:
            return
        recipient = job.recipient or await self.recipient_of(row)
        if job.dm is not None:
            core.spawn(notifier.close_progress(job.dm, row))
        if recipient is None:
            logger.warning("nobody to tell about run #%s", row.job_run_id)
            return
        if row.status == "failed":
            await notifier.run_failed(recipient, row, action_taken=action)
        else:
            await notifier.run_succeeded(recipient, row)

    async def _pause_schedule(self, workspace_id: str, reason: str) -> None:
        core = self._core
        if core.schedules is not None:
            with contextlib.suppress(ScheduleError):  # already paused
                await core.schedules.pause(workspace_id)
            async with core.sessions.begin() as session:
                await repo.set_paused_reason(session, workspace_id, reason)
            return
        async with core.sessions.begin() as session:
            await schedules_repo.set_active(session, workspace_id, False, next_run_at=None)
            await repo.set_paused_reason(session, workspace_id, reason)


def final_progress(job: RunJob, result: RunResult) -> Progress:
    """The progress a run ends with, from its last progress and its result."""
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
        job_run_id=job.job_run_id,
        started_at=job.run.started_at,
    )


__all__ = ["RunEndings", "final_progress"]
