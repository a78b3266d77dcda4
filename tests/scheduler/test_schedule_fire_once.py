# ruff: noqa: F811 - the fixtures imported from test_schedules are test parameters here
"""One place checks and records a fire: `ScheduleService` hands its `on_fire` the schedule it
read for the fire (`fire_in_hand`) and records the fire once when `on_fire` returns, whether
`on_fire` is a plain callback or the run service (which then neither re-reads nor records it).
SQLite and PostgreSQL; APScheduler's clock is injected as in `test_schedules.py`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import fakeslack
from db import schedules as repo
from db.records import Schedule
from scheduler.cron import ScheduleSpec
from scheduler.schedules import ScheduleService
from tests.scheduler.run_service_process import StubEngine
from tests.scheduler.slack_node import slack_node
from tests.scheduler.test_schedules import (  # noqa: F401 - the fixtures are shared
    ADMIN,
    FakeClock,
    Fires,
    W,
    clock,
    daily,
    fires,
    run_once,
    scheduler,
    utc,
)


def count_records(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Every fire written to the schedule table (`mark_fired`), by fire time."""
    recorded: list[datetime] = []
    original = repo.mark_fired

    async def mark_fired(*args: Any, **kwargs: Any) -> Any:
        recorded.append(kwargs["fire_time"])
        return await original(*args, **kwargs)

    monkeypatch.setattr(repo, "mark_fired", mark_fired)
    return recorded


async def test_schedules_on_fire_gets_the_schedule_in_hand_and_the_fire_is_recorded_once(
    sessions: async_sessionmaker[AsyncSession],
    scheduler: AsyncIOScheduler,
    fires: Fires,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = count_records(monkeypatch)
    seen: list[Schedule | None] = []
    service: ScheduleService

    async def on_fire(workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        seen.append(service.fire_in_hand(workspace_id, fire_time))
        assert service.fire_in_hand(workspace_id, fire_time + timedelta(minutes=1)) is None
        assert service.fire_in_hand("T-other", fire_time) is None

    service = ScheduleService(sessions, scheduler, on_fire, clock=clock)
    try:
        saved = await service.save(W, daily(), ADMIN)
        event = await run_once(scheduler, clock, fires, utc(2025, 1, 2, 2, 0, 1))
        assert event.code == EVENT_JOB_EXECUTED
        assert len(seen) == 1 and seen[0] is not None
        assert seen[0].schedule_id == saved.schedule_id and seen[0].is_active
        assert service.fire_in_hand(W, utc(2025, 1, 2, 2, 0)) is None  # no longer in hand
        assert recorded == [utc(2025, 1, 2, 2, 0)]
    finally:
        await service.close()


async def test_schedules_fire_into_the_run_service_is_recorded_once(
    database_url: str, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    fire = datetime(2025, 1, 2, 2, 0, tzinfo=UTC)
    ws = fakeslack.generate(12, users=6, channels=2, messages=20, days=5, now=fire.timestamp())
    stub = StubEngine(pages=1, page_s=0.01)
    async with slack_node(ws, database_url, tmp_path, clock=clock, engine=stub) as (_, node):
        done = asyncio.Queue[JobExecutionEvent]()
        scheduler = node.schedules._scheduler
        scheduler.add_listener(done.put_nowait, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        try:
            saved = await node.schedules.save(
                ws.team_id, ScheduleSpec("0 2 * * *", "UTC", 7, True, ()), ADMIN
            )
            recorded = count_records(monkeypatch)
            clock.now = fire
            scheduler.wakeup()
            event = await asyncio.wait_for(done.get(), timeout=10)
            assert event.code == EVENT_JOB_EXECUTED
            await node.service.wait_idle()
        finally:
            await node.schedules.close()
        assert recorded == [fire]
        runs = await node.service.history(ws.team_id)
        assert [(r.job_type, r.schedule_id, r.fire_time) for r in runs] == [
            ("scheduled", saved.schedule_id, fire)
        ]
        after = await node.schedules.get(ws.team_id)
        assert after is not None and after.last_run_at == fire
        assert after.next_run_at == datetime(2025, 1, 3, 2, 0, tzinfo=UTC)
