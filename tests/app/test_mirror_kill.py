"""An acknowledged event is never lost (issue 13, design.md "Live mirror"), with real OS processes:
`python -m app run` on PostgreSQL in HTTP mode, fakeslack delivering a burst of message events as
signed Events API POSTs.

`users.info` answers slowly, so the drainer is still resolving the first authors of the burst
when the last event is acknowledged; the process is SIGKILLed at that moment, with every event of
the burst in the inbox and some of them claimed by its drainer. A new process on the same host and
database takes the dead drainer's claims back at once (not after the lease) and stores every
message of the burst, once, in SQL and in Chroma.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore
from fakeslack import FakeSlack, generate
from scheduler.mirror import LEASE_S
from scheduler.process_identity import parse_owner
from tests.support.app_process import AppProcess, app_settings, new_workdir

BURST = 200
SLOW_NAMES_S = 30.0  # each users.info: far longer than the burst takes to be acknowledged
PATIENCE_S = 120.0
T = TypeVar("T")


class Database:
    """Reads from outside the app, on one connection pool."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._engine = create_engine(url)
        self._sessions = make_sessionmaker(self._engine)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            async with self._sessions() as session:
                result = await session.execute(text(sql), params)
                return [dict(r._mapping) for r in result]

        return self._loop.run_until_complete(read())

    def close(self) -> None:
        self._loop.run_until_complete(self._engine.dispose())
        self._loop.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    try:
        yield db
    finally:
        db.close()


class Apps:
    """The app processes of the test (one host, one Chroma store), stopped at the end."""

    def __init__(self, fake: FakeSlack, database_url: str, chroma: Path) -> None:
        self.fake, self.database_url, self.chroma = fake, database_url, chroma
        self.started: list[AppProcess] = []
        self.workdirs: list[Path] = []

    def start(self) -> AppProcess:
        workdir = new_workdir()
        self.workdirs.append(workdir)
        fake = self.fake
        settings = app_settings(fake.base_url, fake.bot_token, fake.signing_secret, workdir)
        settings.update(
            DATABASE_URL=self.database_url, CHROMA_PATH=str(self.chroma), LOG_LEVEL="INFO"
        )
        app = AppProcess(settings, workdir)
        self.started.append(app)
        app.wait_healthy()
        return app

    def outputs(self) -> str:
        return "\n".join(f"--- app {a.proc.pid} ---\n{a.output()[-4000:]}" for a in self.started)

    def stop_all(self) -> None:
        for app in self.started:
            app.stop()
        for workdir in self.workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def apps(postgres_url: str, tmp_path: Path) -> Iterator[Apps]:
    ws = generate(seed=43, users=20, channels=4, messages=100, days=5)
    with FakeSlack(ws, rate_limits=False) as fake:
        group = Apps(fake, postgres_url, tmp_path / "chroma")
        try:
            yield group
        finally:
            fake.faults.clear()
            group.stop_all()


def wait_for(check: Callable[[], T | None], what: str, apps: Apps) -> T:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{apps.outputs()}")
        time.sleep(0.1)


def post_burst(fake: FakeSlack) -> dict[tuple[str, str], str]:
    """`BURST` messages by several people in the channels the bot is in: (channel, ts) -> text."""
    ws = fake.workspace
    channels = [
        c
        for c in ws.channels.values()
        if ws.bot_user_id in c.members and not c.is_im and not c.is_archived and not c.deleted
    ]
    assert channels, "the bot is in no channel"
    posted: dict[tuple[str, str], str] = {}
    for i in range(BURST):
        channel = channels[i % len(channels)]
        people = sorted(
            u for u in channel.members if u in ws.users and not ws.users[u].get("is_bot")
        )
        body = f"Burst message {i}: the deploy of build {1000 + i} finished, notes follow"
        message = fake.post_message(channel.id, body, user=people[i % len(people)])
        posted[(channel.id, message["ts"])] = body
    return posted


def stored_keys(database: Database, team_id: str) -> dict[tuple[str, str], str]:
    rows = database.rows(
        "SELECT channel_id, ts, text FROM messages WHERE workspace_id = :w", w=team_id
    )
    return {(r["channel_id"], r["ts"]): r["text"] for r in rows}


def chroma_documents(path: Path, team_id: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        store = await ChromaVectorStore.open(path=str(path), url=None, embedding="hashing")
        try:
            return await store.get(team_id, [f"{c}:{ts}" for c, ts in keys])
        finally:
            await store.close()

    return asyncio.run(read())


def test_mirror_kill_right_after_acking_a_burst_loses_no_event(
    apps: Apps, database: Database
) -> None:
    fake = apps.fake
    first = apps.start()
    fake.configure_events(mode="http", url=f"{first.url}/slack/events")
    fake.faults.slow(SLOW_NAMES_S, method="users.info")  # the drainer waits on names
    posted = post_burst(fake)
    counters = fake.events_settled_sync(timeout=PATIENCE_S)
    first.stop(signal.SIGKILL)  # right after the last acknowledgement
    assert (counters["queued"], counters["acked"], counters["failed"]) == (BURST, BURST, 0), (
        counters
    )

    # At the kill: every event acknowledged is in the inbox, none applied yet, and the dead
    # process's drainer holds some of them.
    inbox = database.rows("SELECT event_id, claimed_by FROM mirror_inbox")
    assert len(inbox) == BURST, apps.outputs()
    assert not set(posted) & set(stored_keys(database, fake.team_id))
    holders = {r["claimed_by"] for r in inbox if r["claimed_by"] is not None}
    assert holders, "the drainer had claimed nothing: the kill did not land mid-batch"
    assert {getattr(parse_owner(h), "pid", None) for h in holders} == {first.proc.pid}

    fake.faults.clear()
    fake.configure_events(mode="off")
    second = apps.start()
    ready = time.monotonic()

    def burst_stored() -> dict[tuple[str, str], str] | None:
        found = stored_keys(database, fake.team_id)
        return found if found.keys() >= posted.keys() else None

    stored = wait_for(burst_stored, "every message of the burst to be stored", apps)
    wait_for(lambda: not database.rows("SELECT inbox_id FROM mirror_inbox"), "an empty inbox", apps)
    drained_s = time.monotonic() - ready
    print(f"\nthe restarted process stored the burst {drained_s:.1f} s after /healthz answered")
    # The dead drainer's claims were taken back at once: waiting out its lease would take longer.
    assert drained_s < LEASE_S / 2, apps.outputs()
    assert "events a dead drainer" in second.output(), apps.outputs()
    assert {k: stored[k] for k in posted} == posted
    [state] = database.rows(
        "SELECT applied_today FROM mirror_state WHERE workspace_id = :w", w=fake.team_id
    )
    assert state["applied_today"] == BURST  # each acknowledged event applied once
    assert second.stop() == 0, apps.outputs()

    documents = chroma_documents(apps.chroma, fake.team_id, list(posted))
    assert {doc_id: doc["document"] for doc_id, doc in documents.items()} == {
        f"{c}:{ts}": body for (c, ts), body in posted.items()
    }
