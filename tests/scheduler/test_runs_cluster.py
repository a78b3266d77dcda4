"""Several app processes on one PostgreSQL: a fire runs once, the workspace lock and cancel work
across processes, and a run whose process died is resumed by another and completes the ground
truth with no duplicates. Two RunService instances stand for two processes; the last tests use
real OS processes (`run_service_process.py`) and a `python -m fakeslack` subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import fakeslack
from db.models import BackfillJobRun
from db.records import Run
from db.session import create_engine, make_sessionmaker
from fakeslack import FakeSlack
from scheduler.cron import ScheduleSpec
from scheduler.runs import RunRefused
from tests.scheduler.run_service_process import StubEngine, crash, shifted_clock
from tests.scheduler.slack_node import node_on, stored_keys
from tests.support.waiting import eventually

NOW = 1_750_000_000.0
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "U0ADMIN"


def workspace(seed: int = 8, messages: int = 900) -> fakeslack.Workspace:
    return fakeslack.generate(seed, users=20, channels=8, messages=messages, days=30, now=NOW)


@asynccontextmanager
async def slow_history(seed: int) -> AsyncIterator[tuple[fakeslack.Workspace, FakeSlack]]:
    """A 1,500-message workspace on a fakeslack whose history pages take 30 ms: a run spans
    seconds, long enough to stop its process half-way."""
    ws = workspace(seed=seed, messages=1500)
    async with FakeSlack(ws, rate_limits=False) as fake:
        fake.faults.slow(0.03, method="conversations.history")
        yield ws, fake


async def some_history_pages(fake: FakeSlack) -> None:
    """Until six history pages were asked for: the run is under way, far from done."""
    await eventually(
        lambda: len(fake.calls_of("conversations.history")) >= 6,
        60,
        "six history pages",
        every=0.02,
    )


async def test_runs_two_instances_one_run_per_fire_and_one_lock(
    postgres_url: str, tmp_path: Path
) -> None:
    ws = workspace()
    clock = shifted_clock(NOW)
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeSlack(ws, rate_limits=False))
        # Slow pages keep the run going until the other process's cancel reaches it.
        fake.faults.slow(0.3, method="conversations.history")
        a = await stack.enter_async_context(
            node_on(fake, postgres_url, tmp_path / "a", clock=clock)
        )
        b = await stack.enter_async_context(
            node_on(fake, postgres_url, tmp_path / "b", clock=clock, migrate_first=False)
        )
        schedule = await a.schedules.save(
            ws.team_id, ScheduleSpec("0 * * * *", "UTC", 7, True, ()), ADMIN
        )
        fire = schedule.next_run_at - timedelta(hours=1)
        rows = await asyncio.gather(
            a.service.on_schedule_fire(ws.team_id, schedule.schedule_id, fire),
            b.service.on_schedule_fire(ws.team_id, schedule.schedule_id, fire),
        )
        winners = [r for r in rows if r is not None]
        assert len(winners) == 1
        # While it runs, a manual run is refused by either process, naming it.
        for node in (a, b):
            with pytest.raises(RunRefused, match=f"run #{winners[0].job_run_id}"):
                await node.service.start_manual(ws.team_id, ADMIN)
        # Cancel from the process that does not run it: its heartbeat sees the request.
        loser = b if rows[0] is not None else a
        await asyncio.sleep(0.3)
        await loser.service.cancel(ws.team_id, ADMIN, is_admin=True)
        await a.service.wait_idle()
        await b.service.wait_idle()
        history = await a.service.history(ws.team_id)
        assert len(history) == 1 and history[0].status == "cancelled"
        assert history[0].fire_time == fire


async def test_fires_go_to_the_process_with_a_free_slot(postgres_url: str, tmp_path: Path) -> None:
    """Two processes with one slot each; six schedules fire at once, reaching process A 0.2 s
    before B. A claims only what it has a slot for, so B runs its share: each runs three, every
    fire once. (A process that claimed whatever came took all six and queued five while the
    other sat idle: in bench_workspaces one of three took 54 % of 1,000 fires.)"""
    ws = workspace(messages=50)
    clock = shifted_clock(NOW)
    stubs = {"a": StubEngine(pages=4, page_s=0.1), "b": StubEngine(pages=4, page_s=0.1)}
    spec = ScheduleSpec("0 * * * *", "UTC", 7, True, ())
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeSlack(ws, rate_limits=False))
        nodes = {
            name: await stack.enter_async_context(
                node_on(
                    fake,
                    postgres_url,
                    tmp_path / name,
                    clock=clock,
                    engine=stubs[name],
                    run_concurrency=1,
                    migrate_first=name == "a",
                )
            )
            for name in ("a", "b")
        }
        schedules = [await nodes["a"].schedules.save(f"T{i:04d}", spec, ADMIN) for i in range(6)]
        fire = schedules[0].next_run_at - timedelta(hours=1)

        async def deliver(name: str, after_s: float) -> list[Run | None]:
            await asyncio.sleep(after_s)
            return await asyncio.gather(
                *(
                    nodes[name].service.on_schedule_fire(s.workspace_id, s.schedule_id, fire)
                    for s in schedules
                )
            )

        claimed = dict(
            zip("ab", await asyncio.gather(deliver("a", 0.0), deliver("b", 0.2)), strict=True)
        )
        for node in nodes.values():
            await node.service.wait_idle()
        runs = [r for rows in claimed.values() for r in rows if r is not None]
        assert len(runs) == 6 and len({r.schedule_id for r in runs}) == 6
        assert {name: len(stub.started) for name, stub in stubs.items()} == {"a": 3, "b": 3}
        async with nodes["a"].sessions() as session:
            statuses = (await session.execute(select(BackfillJobRun.status))).scalars().all()
        assert sorted(statuses) == ["success"] * 6


async def test_runs_crashed_instance_run_resumed_by_another(
    postgres_url: str, tmp_path: Path
) -> None:
    clock = shifted_clock(NOW)
    async with slow_history(seed=12) as (ws, fake):
        async with node_on(fake, postgres_url, tmp_path / "a", clock=clock) as a:
            row = await a.service.start_manual(ws.team_id, ADMIN, days=30)
            await some_history_pages(fake)
            await crash(a.service)
        t0 = time.monotonic()
        async with node_on(
            fake, postgres_url, tmp_path / "b", clock=clock, migrate_first=False
        ) as b:
            while not any(e.kind == "started" for e in b.events):
                assert time.monotonic() - t0 < 30, "not resumed within 30 s"
                await asyncio.sleep(0.05)
            await b.service.wait_idle()
            done = await b.service.get(row.job_run_id)
            assert done is not None and done.status == "success" and done.interruptions == 1
            truth = fakeslack.ground_truth(ws, 30, now=done.started_at.timestamp())
            assert await stored_keys(b, ws.team_id) == truth.must_store


async def test_runs_graceful_stop_releases_for_immediate_resume(
    database_url: str, tmp_path: Path
) -> None:
    clock = shifted_clock(NOW)
    async with slow_history(seed=13) as (ws, fake):
        async with node_on(fake, database_url, tmp_path / "a", clock=clock, stale_after_s=60) as a:
            row = await a.service.start_manual(ws.team_id, ADMIN, days=30)
            await some_history_pages(fake)
            await a.service.stop()
            kept = await a.service.get(row.job_run_id)
            assert kept is not None and kept.status == "running"
            assert kept.heartbeat_at == datetime(1970, 1, 1, tzinfo=UTC)
        async with node_on(
            fake, database_url, tmp_path / "b", clock=clock, stale_after_s=60, migrate_first=False
        ) as b:
            await asyncio.sleep(0.5)
            assert any(e.kind == "started" for e in b.events)  # at once, not after 60 s
            await b.service.wait_idle()
            done = await b.service.get(row.job_run_id)
            assert done is not None and done.status == "success" and done.interruptions == 0
            truth = fakeslack.ground_truth(ws, 30, now=done.started_at.timestamp())
            assert await stored_keys(b, ws.team_id) == truth.must_store


# -- real OS processes ---------------------------------------------------------------------------


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _fakeslack(tmp: Path, messages: int) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = _spawn(
        [
            "-m",
            "fakeslack",
            "--seed",
            "21",
            "--users",
            "20",
            "--channels",
            "8",
            "--messages",
            str(messages),
            "--days",
            "30",
            "--now",
            str(NOW),
            "--no-rate-limits",
            "--log-level",
            "WARNING",
        ]
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def _node(
    db: str, info: dict[str, object], chroma: Path, offset: float, *extra: str
) -> subprocess.Popen[str]:
    return _spawn(
        [
            str(ROOT / "tests/scheduler/run_service_process.py"),
            "--database-url",
            db,
            "--slack-url",
            str(info["url"]),
            "--token",
            str(info["bot_token"]),
            "--workspace",
            str(info["team_id"]),
            "--chroma",
            str(chroma),
            "--offset",
            str(offset),
            *extra,
        ]
    )


def _runs(db: str) -> list[BackfillJobRun]:
    async def read() -> list[BackfillJobRun]:
        engine = create_engine(db)
        try:
            async with make_sessionmaker(engine)() as session:
                return list((await session.execute(select(BackfillJobRun))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _stop(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_runs_processes_one_run_per_fire_time(postgres_url: str, tmp_path: Path) -> None:
    slack, info = _fakeslack(tmp_path, 300)
    offset = NOW - time.time()
    nodes: list[subprocess.Popen[str]] = []
    try:
        schedule_id = _create_schedule(
            postgres_url, str(info["team_id"]), offset, slack, info, tmp_path
        )
        fire = NOW - 3600
        start_at = time.time() + 4  # both fire at the same instant, after start-up
        for name in ("p1", "p2"):
            nodes.append(
                _node(
                    postgres_url,
                    info,
                    tmp_path / name,
                    offset,
                    "--schedule-id",
                    str(schedule_id),
                    "--fire-time",
                    str(fire),
                    "--start-at",
                    str(start_at),
                    "--exit-when-idle",
                )
            )
        outs = [
            json.loads(line) for p in nodes for line in p.communicate(timeout=120)[0].splitlines()
        ]
        fired = [o for o in outs if o["kind"] == "fired"]
        assert len(fired) == 2 and sum(o["job_run_id"] is not None for o in fired) == 1
        runs = _runs(postgres_url)
        assert len(runs) == 1 and runs[0].status == "success" and runs[0].job_type == "scheduled"
    finally:
        _stop(*nodes, slack)


def _create_schedule(
    db: str, team: str, offset: float, slack: object, info: dict[str, object], tmp: Path
) -> int:
    async def make() -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        from db.migrate import migrate
        from scheduler.schedules import ScheduleService
        from tests.scheduler.run_service_process import clock_with_offset

        await migrate(db)
        engine = create_engine(db)
        try:

            async def on_fire(*_: object) -> None:
                return None

            service = ScheduleService(
                make_sessionmaker(engine),
                AsyncIOScheduler(timezone=UTC),
                on_fire,
                clock=clock_with_offset(offset),
            )
            saved = await service.save(team, ScheduleSpec("0 * * * *", "UTC", 7, True, ()), ADMIN)
            return saved.schedule_id
        finally:
            await engine.dispose()

    return asyncio.run(make())


def test_runs_process_killed_mid_run_is_resumed_without_duplicates(
    postgres_url: str, tmp_path: Path
) -> None:
    slack, info = _fakeslack(tmp_path, 2500)
    offset = NOW - time.time()
    procs: list[subprocess.Popen[str]] = [slack]
    try:
        first = _node(
            postgres_url, info, tmp_path / "p1", offset, "--manual-user", ADMIN, "--days", "30"
        )
        procs.append(first)
        assert first.stdout is not None
        while json.loads(first.stdout.readline())["kind"] != "started":
            pass
        time.sleep(1.0)  # some pages committed, not all
        first.send_signal(signal.SIGKILL)
        first.wait()
        runs = _runs(postgres_url)
        assert len(runs) == 1 and runs[0].status == "running"
        t0 = time.monotonic()
        second = _node(
            postgres_url, info, tmp_path / "p2", offset, "--until-finished", "--stale-after", "3"
        )
        procs.append(second)
        out = second.communicate(timeout=120)[0]
        assert time.monotonic() - t0 < 90
        events = [json.loads(line) for line in out.splitlines()]
        assert any(e["kind"] == "started" and e["job_run_id"] == runs[0].job_run_id for e in events)
        done = _runs(postgres_url)[0]
        assert done.status == "success" and done.interruptions == 1
        ws = fakeslack.generate(21, users=20, channels=8, messages=2500, days=30, now=NOW)
        truth = fakeslack.ground_truth(ws, 30, now=done.started_at.timestamp())
        keys = _message_keys(postgres_url, str(info["team_id"]))
        assert len(keys) == len(set(keys))
        assert set(keys) == truth.must_store
    finally:
        _stop(*reversed(procs))


def _message_keys(db: str, team: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        from db.models import Message

        engine = create_engine(db)
        try:
            t = Message.__table__
            async with make_sessionmaker(engine)() as session:
                rows = (
                    await session.execute(
                        select(t.c.channel_id, t.c.ts).where(t.c.workspace_id == team)
                    )
                ).all()
                return [(r[0], r[1]) for r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())
