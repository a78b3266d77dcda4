"""What a run asked of Slack (`backfill_job_runs.slack_calls`): summed over attempts, stored when
a run ends or is released, read back as `db.records.SlackCalls`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import runs as repo
from db.records import SlackCalls, add_slack_calls

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
OWNER = "host:1:abc"
HISTORY, REPLIES, USERS = "conversations.history", "conversations.replies", "users.list"


async def new_run(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as session:
        await repo.ensure_workspace_row(session, "T1")
        run = await repo.insert_run(
            session, workspace_id="T1", job_type="manual", owner=OWNER, now=NOW
        )
    assert run.slack_calls == ()  # no figures before the run ends
    return run.job_run_id


def test_figures_of_two_attempts_add_up_method_by_method() -> None:
    first = (SlackCalls(HISTORY, 10, 1.5), SlackCalls(USERS, 1))
    second = (SlackCalls(HISTORY, 4, 0.5, rate_limited=1, spaced=True), SlackCalls(REPLIES, 30))
    assert add_slack_calls(first, second) == (
        SlackCalls(REPLIES, 30),
        SlackCalls(HISTORY, 14, 2.0, rate_limited=1, spaced=True),
        SlackCalls(USERS, 1),
    )  # busiest first
    assert add_slack_calls((), second) == (SlackCalls(REPLIES, 30), second[0])
    assert add_slack_calls(first, ()) == first


async def test_finished_run_keeps_its_figures(sessions: async_sessionmaker[AsyncSession]) -> None:
    run_id = await new_run(sessions)
    figures = (SlackCalls(REPLIES, 58, 72.4, rate_limited=1, spaced=True), SlackCalls(HISTORY, 6))
    async with sessions.begin() as session:
        done = await repo.finish_run(
            session,
            run_id,
            OWNER,
            status="success",
            now=NOW,
            messages_collected=5,
            channels_processed=1,
            slack_calls=figures,
        )
    assert done is not None and done.slack_calls == figures
    async with sessions() as session:
        again = await repo.get_run(session, run_id)
    assert again is not None and again.slack_calls == figures


async def test_released_run_keeps_the_figures_so_far(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    run_id = await new_run(sessions)
    so_far = (SlackCalls(HISTORY, 3, 0.25),)
    async with sessions.begin() as session:
        assert await repo.release_run(session, run_id, OWNER, slack_calls=so_far)
    async with sessions() as session:
        released = await repo.get_run(session, run_id)
    assert released is not None and released.slack_calls == so_far
    assert released.status == "running" and released.owner is None
