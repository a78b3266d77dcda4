"""Resume at once after a restart (issue 12, point 2), with real OS processes: `python -m app run`
on one PostgreSQL, against fakeslack answering history and replies slowly so that a run lasts
long enough to be killed or watched.

- SIGKILL mid-run, then a new app process on the same host: the run is claimed by the new
  process within 2 s of it answering `/healthz` (the stale-heartbeat timeout is 20 s), then
  finishes with every message stored. Measured from outside, in the database.
- Two live app processes on one host never take each other's runs: each run keeps its owner
  and counts no interruption while the other process sweeps, until it is cancelled.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

import fakeslack
from db.models import BackfillJobRun, Message
from fakeslack import FakeSlack
from fakeslack.outgoing import form_headers, slash_command_body
from scheduler.process_identity import parse_owner
from tests.support.app_group import AppGroup, OutsideReader, pid_of
from tests.support.app_group import wait_for as wait_until
from tests.support.app_process import AppProcess, new_workdir

RESUME_BOUND_S = 2.0  # the contract: resumed within 2 s of the new process answering /healthz
PATIENCE_S = 180.0  # anything else: generous, for a busy machine
DAYS = 10
T = TypeVar("T")


class Database(OutsideReader):
    """Reads of the runs table and the stored messages from outside the apps."""

    def runs(self) -> list[BackfillJobRun]:
        async def read() -> list[BackfillJobRun]:
            async with self.sessions() as session:
                stmt = select(BackfillJobRun).order_by(BackfillJobRun.job_run_id)
                return list((await session.execute(stmt)).scalars())

        return self.read(read)

    def run(self, job_run_id: int) -> BackfillJobRun:
        return next(r for r in self.runs() if r.job_run_id == job_run_id)

    def message_keys(self, team_id: str) -> list[tuple[str, str]]:
        async def read() -> list[tuple[str, str]]:
            t = Message.__table__
            async with self.sessions() as session:
                stmt = select(t.c.channel_id, t.c.ts).where(t.c.workspace_id == team_id)
                return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]

        return self.read(read)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    try:
        yield db
    finally:
        db.close()


class Apps(AppGroup):
    """The app processes of one test, and the workspace admin who types the commands."""

    def __init__(self, fake: FakeSlack, database_url: str) -> None:
        super().__init__(fake, database_url)
        self.admin = next(
            uid for uid, u in fake.workspace.users.items() if u.get("is_primary_owner")
        )

    def command(self, app: AppProcess, text: str) -> None:
        """`/backfill text` as the admin, through `app`."""
        body = slash_command_body(
            text,
            team_id=self.fake.team_id,
            user_id=self.admin,
            channel_id="C0SAMEHOST",
            response_url=self.fake.new_response_url(self.admin, "C0SAMEHOST"),
        )
        status, ack = app.post("/slack/events", body, form_headers(body, self.fake.signing_secret))
        assert status == 200, ack


@pytest.fixture
def apps(postgres_url: str) -> Iterator[Apps]:
    # The generated workspace's "now" is the real now: the apps' clock is the real clock.
    ws = fakeslack.generate(41, users=12, channels=8, messages=400, days=DAYS)
    with FakeSlack(ws, rate_limits=False) as fake:
        group = Apps(fake, postgres_url)
        try:
            yield group
        finally:
            group.stop_all()


def wait_for(
    check: Callable[[], T | None], what: str, apps: Apps, timeout: float = PATIENCE_S
) -> T:
    return wait_until(check, what, apps, timeout)


def slow_slack(fake: FakeSlack, seconds: float) -> None:
    """History and replies answer after `seconds` each (and nothing else is slowed)."""
    fake.faults.slow(seconds, method="conversations.history")
    fake.faults.slow(seconds, method="conversations.replies")


def test_same_host_killed_run_resumes_within_2s_of_ready(apps: Apps, database: Database) -> None:
    fake = apps.fake
    chroma = new_workdir() / "chroma"  # one host, one store: the restarted app reopens it
    apps.workdirs.append(chroma.parent)
    slow_slack(fake, 1.0)
    first = apps.start(chroma)
    first.wait_healthy()
    apps.command(first, f"run days={DAYS}")
    running = wait_for(
        lambda: next((r for r in database.runs() if r.status == "running"), None),
        "the run to start",
        apps,
    )
    wait_for(lambda: len(fake.calls_of("conversations.history")) >= 2, "some history pages", apps)
    first.stop(signal.SIGKILL)
    killed = database.run(running.job_run_id)
    assert killed.status == "running", "the run ended before the kill: make it slower"
    owner = parse_owner(killed.owner or "")
    assert owner is not None and owner.pid == first.proc.pid and owner.mark is not None

    second = apps.start(chroma)
    second.wait_healthy()
    ready = time.monotonic()
    taken = wait_for(
        lambda: (run := database.run(killed.job_run_id)).owner != killed.owner and run,
        "the run to be taken over",
        apps,
    )
    resumed_after = time.monotonic() - ready
    assert taken.status == "running" and pid_of(taken.owner) == second.proc.pid, taken.owner
    assert resumed_after <= RESUME_BOUND_S, (
        f"resumed {resumed_after:.2f} s after /healthz answered\n{apps.outputs()}"
    )

    fake.faults.clear()
    done = wait_for(
        lambda: (run := database.run(killed.job_run_id)).status != "running" and run,
        "the resumed run to finish",
        apps,
    )
    assert (done.status, done.interruptions, done.error_message) == ("success", 1, None)
    truth = fakeslack.ground_truth(fake.workspace, DAYS, now=done.started_at.timestamp())
    keys = database.message_keys(fake.team_id)
    assert set(keys) == truth.must_store and len(keys) == len(set(keys))
    assert second.stop() == 0, apps.outputs()


def test_same_host_live_processes_never_take_each_others_runs(
    apps: Apps, database: Database
) -> None:
    fake = apps.fake
    slow_slack(fake, 3.0)  # runs that outlast several heartbeats of both processes
    a = apps.start()
    a.wait_healthy()
    apps.command(a, f"run days={DAYS}")
    first = wait_for(
        lambda: next((r for r in database.runs() if r.status == "running"), None),
        "the first run to start",
        apps,
    )
    assert pid_of(first.owner) == a.proc.pid
    b = apps.start()
    b.wait_healthy()
    keeps_its_owner(database, first, apps)  # b's start and its sweeps leave it to a
    apps.command(b, "cancel")  # reaches a's run through the row
    ended = wait_for(
        lambda: (run := database.run(first.job_run_id)).status != "running" and run,
        "the first run to end",
        apps,
    )
    assert (ended.status, ended.interruptions) == ("cancelled", 0)

    apps.command(b, f"run days={DAYS}")
    second = wait_for(
        lambda: next((r for r in database.runs() if r.status == "running"), None),
        "the second run to start",
        apps,
    )
    assert pid_of(second.owner) == b.proc.pid
    keeps_its_owner(database, second, apps)  # and a's sweeps leave it to b
    apps.command(a, "cancel")
    ended = wait_for(
        lambda: (run := database.run(second.job_run_id)).status != "running" and run,
        "the second run to end",
        apps,
    )
    assert (ended.status, ended.interruptions) == ("cancelled", 0)
    assert a.stop() == 0 and b.stop() == 0, apps.outputs()


def keeps_its_owner(database: Database, run: Any, apps: Apps, beats: int = 3) -> None:
    """Watch `run` until its owner has beaten `beats` more times (each process sweeps for
    takeovers as often as it beats): all along it is running, its owner's, never interrupted."""
    seen = {run.heartbeat_at}
    deadline = time.monotonic() + PATIENCE_S
    while len(seen) <= beats:
        now = database.run(run.job_run_id)
        assert (now.status, now.owner, now.interruptions) == ("running", run.owner, 0), (
            f"{now.status} {now.owner} {now.interruptions}\n{apps.outputs()}"
        )
        seen.add(now.heartbeat_at)
        assert time.monotonic() < deadline, f"no heartbeats seen\n{apps.outputs()}"
        time.sleep(0.1)
