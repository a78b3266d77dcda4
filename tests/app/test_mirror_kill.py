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
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.vectors import ChromaVectorStore
from fakeslack import FakeSlack, generate
from scheduler.mirror import LEASE_S
from tests.support.app_group import AppGroup, OutsideReader, pid_of, wait_for
from tests.support.app_process import AppProcess

BURST = 200
SLOW_NAMES_S = 30.0  # each users.info: far longer than the burst takes to be acknowledged
PATIENCE_S = 120.0


@pytest.fixture
def database(postgres_url: str) -> Iterator[OutsideReader]:
    db = OutsideReader(postgres_url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def apps(postgres_url: str, tmp_path: Path) -> Iterator[AppGroup]:
    ws = generate(seed=43, users=20, channels=4, messages=100, days=5)
    with FakeSlack(ws, rate_limits=False) as fake:
        group = AppGroup(fake, postgres_url, tmp_path / "chroma")
        try:
            yield group
        finally:
            fake.faults.clear()
            group.stop_all()


def started(apps: AppGroup) -> AppProcess:
    app = apps.start()
    app.wait_healthy()
    return app


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


def stored_keys(database: OutsideReader, team_id: str) -> dict[tuple[str, str], str]:
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
    apps: AppGroup, database: OutsideReader
) -> None:
    fake = apps.fake
    first = started(apps)
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
    assert {pid_of(h) for h in holders} == {first.proc.pid}

    fake.faults.clear()
    fake.configure_events(mode="off")
    second = started(apps)
    ready = time.monotonic()

    def burst_stored() -> dict[tuple[str, str], str] | None:
        found = stored_keys(database, fake.team_id)
        return found if found.keys() >= posted.keys() else None

    stored = wait_for(
        burst_stored, "every message of the burst to be stored", apps, PATIENCE_S, 0.1
    )
    wait_for(
        lambda: not database.rows("SELECT inbox_id FROM mirror_inbox"),
        "an empty inbox",
        apps,
        PATIENCE_S,
        0.1,
    )
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
