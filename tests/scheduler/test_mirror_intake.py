"""Group commits of the live mirror's intake (`scheduler.mirror_intake`) on SQLite and PostgreSQL:
events arriving together share a transaction, each caller hears about its own event only once it
is committed, a duplicate id is new once, a failed commit reaches every caller of its group (and
stores nothing), and a caller that gives up leaves its group intact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.inbox import Arrival
from db.models import MirrorInbox
from scheduler.mirror_intake import GroupedIntake

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def arrival(event_id: str, channel: str = "C1") -> Arrival:
    return Arrival(
        workspace_id="T1",
        event_id=event_id,
        channel_id=channel,
        event_type="message",
        payload={"type": "message", "text": event_id},
        event_time=NOW,
        now=NOW,
    )


async def inbox_ids(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    t = MirrorInbox.__table__.c
    async with sessions() as session:
        rows = await session.execute(select(t.event_id).order_by(t.inbox_id))
        return [event_id for (event_id,) in rows.all()]


async def test_events_arriving_together_share_commits_in_arrival_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = GroupedIntake(sessions, asyncio.Lock())
    ids = [f"Ev{i:04d}" for i in range(200)]
    answers = await asyncio.gather(*(intake.take_in(arrival(i)) for i in ids))
    assert answers == [True] * len(ids)
    # All came before the first commit began: one transaction.
    assert intake.commits == 1
    assert await inbox_ids(sessions) == ids


async def test_a_duplicate_id_is_new_once_within_a_group_and_after_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = GroupedIntake(sessions, asyncio.Lock())
    answers = await asyncio.gather(
        intake.take_in(arrival("EvA")),
        intake.take_in(arrival("EvB")),
        intake.take_in(arrival("EvB")),  # Slack's retry, in the same group
        intake.take_in(arrival("EvC")),
    )
    assert answers == [True, True, False, True]
    assert await intake.take_in(arrival("EvB")) is False  # and in a later one
    assert await inbox_ids(sessions) == ["EvA", "EvB", "EvC"]


async def test_a_failed_commit_reaches_each_caller_and_stores_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    intake = GroupedIntake(sessions, asyncio.Lock())
    poisoned = arrival("EvBad")
    # Not JSON: the insert fails, as when the database refuses the group.
    poisoned = Arrival(**{**_fields(poisoned), "payload": {"bad": object()}})
    assert await intake.take_in(arrival("EvFirst")) is True
    answers = await asyncio.gather(
        intake.take_in(arrival("EvOk")),
        intake.take_in(poisoned),
        return_exceptions=True,
    )
    assert all(isinstance(a, Exception) for a in answers), answers
    assert await inbox_ids(sessions) == ["EvFirst"]
    # The intake goes on: Slack's retry of the refused event is taken in.
    assert await intake.take_in(arrival("EvOk")) is True


async def test_a_caller_that_gives_up_leaves_its_group_intact(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writes = asyncio.Lock()
    intake = GroupedIntake(sessions, writes)
    await writes.acquire()  # a drainer's claim under way: the group waits
    quitter = asyncio.create_task(intake.take_in(arrival("EvQuit")))
    stayer = asyncio.create_task(intake.take_in(arrival("EvStay")))
    await asyncio.sleep(0.05)
    quitter.cancel()  # its client went away
    writes.release()
    assert await stayer is True
    with pytest.raises(asyncio.CancelledError):
        await quitter
    # Written all the same (Slack retries the unanswered one, and its id is known).
    assert await inbox_ids(sessions) == ["EvQuit", "EvStay"]
    assert await intake.take_in(arrival("EvQuit")) is False


def _fields(a: Arrival) -> dict[str, object]:
    return {name: getattr(a, name) for name in Arrival.__dataclass_fields__}


async def test_inbox_rows_count_once_per_new_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    intake = GroupedIntake(sessions, asyncio.Lock())
    ids = [f"Ev{i % 50:04d}" for i in range(150)]  # each id three times
    answers = await asyncio.gather(*(intake.take_in(arrival(i)) for i in ids))
    assert sum(answers) == 50
    async with sessions() as session:
        total = (await session.execute(select(func.count()).select_from(MirrorInbox))).scalar_one()
    assert total == 50
