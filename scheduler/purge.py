"""`/backfill purge`: remove a workspace's stored copy (its messages, its Chroma collection, its
runs and its schedule), keeping the workspace served. The SQL rows go in one transaction
(`db.purge`), then the schedule's APScheduler job, then the collection.

A purge is refused while a run of the workspace is running, rather than cancelling it first: a
cancel is only a request, seen by the run's owner (maybe another process) at its next heartbeat,
and the run stops after the page it is writing. Purging meanwhile would let that page, and the
run's end, land after the purge: part of the copy would come back, under a run row that is gone.
The admin cancels (`/backfill cancel`), waits for the run to stop, and purges. Imports `db` and
`scheduler.*`; never Slack or Block Kit code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import purge as repo
from db import runs as runs_repo
from db.purge import PurgeCounts, RunStillRunning
from db.records import Run
from db.session import reading, writing
from db.vectors import VectorStore
from scheduler.cron import ScheduleError
from scheduler.schedules import ScheduleService

log = logging.getLogger(__name__)


class PurgeRefused(Exception):
    """A run is running: nothing was removed. `run` is that run."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run #{run.job_run_id} is running")
        self.run = run


@dataclass(frozen=True, slots=True)
class PurgePreview:
    """What a purge would remove now. `documents` is None when Chroma could not be asked;
    `running` the run that would refuse it."""

    stored: PurgeCounts
    documents: int | None
    running: Run | None


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    """What a purge removed. `collection_removed` is False when Chroma failed (the SQL rows are
    gone; purging again removes the collection)."""

    removed: PurgeCounts
    documents: int
    collection_removed: bool

    @property
    def nothing(self) -> bool:
        return self.removed.empty and self.documents == 0 and self.collection_removed


class PurgeService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorStore,
        schedules: ScheduleService,
    ) -> None:
        self._sessions = sessions
        self._vectors = vectors
        self._schedules = schedules
        # Two presses of one button in this process purge one after the other (the second
        # finds nothing left); across processes the database orders them.
        self._locks: dict[str, asyncio.Lock] = {}

    async def preview(self, workspace_id: str) -> PurgePreview:
        async with reading(self._sessions) as session:
            stored = await repo.stored(session, workspace_id)
            running = await runs_repo.running_run(session, workspace_id)
        try:
            documents: int | None = await self._vectors.count(workspace_id)
        except Exception as exc:  # noqa: BLE001 - the confirmation says "unknown" instead
            log.warning("purge preview: Chroma did not answer (%s)", type(exc).__name__)
            documents = None
        return PurgePreview(stored=stored, documents=documents, running=running)

    async def purge(self, workspace_id: str) -> PurgeOutcome:
        """Remove the workspace's stored copy; `PurgeRefused` (nothing removed) while a run of
        it is running. Repeating it is harmless: the second finds nothing left."""
        lock = self._locks.setdefault(workspace_id, asyncio.Lock())
        async with lock:
            try:
                async with writing(self._sessions) as session:
                    removed = await repo.purge_workspace(session, workspace_id)
            except RunStillRunning as exc:
                raise PurgeRefused(exc.run) from None
            # The row went with the transaction; `delete` also drops its in-memory APScheduler
            # job (a fire in between finds no row and does nothing), then says there was no row.
            try:
                await self._schedules.delete(workspace_id)
            except ScheduleError:
                pass
            documents, collection_removed = 0, True
            try:
                documents = await self._vectors.count(workspace_id)
                await self._vectors.delete_workspace(workspace_id)
            except Exception:  # the rows are gone: say so, and that purging again finishes it
                log.exception("purge of %s: the Chroma collection was not removed", workspace_id)
                collection_removed = False
        log.info(
            "purged %s: %d messages, %d documents, %d runs, %d checkpoints, schedule %s",
            workspace_id,
            removed.messages,
            documents,
            removed.runs,
            removed.checkpoints,
            "removed" if removed.schedule else "none",
        )
        return PurgeOutcome(removed, documents, collection_removed)


__all__ = ["PurgeOutcome", "PurgePreview", "PurgeRefused", "PurgeService"]
