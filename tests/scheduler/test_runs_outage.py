"""RunService when the database goes away and comes back (issue 10, finding 1), in process, on
SQLite and PostgreSQL: a run that loses the database mid-way resumes from its checkpoints once
it is back and completes the ground truth; a run whose end cannot be written keeps it in hand
until it can; a schedule fire during the outage runs once the database answers; a stale run
still naming this process as owner is taken over by it; and the heartbeat loop logs the outage
in a line, not a traceback a tick.

PostgreSQL is a private server the test stops (`pg_ctl stop -m fast`) and starts again on the
same port and data directory. SQLite "goes away" the way SQLite does: another connection holds
its write lock past the busy timeout (shortened here), so every write fails with "database is
locked" until it lets go."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import db.session
import fakeslack
from db import runs as repo
from scheduler.cron import ScheduleSpec
from scheduler.schedules import ScheduleService, job_id
from tests.conftest import create_postgres_database
from tests.scheduler.run_service_process import StubEngine
from tests.scheduler.slack_node import dm_dump, first_member, slack_node, stored_keys
from tests.support.restartable_postgres import RestartablePostgres
from tests.support.waiting import eventually

NOW = 1_750_000_000.0
BACK_WITHIN_S = 60  # the run ends or resumes within a minute of the database being back


@dataclass
class Outage:
    """A database for one test that can be taken away and given back."""

    url: str
    down: Callable[[], None]
    up: Callable[[], None]


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Outage]:
    if request.param == "postgresql":
        server: RestartablePostgres = request.getfixturevalue("private_postgres")
        url = create_postgres_database(server.base_url)
        yield Outage(url, server.stop, server.start)
        if not _answers(server):  # a failed test may leave it stopped: the next one needs it
            server.start()
        return
    # A second is long enough for the app's own short transactions to wait for each other, and
    # short enough that a writer held off by the other program fails quickly.
    monkeypatch.setattr(db.session, "SQLITE_BUSY_TIMEOUT_MS", 1000)
    path = tmp_path / "backfill.db"
    held: list[sqlite3.Connection] = []

    def down() -> None:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE workspaces SET name = name")
        held.append(other)

    def up() -> None:
        while held:
            other = held.pop()
            other.rollback()
            other.close()

    yield Outage(f"sqlite+aiosqlite:///{path}", down, up)
    up()


def _answers(server: RestartablePostgres) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", server.port)) == 0


def workspace(seed: int = 12, messages: int = 1500) -> fakeslack.Workspace:
    return fakeslack.generate(seed, users=20, channels=8, messages=messages, days=30, now=NOW)


async def run_status(node: Any, job_run_id: int) -> str | None:
    try:
        row = await node.service.get(job_run_id)
    except Exception:  # noqa: BLE001 - the database may still be on its way back
        return None
    return None if row is None else row.status


async def until_status(node: Any, job_run_id: int, wanted: str, timeout: float, what: str) -> None:
    async def reached() -> bool:
        return await run_status(node, job_run_id) == wanted

    await eventually(reached, timeout, what)


async def test_runs_outage_mid_run_resumes_and_completes(
    outage: Outage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace()
    user = first_member(ws)
    caplog.set_level(logging.WARNING)
    async with slack_node(ws, outage.url, tmp_path) as (fake, node):
        fake.faults.slow(0.05, method="conversations.history")
        row = await node.service.start_manual(ws.team_id, user, days=30)
        await eventually(
            lambda: len(fake.calls_of("conversations.history")) >= 6, 30, "some pages written"
        )
        await asyncio.to_thread(outage.down)
        # Long enough for the run to hit the outage, for several missed heartbeats and for its
        # heartbeat to go stale (1.5 s here).
        await asyncio.sleep(4)
        await asyncio.to_thread(outage.up)
        await eventually(lambda: run_status(node, row.job_run_id), BACK_WITHIN_S, "the run row")
        await until_status(
            node,
            row.job_run_id,
            "success",
            BACK_WITHIN_S,
            "the run to finish after the database came back",
        )
        await node.service.wait_idle()
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "success"
        truth = fakeslack.ground_truth(ws, 30, now=done.started_at.timestamp())
        assert await stored_keys(node, ws.team_id) == truth.must_store
        assert "Backfill finished" in dm_dump(fake, user)
        # Nothing stranded: the next run is accepted and runs.
        again = await node.service.start_manual(ws.team_id, user, days=1)
        await node.service.wait_idle()
        assert await run_status(node, again.job_run_id) == "success"
    outage_lines = [r for r in caplog.records if "heartbeats paused" in r.getMessage()]
    assert len(outage_lines) <= 1
    assert not [r for r in caplog.records if r.name == "scheduler.heartbeat" and r.exc_info]


async def test_runs_outage_when_the_end_is_written_keeps_the_run_in_hand(
    outage: Outage, tmp_path: Path
) -> None:
    ws = workspace(seed=3, messages=100)
    user = first_member(ws)
    stub = StubEngine(pages=12, page_s=0.25)  # 3 s, touching no database
    async with slack_node(ws, outage.url, tmp_path, engine=stub) as (fake, node):
        row = await node.service.start_manual(ws.team_id, user, days=3)
        await eventually(lambda: stub.started, 10, "the run to start")
        await asyncio.to_thread(outage.down)
        await eventually(lambda: stub.running == 0, 10, "the engine to return")
        await asyncio.sleep(2)  # its end cannot be written yet
        await asyncio.to_thread(outage.up)
        await until_status(
            node, row.job_run_id, "success", BACK_WITHIN_S, "the run's end to be written"
        )
        await node.service.wait_idle()
        assert "Backfill finished" in dm_dump(fake, user)
        assert stub.started == [row.job_run_id]  # ended where it was, not run again
        # Cancel works again: a new run is accepted and can be cancelled.
        slow = StubEngine(pages=200, page_s=0.05)
        node.service._engine = slow
        again = await node.service.start_manual(ws.team_id, user, days=3)
        await eventually(lambda: slow.started, 10, "the second run to start")
        await node.service.cancel(ws.team_id, user, is_admin=True)
        await node.service.wait_idle()
        assert await run_status(node, again.job_run_id) == "cancelled"


async def test_runs_outage_schedule_fire_runs_once_the_database_is_back(
    outage: Outage, tmp_path: Path
) -> None:
    ws = workspace(seed=5, messages=100)
    user = first_member(ws)
    stub = StubEngine(pages=2, page_s=0.05)
    async with (
        slack_node(ws, outage.url, tmp_path, engine=stub) as (fake, node),
        running_schedules(node) as (schedules, scheduler),
    ):
        saved = await schedules.save(
            ws.team_id, ScheduleSpec("0 3 * * *", "UTC", 7, True, ()), user
        )
        await asyncio.to_thread(outage.down)
        fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        scheduler.modify_job(job_id(ws.team_id), next_run_time=fire)
        await asyncio.sleep(4)  # the fire came and found the database away
        assert stub.started == []
        await asyncio.to_thread(outage.up)

        async def fired_run() -> Any:
            try:
                return [
                    r
                    for r in await node.service.history(ws.team_id)
                    if r.fire_time == fire and r.status == "success"
                ]
            except Exception:  # noqa: BLE001 - still coming back
                return None

        runs = await eventually(fired_run, BACK_WITHIN_S, "the fired run to finish")
        assert len(runs) == 1 and runs[0].schedule_id == saved.schedule_id
        await node.service.wait_idle()
        assert "Backfill finished" in dm_dump(fake, user)
        after = await schedules.get(ws.team_id)
        assert after is not None and after.last_run_at == fire


@asynccontextmanager
async def running_schedules(node: Any) -> AsyncIterator[tuple[ScheduleService, AsyncIOScheduler]]:
    """A started APScheduler and a ScheduleService on the real clock, firing into the node."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    service = ScheduleService(node.sessions, scheduler, node.service.on_schedule_fire)
    scheduler.start()
    try:
        yield service, scheduler
    finally:
        await service.close()


async def test_runs_outage_own_stale_run_not_in_hand_is_taken_over(
    database_url: str, tmp_path: Path
) -> None:
    """A run row naming this very process as owner, stale, that the process no longer holds
    (its end could not be written before it let go): nobody else would ever beat it, so this
    process takes it over like any other stale run, and it ends."""
    ws = workspace(seed=6, messages=100)
    user = first_member(ws)
    stub = StubEngine(pages=2, page_s=0.05)
    async with slack_node(ws, database_url, tmp_path, engine=stub) as (fake, node):
        async with node.sessions.begin() as session:
            await repo.ensure_workspace_row(session, ws.team_id)
            stranded = await repo.insert_run(
                session,
                workspace_id=ws.team_id,
                job_type="manual",
                owner=node.service.owner,
                now=datetime.fromtimestamp(NOW - 600, UTC),
                triggered_by=user,
                days=3,
            )
        await until_status(
            node, stranded.job_run_id, "success", 30, "the stranded run to be taken over and finish"
        )
        await node.service.wait_idle()
        assert stub.started == [stranded.job_run_id]
        assert "Backfill finished" in dm_dump(fake, user)
