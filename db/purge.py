"""`/backfill purge`'s SQL half: what a workspace's stored copy holds, and removing it in one
transaction (design.md: "remove this workspace's stored messages, its Chroma collection, its runs
and its schedule"; the collection is `db.vectors`' `delete_workspace`, the caller's).

Removed, rows of that workspace only: `messages` (the search index follows through its triggers),
`channel_checkpoints` (else the next run would start at the old high-water mark and never store
the purged history again), `backfill_job_runs` and `backfill_schedules`.

Kept, on purpose:
- `workspaces`: the workspace is still served (its name, its `created_at`); `installations`
  and `oauth_states` are the install's, not the stored copy's.
- `message_tombstones`: ids of messages Slack deleted (or an edit disqualified), no text. A
  purge does not undo a deletion: a copy read before the purge and written after it (a late or
  retried event, a mirror batch already claimed) must still stay out. A later run re-reads Slack,
  which no longer has those messages, so keeping them blocks nothing that exists.
- The live mirror's tables (`mirror_inbox`, `mirror_seen_events`, `mirror_state`): events
  acknowledged and not yet applied are what happens in Slack now, not the stored history, and an
  acknowledged event is never lost; on SQLite they live in a database file of their own
  (`db.inbox`), outside this transaction anyway. `mirror_seen_events` also keeps a retried event
  from coming back.

Every function takes the `AsyncSession` first and never commits. Imports SQLAlchemy and `db` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BackfillJobRun, BackfillSchedule, ChannelCheckpoint, Message, Workspace
from db.records import Run
from db.runs import running_run

_MESSAGES = cast(Table, Message.__table__)
_CHECKPOINTS = cast(Table, ChannelCheckpoint.__table__)
_RUNS = cast(Table, BackfillJobRun.__table__)
_SCHEDULES = cast(Table, BackfillSchedule.__table__)
_WORKSPACES = cast(Table, Workspace.__table__)


class RunStillRunning(Exception):
    """The workspace has a running run: nothing was removed."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"run #{run.job_run_id} is running")
        self.run = run


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """What a workspace's stored copy holds (`stored`), or what a purge removed."""

    messages: int = 0
    runs: int = 0
    checkpoints: int = 0
    schedule: bool = False

    @property
    def empty(self) -> bool:
        return not (self.messages or self.runs or self.checkpoints or self.schedule)


async def _count(session: AsyncSession, table: Table, workspace_id: str) -> int:
    stmt = select(func.count()).select_from(table).where(table.c.workspace_id == workspace_id)
    return int((await session.execute(stmt)).scalar_one())


async def stored(session: AsyncSession, workspace_id: str) -> PurgeCounts:
    """What a purge of the workspace would remove now (reads only)."""
    return PurgeCounts(
        messages=await _count(session, _MESSAGES, workspace_id),
        runs=await _count(session, _RUNS, workspace_id),
        checkpoints=await _count(session, _CHECKPOINTS, workspace_id),
        schedule=await _count(session, _SCHEDULES, workspace_id) > 0,
    )


async def purge_workspace(session: AsyncSession, workspace_id: str) -> PurgeCounts:
    """Remove the workspace's messages, checkpoints, runs and schedule; return what went.

    Raises `RunStillRunning` (having removed nothing) while a run of the workspace is running: a
    running run would write its next page after the purge, and its end to a row that is gone.
    Other workspaces' rows are never touched. Call it inside the caller's transaction: on
    PostgreSQL the workspace row is locked first, and a run's insert (its foreign key takes a
    share lock on that row) waits for the commit, so no run starts between the check and the
    deletes; on SQLite the write transaction (BEGIN IMMEDIATE) already keeps every writer out.
    """
    if session.get_bind().dialect.name == "postgresql":
        lock = select(_WORKSPACES.c.workspace_id).where(_WORKSPACES.c.workspace_id == workspace_id)
        await session.execute(lock.with_for_update())
    running = await running_run(session, workspace_id)
    if running is not None:
        raise RunStillRunning(running)

    async def remove(table: Table) -> int:
        result = await session.execute(delete(table).where(table.c.workspace_id == workspace_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    messages = await remove(_MESSAGES)
    checkpoints = await remove(_CHECKPOINTS)
    runs = await remove(_RUNS)  # before the schedule: their `schedule_id` would be set to null
    schedule = await remove(_SCHEDULES)
    return PurgeCounts(messages=messages, runs=runs, checkpoints=checkpoints, schedule=schedule > 0)


__all__ = ["PurgeCounts", "RunStillRunning", "purge_workspace", "stored"]
