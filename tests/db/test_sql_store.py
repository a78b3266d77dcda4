"""Queries and constraints on a migrated database, each test on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.messages import (
    MESSAGE_ROWS_PER_STATEMENT,
    Checkpoint,
    count_messages,
    ensure_workspace,
    get_checkpoint,
    list_checkpoints,
    save_checkpoint,
    stored_thread_latest_reply,
    upsert_messages,
)
from db.models import BackfillJobRun, BackfillSchedule, Message, Workspace
from db.records import MessageRecord

W = "T0001"
C = "C0001"


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


def record(ts: str, text_: str = "hello there, world", **kw: Any) -> MessageRecord:
    fields: dict[str, Any] = {
        "workspace_id": W,
        "channel_id": C,
        "channel_name": "general",
        "ts": ts,
        "thread_ts": None,
        "user_id": "U1",
        "user_name": "ada",
        "text": text_,
    }
    fields.update(kw)
    return MessageRecord(**fields)


def batch(n: int, start: int = 1_700_000_000) -> list[MessageRecord]:
    return [record(f"{start + i}.000100", f"message number {i}") for i in range(n)]


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions() as s:
        rows = (await s.execute(select(Message).order_by(Message.ts))).scalars().all()
    return {r.ts: r for r in rows}


# --- messages -------------------------------------------------------------------------------


async def test_sql_upsert_same_batch_twice_is_one_row_each_and_changes_nothing(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    records = batch(50)
    async with sessions.begin() as s:
        assert await upsert_messages(s, records) == 50
    first = await stored(sessions)

    async with sessions.begin() as s:
        assert await upsert_messages(s, records) == 0
    second = await stored(sessions)

    assert len(second) == 50
    assert {ts: r.stored_at for ts, r in second.items()} == {
        ts: r.stored_at for ts, r in first.items()
    }
    async with sessions() as s:
        assert await count_messages(s, W) == 50
        assert await count_messages(s, "T-other") == 0


async def test_sql_upsert_changed_content_updates_the_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        await upsert_messages(s, [record("1700000000.000100", "original text")])
    before = (await stored(sessions))["1700000000.000100"]

    edited = [
        record("1700000000.000100", "edited text"),  # changed
        record("1700000001.000100", "brand new one"),  # inserted
    ]
    async with sessions.begin() as s:
        assert await upsert_messages(s, edited) == 2
    async with sessions.begin() as s:
        # Each content column alone counts as a change, including thread_ts becoming set.
        threaded = record("1700000000.000100", "edited text", thread_ts="1700000000.000100")
        renamed = record(
            "1700000000.000100", "edited text", thread_ts="1700000000.000100", user_name="Ada L"
        )
        assert await upsert_messages(s, [threaded]) == 1
        assert await upsert_messages(s, [renamed]) == 1
        assert await upsert_messages(s, [renamed]) == 0

    after = (await stored(sessions))["1700000000.000100"]
    assert after.text == "edited text"
    assert after.thread_ts == "1700000000.000100"
    assert after.user_name == "Ada L"
    assert after.stored_at >= before.stored_at
    async with sessions() as s:
        assert await count_messages(s, W) == 2


async def test_sql_upsert_is_one_statement(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    records = batch(500)
    async with sessions.begin() as s:
        await s.connection()  # BEGIN (SQLite emits it as a statement) happens before counting
        with count_statements(engine) as seen:
            await upsert_messages(s, records)
        assert len(seen) == 1 and seen[0].lstrip().upper().startswith("INSERT"), seen
        with count_statements(engine) as seen:
            assert await upsert_messages(s, records) == 0
        assert len(seen) == 1


async def test_sql_upsert_past_the_bind_limit_uses_the_fewest_statements(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    n = MESSAGE_ROWS_PER_STATEMENT + 10
    async with sessions.begin() as s:
        await s.connection()
        with count_statements(engine) as seen:
            assert await upsert_messages(s, batch(n)) == n
        assert len(seen) == 2
    async with sessions() as s:
        assert await count_messages(s, W) == n


async def test_sql_upsert_duplicate_keys_in_one_batch_keep_the_last(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        n = await upsert_messages(
            s,
            [
                record("1700000000.000100", "first version"),
                record("1700000000.000100", "second version"),
            ],
        )
    assert n == 1
    assert (await stored(sessions))["1700000000.000100"].text == "second version"


async def test_sql_upsert_empty_batch_runs_nothing(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as s:
        await s.connection()
        with count_statements(engine) as seen:
            assert await upsert_messages(s, []) == 0
        assert seen == []


async def test_sql_ts_is_stored_and_returned_as_the_exact_string(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    values = ["1700000000.000100", "1700000000.100000", "0000000001.000000", "1700000000.000000"]
    async with sessions.begin() as s:
        await upsert_messages(s, [record(ts, thread_ts="1700000000.000100") for ts in values])
    rows = await stored(sessions)
    assert sorted(rows) == sorted(values)
    for ts in values:
        assert rows[ts].ts == ts and isinstance(rows[ts].ts, str)
        assert rows[ts].thread_ts == "1700000000.000100"
    async with sessions() as s:
        raw = (await s.execute(text("SELECT ts FROM messages ORDER BY ts"))).scalars().all()
    assert raw == sorted(values)


async def test_sql_stored_thread_latest_reply_is_max_reply_per_thread(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    p1, p2, p3 = "1700000000.000100", "1700000100.000200", "1700000200.000300"
    records = [
        record(p1, thread_ts=p1),  # parent: not a reply
        record("1700000009.000100", thread_ts=p1),
        record("1700000010.000000", thread_ts=p1),  # newest reply of p1 (numerically too)
        record("1700000009.999999", thread_ts=p1),
        record(p2, thread_ts=p2),  # parent with no stored reply
        record("1700000300.000001", thread_ts=p3),  # reply whose parent is not stored
        record("1700000999.000000", thread_ts=p1, channel_id="C-other"),  # other channel
    ]
    async with sessions.begin() as s:
        await upsert_messages(s, records)
    async with sessions() as s:
        await s.connection()
        with count_statements(engine) as seen:
            latest = await stored_thread_latest_reply(s, W, C, [p1, p2, p3, "1600000000.000000"])
        assert len(seen) == 1
        assert await stored_thread_latest_reply(s, W, C, []) == {}
    assert latest == {p1: "1700000010.000000", p3: "1700000300.000001"}


# --- workspaces and checkpoints ---------------------------------------------------------------


async def test_sql_ensure_workspace_upserts_and_keeps_created_at(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        await ensure_workspace(s, W, "Acme")
    async with sessions() as s:
        first = await s.get(Workspace, W)
    async with sessions.begin() as s:
        await ensure_workspace(s, W, "Acme")
        await ensure_workspace(s, W, "Acme Corp")
    async with sessions() as s:
        rows = (await s.execute(select(Workspace))).scalars().all()
    assert [(r.workspace_id, r.name) for r in rows] == [(W, "Acme Corp")]
    assert first is not None and rows[0].created_at == first.created_at


async def test_sql_checkpoints_round_trip_and_upsert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        assert await get_checkpoint(s, W, C) is None
    cp = Checkpoint(
        workspace_id=W,
        channel_id=C,
        channel_name="general",
        job_run_id=None,
        phase="history",
        window_oldest_ts="1699000000.000000",
        window_latest_ts="1700000000.000000",
        resume_latest_ts="1699500000.000100",
    )
    async with sessions.begin() as s:
        saved = await save_checkpoint(s, cp)
        await save_checkpoint(
            s, Checkpoint(workspace_id=W, channel_id="C0000", channel_name="random")
        )
        await save_checkpoint(s, Checkpoint(workspace_id="T-other", channel_id=C, channel_name="x"))
    async with sessions() as s:
        got = await get_checkpoint(s, W, C)
    assert got is not None and got == saved
    assert got.resume_latest_ts == "1699500000.000100" and got.high_water_ts is None
    assert got.updated_at is not None and got.updated_at.tzinfo is not None

    done = Checkpoint(
        workspace_id=W,
        channel_id=C,
        channel_name="general-renamed",
        phase="done",
        window_oldest_ts="1699000000.000000",
        window_latest_ts="1700000000.000000",
        resume_latest_ts=None,
        high_water_ts="1700000000.000000",
    )
    async with sessions.begin() as s:
        await save_checkpoint(s, done)
    async with sessions() as s:
        listed = await list_checkpoints(s, W)
    assert [c.channel_id for c in listed] == ["C0000", C]
    assert listed[1].phase == "done" and listed[1].resume_latest_ts is None
    assert listed[1].channel_name == "general-renamed"
    assert listed[1].high_water_ts == "1700000000.000000"


async def test_sql_checkpoint_phase_is_checked(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await save_checkpoint(
                s, Checkpoint(workspace_id=W, channel_id=C, channel_name="g", phase="walking")
            )


# --- timestamps --------------------------------------------------------------------------------


async def test_sql_timestamps_round_trip_as_aware_utc(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    paris_summer = timezone(timedelta(hours=2))
    given = datetime(2024, 7, 1, 9, 30, 15, 123456, tzinfo=paris_summer)
    async with sessions.begin() as s:
        s.add(Workspace(workspace_id=W, name="Acme", created_at=given))
        await s.flush()  # no relationship() between the models: the parent row goes first
        s.add(
            BackfillSchedule(
                workspace_id=W,
                cron_expression="0 3 * * *",
                timezone="Europe/Paris",
                created_by="U1",
                next_run_at=given,
                last_run_at=None,
            )
        )
    async with sessions() as s:
        ws = await s.get(Workspace, W)
        schedule = (await s.execute(select(BackfillSchedule))).scalar_one()
    assert ws is not None
    for value in (ws.created_at, schedule.next_run_at, schedule.created_at, schedule.updated_at):
        assert value is not None
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert ws.created_at == given
    assert ws.created_at.replace(tzinfo=None) == datetime(2024, 7, 1, 7, 30, 15, 123456)
    assert schedule.last_run_at is None
    assert schedule.channel_ids == [] and schedule.is_active is True
    assert schedule.include_all_channels is True and schedule.days_to_backfill == 7


async def test_sql_naive_datetimes_are_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Exception, match="naive datetime refused"):
        async with sessions.begin() as s:
            s.add(Workspace(workspace_id=W, name="Acme", created_at=datetime(2024, 1, 1, 12, 0)))
    async with sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Workspace))).scalar_one() == 0


async def test_sql_timestamps_compare_in_sql_as_utc_instants(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    early = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    # Later instant, but an earlier wall-clock time in its own zone.
    later = datetime(2024, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5)))
    async with sessions.begin() as s:
        s.add_all(
            [
                Workspace(workspace_id="A", name="a", created_at=early),
                Workspace(workspace_id="B", name="b", created_at=later),
            ]
        )
    async with sessions() as s:
        newest = (
            (await s.execute(select(Workspace.workspace_id).order_by(Workspace.created_at.desc())))
            .scalars()
            .first()
        )
        after_noon = (
            (
                await s.execute(
                    select(Workspace.workspace_id).where(
                        Workspace.created_at > datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
                    )
                )
            )
            .scalars()
            .all()
        )
    assert newest == "B" and after_noon == ["B"]


# --- run constraints -----------------------------------------------------------------------------


def run(status: str, **kw: Any) -> BackfillJobRun:
    fields: dict[str, Any] = {
        "workspace_id": W,
        "job_type": "manual",
        "status": status,
        "triggered_by": "U1",
    }
    fields.update(kw)
    return BackfillJobRun(**fields)


def scheduled_run(status: str, schedule_id: int, fire_time: datetime) -> BackfillJobRun:
    """A run the schedule started at `fire_time` (nobody triggered it)."""
    return run(
        status,
        job_type="scheduled",
        schedule_id=schedule_id,
        fire_time=fire_time,
        triggered_by=None,
    )


async def _workspace_and_schedule(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as s:
        await ensure_workspace(s, W, "Acme")
        await ensure_workspace(s, "T0002", "Other")
        schedule = BackfillSchedule(
            workspace_id=W, cron_expression="0 3 * * *", timezone="UTC", created_by="U1"
        )
        s.add(schedule)
    return schedule.schedule_id


async def test_sql_one_running_run_per_workspace(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _workspace_and_schedule(sessions)
    async with sessions.begin() as s:
        s.add_all([run("success"), run("success"), run("failed"), run("cancelled")])
        s.add(run("running"))
        s.add(run("running", workspace_id="T0002"))  # another workspace may run at once

    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(run("running"))

    # Once the running run finishes, a new one may start.
    async with sessions.begin() as s:
        current = (
            await s.execute(
                select(BackfillJobRun).where(
                    BackfillJobRun.workspace_id == W, BackfillJobRun.status == "running"
                )
            )
        ).scalar_one()
        current.status = "success"
        current.completed_at = datetime.now(UTC)
    async with sessions.begin() as s:
        s.add(run("running"))
    async with sessions() as s:
        counts = (
            await s.execute(
                select(BackfillJobRun.status, func.count())
                .where(BackfillJobRun.workspace_id == W)
                .group_by(BackfillJobRun.status)
            )
        ).all()
    assert dict(counts) == {"success": 3, "failed": 1, "cancelled": 1, "running": 1}


async def test_sql_a_scheduled_fire_is_claimed_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    schedule_id = await _workspace_and_schedule(sessions)
    fire = datetime(2024, 3, 1, 3, 0, tzinfo=UTC)
    async with sessions.begin() as s:
        s.add(scheduled_run("success", schedule_id, fire))
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            # Same instant written in another zone is the same fire.
            s.add(
                scheduled_run("failed", schedule_id, fire.astimezone(timezone(timedelta(hours=1))))
            )
    async with sessions.begin() as s:
        s.add(scheduled_run("success", schedule_id, fire + timedelta(days=1)))
        # Manual runs have no schedule and no fire time: NULLs never collide.
        s.add_all([run("success"), run("failed")])


async def test_sql_run_checks_and_schedule_uniqueness(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    schedule_id = await _workspace_and_schedule(sessions)
    for bad in (run("paused"), run("success", job_type="cron")):
        with pytest.raises(IntegrityError):
            async with sessions.begin() as s:
                s.add(bad)
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            s.add(
                BackfillSchedule(
                    workspace_id=W, cron_expression="* * * * *", timezone="UTC", created_by="U2"
                )
            )
    with pytest.raises(IntegrityError):  # foreign keys are enforced (SQLite too)
        async with sessions.begin() as s:
            s.add(run("success", workspace_id="T-missing"))

    # Deleting the schedule keeps its runs, with schedule_id set to NULL.
    async with sessions.begin() as s:
        s.add(scheduled_run("success", schedule_id, datetime(2024, 1, 1, tzinfo=UTC)))
    async with sessions.begin() as s:
        await s.execute(
            BackfillSchedule.__table__.delete().where(BackfillSchedule.schedule_id == schedule_id)
        )
    async with sessions() as s:
        runs = (await s.execute(select(BackfillJobRun))).scalars().all()
    assert [(r.schedule_id, r.messages_collected, r.channels_processed) for r in runs] == [
        (None, 0, 0)
    ]
