"""ScheduleService: the schedule table and APScheduler jobs in step, and schedules that fire.

Every test runs on SQLite and on PostgreSQL. Time is injected: the service gets a fake clock,
and APScheduler's own `datetime.now` (scheduler and executor) reads the same clock, so a
real `AsyncIOScheduler` fires at cron instants (DST nights included) without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, tzinfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.cron_words import describe_cron
from db import schedules as repo
from db.messages import ensure_workspace
from db.models import BackfillSchedule, Workspace
from db.records import Schedule
from scheduler.cron import ScheduleError, ScheduleSpec, validate_schedule
from scheduler.schedules import (
    EXECUTOR_ALIAS,
    ScheduleService,
    fire_schedule,
    job_id,
    spec_of,
)

W = "T0001"
ADMIN = "U0ADMIN"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(utc(2025, 1, 1, 12, 0))

    class FakeDatetime:
        # APScheduler 3 only calls `datetime.now(tz)` in these two modules.
        @staticmethod
        def now(tz: tzinfo | None = None) -> datetime:
            return fake.now.astimezone(tz) if tz else fake.now.replace(tzinfo=None)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FakeDatetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", FakeDatetime)
    return fake


class Fires:
    """Records on_fire calls and lets a test wait for a job run to finish."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, datetime]] = []
        self.fail = False
        self.done = asyncio.Queue[JobExecutionEvent]()

    async def __call__(self, workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        self.calls.append((workspace_id, schedule_id, fire_time))
        if self.fail:
            raise RuntimeError("engine exploded")

    def listen(self, event: JobExecutionEvent) -> None:
        self.done.put_nowait(event)


@pytest.fixture
def fires() -> Fires:
    return Fires()


def new_scheduler(fires: Fires) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_listener(fires.listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return scheduler


@pytest.fixture
async def scheduler(fires: Fires) -> AsyncIterator[AsyncIOScheduler]:
    sched = new_scheduler(fires)
    sched.start()
    try:
        yield sched
    finally:
        if sched.running:  # the service's close() has usually stopped it
            sched.shutdown(wait=False)
        await asyncio.sleep(0)


@pytest.fixture
async def service(
    sessions: async_sessionmaker[AsyncSession],
    scheduler: AsyncIOScheduler,
    fires: Fires,
    clock: FakeClock,
) -> AsyncIterator[ScheduleService]:
    svc = ScheduleService(sessions, scheduler, fires, clock=clock)
    yield svc
    await svc.close()  # a fire a test set off finishes before the database goes


async def tick(scheduler: AsyncIOScheduler, clock: FakeClock, to: datetime) -> None:
    """Move the clock and let the scheduler look at its jobs."""
    clock.now = to
    scheduler.wakeup()
    for _ in range(3):
        await asyncio.sleep(0)


async def run_once(
    scheduler: AsyncIOScheduler, clock: FakeClock, fires: Fires, to: datetime
) -> JobExecutionEvent:
    await tick(scheduler, clock, to)
    return await asyncio.wait_for(fires.done.get(), timeout=10)


async def stored(sessions: async_sessionmaker[AsyncSession]) -> Schedule | None:
    async with sessions() as s:
        return await repo.get_schedule(s, W)


def daily(tz: str = "UTC", cron: str = "0 2 * * *", **kw: object) -> ScheduleSpec:
    return validate_schedule(cron, tz, **kw)  # type: ignore[arg-type]


def assert_in_step(scheduler: AsyncIOScheduler, schedule: Schedule | None) -> None:
    job = scheduler.get_job(job_id(W))
    if schedule is None or not schedule.is_active:
        assert job is None
        return
    assert job is not None
    assert job.func is fire_schedule
    assert job.args == (W, schedule.schedule_id)
    assert job.executor == EXECUTOR_ALIAS
    assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 300
    # In UTC: a repeated local time (fold=1) never compares equal across zones (PEP 495).
    assert job.next_run_time.astimezone(UTC) == schedule.next_run_at


# --- table and jobs in step -------------------------------------------------------------------


async def test_schedules_save_creates_row_and_job(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    spec = daily("Europe/Paris", days=3, channel_ids=["C0001", "C0002"])
    saved = await service.save(W, spec, ADMIN, workspace_name="Acme")

    assert describe_cron(saved.cron_expression) == "At 02:00"
    assert saved.is_active and saved.created_by == ADMIN
    assert saved.next_run_at == utc(2025, 1, 2, 1, 0)  # 02:00 CET
    assert saved.created_at == saved.updated_at == clock.now
    assert saved.channel_ids == ("C0001", "C0002") and not saved.include_all_channels
    assert spec_of(saved) == spec
    assert_in_step(scheduler, saved)
    row = await stored(sessions)
    assert row is not None and row.timezone == "Europe/Paris" and row.days_to_backfill == 3
    assert row.channel_ids == ("C0001", "C0002")
    async with sessions() as s:
        assert (await s.execute(select(Workspace.name))).scalar_one() == "Acme"
    assert await service.get(W) == saved


async def test_schedules_save_creates_a_missing_workspace_and_keeps_an_existing_name(
    service: ScheduleService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await service.save(W, daily(), ADMIN)
    async with sessions.begin() as s:
        assert (await s.execute(select(Workspace.name))).scalar_one() == W
        await ensure_workspace(s, W, "Acme")
    await service.save(W, daily(cron="0 3 * * *"), ADMIN)
    async with sessions() as s:
        assert (await s.execute(select(Workspace.name))).scalar_one() == "Acme"


async def test_schedules_replace_keeps_one_row_its_id_and_created_at(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    first = await service.save(W, daily(), ADMIN)
    clock.now += timedelta(hours=1)
    second = await service.save(W, daily("America/New_York", "30 6 * * 1-5", days=30), "U0OTHER")

    assert second.schedule_id == first.schedule_id
    assert second.created_at == first.created_at
    assert second.updated_at == clock.now
    assert second.cron_expression == "30 6 * * 1-5" and second.created_by == "U0OTHER"
    assert describe_cron(second.cron_expression) == "At 06:30, Monday through Friday"
    assert second.next_run_at == utc(2025, 1, 2, 11, 30)  # Thursday 06:30 EST
    assert_in_step(scheduler, second)
    assert len([j for j in scheduler.get_jobs() if j.id.startswith("schedule:")]) == 1
    async with sessions() as s:
        assert len((await s.execute(select(BackfillSchedule))).scalars().all()) == 1


async def test_schedules_pause_resume_delete_keep_table_and_jobs_in_step(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
) -> None:
    await service.save(W, daily(), ADMIN)

    paused = await service.pause(W)
    assert not paused.is_active and paused.next_run_at is None
    assert_in_step(scheduler, paused)
    assert await stored(sessions) == paused  # what the service returns is the stored row
    async with sessions() as s:
        assert await repo.list_active_schedules(s) == []

    clock.now = utc(2025, 1, 5, 3, 0)  # days later: missed fires are not made up
    resumed = await service.resume(W)
    assert resumed.is_active and resumed.next_run_at == utc(2025, 1, 6, 2, 0)
    assert_in_step(scheduler, resumed)

    deleted = await service.delete(W)
    assert deleted.schedule_id == resumed.schedule_id
    assert_in_step(scheduler, None)
    assert await stored(sessions) is None
    assert await service.get(W) is None


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("pause", "There is no schedule to pause."),
        ("resume", "There is no schedule to resume."),
        ("delete", "There is no schedule to delete."),
    ],
)
async def test_schedules_changes_without_a_schedule_say_so(
    service: ScheduleService, action: str, says: str
) -> None:
    with pytest.raises(ScheduleError) as info:
        await getattr(service, action)(W)
    assert says in str(info.value) and "/backfill schedule" in str(info.value)


async def test_schedules_pausing_twice_or_resuming_an_active_schedule_say_so(
    service: ScheduleService, scheduler: AsyncIOScheduler
) -> None:
    saved = await service.save(W, daily(), ADMIN)
    with pytest.raises(ScheduleError, match="already active"):
        await service.resume(W)
    assert_in_step(scheduler, saved)
    paused = await service.pause(W)
    with pytest.raises(ScheduleError, match="already paused"):
        await service.pause(W)
    assert_in_step(scheduler, paused)


async def test_schedules_one_per_workspace_others_untouched(
    service: ScheduleService, scheduler: AsyncIOScheduler
) -> None:
    a = await service.save(W, daily(), ADMIN)
    b = await service.save("T0002", daily(cron="0 4 * * *"), ADMIN)
    assert a.schedule_id != b.schedule_id
    await service.delete(W)
    assert scheduler.get_job(job_id("T0002")) is not None
    assert (await service.get("T0002")) == b


async def test_schedules_load_all_rebuilds_jobs_after_a_restart(
    sessions: async_sessionmaker[AsyncSession], fires: Fires, clock: FakeClock
) -> None:
    first = new_scheduler(fires)
    first.start()
    service = ScheduleService(sessions, first, fires, clock=clock)
    kept = await service.save(W, daily("Europe/Paris"), ADMIN)
    await service.save("T0002", daily(cron="0 4 * * *"), ADMIN)
    await service.pause("T0002")
    first.shutdown(wait=False)
    await asyncio.sleep(0)

    clock.now = utc(2025, 1, 3, 12, 0)  # the stored next_run_at is now long past
    second = new_scheduler(fires)  # a new process: nothing in memory
    restarted = ScheduleService(sessions, second, fires, clock=clock)
    loaded = await restarted.load_all()
    second.start()
    try:
        assert [s.workspace_id for s in loaded] == [W]
        assert loaded[0].schedule_id == kept.schedule_id
        assert loaded[0].next_run_at == utc(2025, 1, 4, 1, 0)
        row = await stored(sessions)
        assert row is not None and row.next_run_at == utc(2025, 1, 4, 1, 0)
        assert_in_step(second, loaded[0])
        assert second.get_job(job_id("T0002")) is None
        # Idempotent: loading again changes nothing.
        assert await restarted.load_all() == loaded
    finally:
        second.shutdown(wait=False)
        await asyncio.sleep(0)


async def test_schedules_load_all_drops_jobs_of_schedules_changed_by_another_process(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await service.save(W, daily(), ADMIN)
    await service.save("T0002", daily(), ADMIN)
    async with sessions.begin() as s:  # another process pauses one, deletes the other
        await repo.set_active(s, W, False, next_run_at=None)
        await repo.delete_schedule(s, "T0002")
    assert await service.load_all() == []
    assert scheduler.get_jobs() == []


# --- firing -----------------------------------------------------------------------------------


async def test_schedules_fire_calls_on_fire_with_the_exact_fire_time_and_records_it(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    fires: Fires,
    clock: FakeClock,
) -> None:
    saved = await service.save(W, daily(), ADMIN)
    await tick(scheduler, clock, utc(2025, 1, 2, 1, 59, 59))
    assert fires.calls == []

    event = await run_once(scheduler, clock, fires, utc(2025, 1, 2, 2, 0, 3))  # 3 s late
    assert event.code == EVENT_JOB_EXECUTED
    assert fires.calls == [(W, saved.schedule_id, utc(2025, 1, 2, 2, 0))]
    assert fires.calls[0][2].tzinfo is UTC

    after = await service.get(W)
    assert after is not None
    assert after.last_run_at == utc(2025, 1, 2, 2, 0)
    assert after.next_run_at == utc(2025, 1, 3, 2, 0)
    assert after.updated_at == saved.updated_at  # a fire is not an edit
    assert_in_step(scheduler, after)

    await run_once(scheduler, clock, fires, utc(2025, 1, 3, 2, 0))
    assert [c[2] for c in fires.calls] == [utc(2025, 1, 2, 2, 0), utc(2025, 1, 3, 2, 0)]


async def test_schedules_fire_across_dst_in_the_schedules_time_zone(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    fires: Fires,
    clock: FakeClock,
) -> None:
    clock.now = utc(2025, 3, 29, 12, 0)
    saved = await service.save(W, daily("Europe/Paris", "30 2 * * *"), ADMIN)
    assert saved.next_run_at == utc(2025, 3, 30, 1, 30)  # the skipped 02:30, old offset

    await run_once(scheduler, clock, fires, utc(2025, 3, 30, 1, 30))
    spring = await service.get(W)
    assert spring is not None and spring.last_run_at == utc(2025, 3, 30, 1, 30)
    assert spring.next_run_at == utc(2025, 3, 31, 0, 30)  # 02:30 CEST
    assert_in_step(scheduler, spring)

    # Autumn: reload the schedule just before the night the clocks go back.
    clock.now = utc(2025, 10, 25, 12, 0)
    await service.pause(W)
    resumed = await service.resume(W)
    assert resumed.next_run_at == utc(2025, 10, 26, 0, 30)  # 02:30 CEST
    await run_once(scheduler, clock, fires, utc(2025, 10, 26, 0, 30))
    between = await service.get(W)
    assert between is not None and between.next_run_at == utc(2025, 10, 26, 1, 30)  # 02:30 CET
    assert_in_step(scheduler, between)
    await run_once(scheduler, clock, fires, utc(2025, 10, 26, 1, 30))
    autumn = await service.get(W)
    assert autumn is not None and autumn.last_run_at == utc(2025, 10, 26, 1, 30)
    assert autumn.next_run_at == utc(2025, 10, 27, 1, 30)

    assert fires.calls == [
        (W, saved.schedule_id, utc(2025, 3, 30, 1, 30)),
        (W, saved.schedule_id, utc(2025, 10, 26, 0, 30)),
        (W, saved.schedule_id, utc(2025, 10, 26, 1, 30)),
    ]


async def test_schedules_coalesced_late_fire_within_grace_passes_the_latest_fire_time(
    service: ScheduleService, scheduler: AsyncIOScheduler, fires: Fires, clock: FakeClock
) -> None:
    saved = await service.save(W, daily(cron="*/15 * * * *"), ADMIN)
    # The loop was stuck: 12:15 and 12:30 are both due; one run, for 12:30.
    event = await run_once(scheduler, clock, fires, utc(2025, 1, 1, 12, 33))
    assert event.code == EVENT_JOB_EXECUTED
    assert fires.calls == [(W, saved.schedule_id, utc(2025, 1, 1, 12, 30))]
    after = await service.get(W)
    assert after is not None and after.next_run_at == utc(2025, 1, 1, 12, 45)


async def test_schedules_fire_past_the_grace_is_skipped(
    service: ScheduleService, scheduler: AsyncIOScheduler, fires: Fires, clock: FakeClock
) -> None:
    await service.save(W, daily(), ADMIN)
    await tick(scheduler, clock, utc(2025, 1, 2, 2, 6))  # 6 min late, grace is 5
    await asyncio.sleep(0.05)
    assert fires.calls == []
    job = scheduler.get_job(job_id(W))
    assert job is not None and job.next_run_time.astimezone(UTC) == utc(2025, 1, 3, 2, 0)


async def test_schedules_failing_on_fire_still_moves_next_run_at(
    service: ScheduleService, scheduler: AsyncIOScheduler, fires: Fires, clock: FakeClock
) -> None:
    await service.save(W, daily(), ADMIN)
    fires.fail = True
    event = await run_once(scheduler, clock, fires, utc(2025, 1, 2, 2, 0))
    assert event.code == EVENT_JOB_ERROR
    after = await service.get(W)
    assert after is not None
    assert after.last_run_at == utc(2025, 1, 2, 2, 0)
    assert after.next_run_at == utc(2025, 1, 3, 2, 0)


async def test_schedules_stale_job_does_not_fire_what_the_table_no_longer_says(
    service: ScheduleService,
    scheduler: AsyncIOScheduler,
    sessions: async_sessionmaker[AsyncSession],
    fires: Fires,
    clock: FakeClock,
) -> None:
    await service.save(W, daily(), ADMIN)
    async with sessions.begin() as s:  # another process moves it to 04:00
        await repo.upsert_schedule(
            s,
            W,
            cron_expression="0 4 * * *",
            timezone="UTC",
            days_to_backfill=7,
            include_all_channels=True,
            channel_ids=[],
            created_by=ADMIN,
            next_run_at=utc(2025, 1, 2, 4, 0),
        )
    await run_once(scheduler, clock, fires, utc(2025, 1, 2, 2, 0))
    assert fires.calls == []
    job = scheduler.get_job(job_id(W))
    assert job is not None and job.next_run_time.astimezone(UTC) == utc(2025, 1, 2, 4, 0)

    async with sessions.begin() as s:  # and then pauses it
        await repo.set_active(s, W, False, next_run_at=None)
    await run_once(scheduler, clock, fires, utc(2025, 1, 2, 4, 0))
    assert fires.calls == []
    assert scheduler.get_job(job_id(W)) is None


async def test_schedules_restart_within_grace_runs_the_missed_fire_once(
    sessions: async_sessionmaker[AsyncSession], fires: Fires, clock: FakeClock
) -> None:
    first = new_scheduler(fires)
    service = ScheduleService(sessions, first, fires, clock=clock)
    saved = await service.save(W, daily(), ADMIN)  # next 2025-01-02 02:00, never started

    clock.now = utc(2025, 1, 2, 2, 2)  # the process came back 2 minutes after the fire
    second = new_scheduler(fires)
    restarted = ScheduleService(sessions, second, fires, clock=clock)
    await restarted.load_all()
    second.start()
    try:
        await asyncio.wait_for(fires.done.get(), timeout=10)
        assert fires.calls == [(W, saved.schedule_id, utc(2025, 1, 2, 2, 0))]
        after = await restarted.get(W)
        assert after is not None and after.next_run_at == utc(2025, 1, 3, 2, 0)
        assert_in_step(second, after)
    finally:
        second.shutdown(wait=False)
        await asyncio.sleep(0)


async def test_schedules_after_fire_never_moves_last_run_at_back(
    service: ScheduleService, clock: FakeClock
) -> None:
    await service.save(W, daily(), ADMIN)
    clock.now = utc(2025, 1, 3, 2, 0, 5)
    done = await service.after_fire(W, utc(2025, 1, 3, 2, 0))
    assert done is not None and done.last_run_at == utc(2025, 1, 3, 2, 0)
    again = await service.after_fire(W, utc(2025, 1, 2, 2, 0))  # a straggler process
    assert again is not None and again.last_run_at == utc(2025, 1, 3, 2, 0)
    assert again.next_run_at == utc(2025, 1, 4, 2, 0)
    assert await service.after_fire("T-none", utc(2025, 1, 3, 2, 0)) is None


async def test_schedules_fire_schedule_outside_the_executor_is_refused() -> None:
    with pytest.raises(RuntimeError, match="executor"):
        await fire_schedule(W, 1)


def test_schedules_job_function_is_module_level_taking_ids() -> None:
    assert fire_schedule.__module__ == "scheduler.schedules"
    assert fire_schedule.__qualname__ == "fire_schedule"


async def test_schedules_close_lets_a_fire_in_flight_finish(
    sessions: async_sessionmaker[AsyncSession],
    scheduler: AsyncIOScheduler,
    fires: Fires,
    clock: FakeClock,
) -> None:
    """Shutting down waits for a fire that has started (it holds database connections) and
    records it, instead of leaving it to be cancelled with the event loop."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_fire(workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        started.set()
        await release.wait()
        await fires(workspace_id, schedule_id, fire_time)

    service = ScheduleService(sessions, scheduler, slow_fire, clock=clock)
    await service.save(W, daily(), ADMIN)
    await tick(scheduler, clock, utc(2025, 1, 2, 2, 0, 1))
    await asyncio.wait_for(started.wait(), timeout=10)
    closing = asyncio.create_task(service.close())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done() and scheduler.state == STATE_PAUSED  # no new fire meanwhile
    release.set()
    await asyncio.wait_for(closing, timeout=10)
    assert not scheduler.running
    assert [(w, t) for w, _, t in fires.calls] == [(W, utc(2025, 1, 2, 2, 0))]
    after = await stored(sessions)
    assert after is not None and after.last_run_at == utc(2025, 1, 2, 2, 0)
