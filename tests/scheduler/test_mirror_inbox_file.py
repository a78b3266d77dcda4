"""A SQLite store's live-mirror inbox is a file of its own (`db.inbox.inbox_database_url`): an
event is taken in (and so acknowledged) while a writer of the store holds the store file's one
write lock, as the engine's and the drainer's batches do across their Chroma calls; events a store
took in before its inbox had a file of its own are moved there and applied."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import fakeslack
from db.inbox import inbox_database_url
from db.migrate import migrate
from db.models import Message, MirrorInbox
from db.session import create_engine, make_sessionmaker
from scheduler.mirror import MirrorConfig, MirrorService
from tests.engine.engine_harness import Stores, make_gateway, slack_and_stores, small_workspace
from tests.support.waiting import eventually

CHANNEL_TS = "1750000001.000100"


@pytest.mark.parametrize(
    ("store", "inbox"),
    [
        ("sqlite+aiosqlite:///data/backfill.db", "sqlite+aiosqlite:///data/backfill-inbox.db"),
        ("sqlite+aiosqlite:////srv/app/store", "sqlite+aiosqlite:////srv/app/store-inbox.db"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        (
            "postgresql+asyncpg://u:p%40ss@db:5432/backfill",
            "postgresql+asyncpg://u:p%40ss@db:5432/backfill",
        ),
    ],
)
def test_inbox_database_url(store: str, inbox: str) -> None:
    assert inbox_database_url(store) == inbox


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


@asynccontextmanager
async def mirror_on(
    fake: fakeslack.FakeSlack, stores: Stores, inbox_url: str | None
) -> AsyncIterator[MirrorService]:
    """A mirror whose inbox is the database at `inbox_url` (None: the store's own)."""
    engine = None
    inbox_sessions = None
    if inbox_url is not None:
        await migrate(inbox_url)
        engine = create_engine(inbox_url)
        inbox_sessions = make_sessionmaker(engine)

    async def everything(_workspace: str) -> frozenset[str] | None:
        return None

    try:
        yield MirrorService(
            stores.sessions,
            stores.vectors,
            make_gateway(fake),
            MirrorConfig(min_text_chars=3),
            scope=everything,
            owner="test-drainer",
            inbox_sessions=inbox_sessions,
        )
    finally:
        if engine is not None:
            await engine.dispose()


def body(ws: fakeslack.Workspace, channel: str, user: str, event_id: str) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": ws.team_id,
        "event_id": event_id,
        "event_time": 1_750_000_000,
        "event": {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": user,
            "text": f"a message the mirror keeps ({event_id})",
            "ts": CHANNEL_TS,
        },
    }


@pytest.fixture
async def slack_and_sqlite(
    tmp_path: Path,
) -> AsyncIterator[tuple[fakeslack.Workspace, fakeslack.FakeSlack, Stores, str]]:
    ws = small_workspace(messages=20)
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    async with slack_and_stores(ws, url, tmp_path) as (fake, stores):
        yield ws, fake, stores, url


def parties(ws: fakeslack.Workspace) -> tuple[str, str]:
    channel = next(
        c for c in ws.channels.values() if ws.bot_user_id in c.members and not c.is_archived
    )
    user = next(u for u in ws.users if not ws.users[u].get("is_bot") and u != ws.bot_user_id)
    return channel.id, user


async def stored_count(stores: Stores, workspace_id: str) -> int:
    async with stores.sessions() as session:
        query = select(func.count()).where(Message.__table__.c.workspace_id == workspace_id)
        return int((await session.execute(query)).scalar_one())


async def stored_once(stores: Stores, workspace_id: str) -> None:
    async def one() -> bool:
        return await stored_count(stores, workspace_id) == 1

    await eventually(one, timeout=5, what="the event's message stored")


async def test_an_event_is_taken_in_while_a_store_writer_holds_the_write_lock(
    slack_and_sqlite: tuple[fakeslack.Workspace, fakeslack.FakeSlack, Stores, str],
) -> None:
    ws, fake, stores, url = slack_and_sqlite
    channel, user = parties(ws)
    async with mirror_on(fake, stores, inbox_database_url(url)) as mirror:
        # A store writer mid-batch: the store file's write lock taken and held.
        writer = sqlite3.connect(sqlite_path(url), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            # With the inbox in the store's file this waits out the busy timeout (15 s).
            assert await asyncio.wait_for(mirror.take_in(body(ws, channel, user, "Ev1")), 5)
            assert (await mirror.status(ws.team_id)).backlog == 1
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert await mirror.drain_once() == 1
    assert await stored_count(stores, ws.team_id) == 1


async def test_events_waiting_in_the_store_file_move_to_the_inbox_file(
    slack_and_sqlite: tuple[fakeslack.Workspace, fakeslack.FakeSlack, Stores, str],
) -> None:
    ws, fake, stores, url = slack_and_sqlite
    channel, user = parties(ws)
    # Taken in before the inbox had a file of its own (nothing drained yet).
    async with mirror_on(fake, stores, None) as before:
        assert await before.take_in(body(ws, channel, user, "Ev1"))
    async with mirror_on(fake, stores, inbox_database_url(url)) as mirror:
        await mirror.start()
        try:
            # A retry of the moved event is still known: its id moved too.
            assert not await mirror.take_in(body(ws, channel, user, "Ev1"))
            await stored_once(stores, ws.team_id)
        finally:
            await mirror.stop()
        assert await stored_count(stores, ws.team_id) == 1
        assert (await mirror.status(ws.team_id)).backlog == 0
        assert (await mirror.status(ws.team_id)).applied_today == 1
    async with stores.sessions() as session:
        left = (await session.execute(select(func.count()).select_from(MirrorInbox))).scalar_one()
    assert left == 0


async def test_two_session_factories_on_one_database_move_nothing(
    slack_and_sqlite: tuple[fakeslack.Workspace, fakeslack.FakeSlack, Stores, str],
) -> None:
    """The inbox is the store's own database under another session factory (PostgreSQL, or a
    caller that made its own): the events stay where they are and are applied."""
    ws, fake, stores, url = slack_and_sqlite
    channel, user = parties(ws)
    async with mirror_on(fake, stores, None) as before:
        assert await before.take_in(body(ws, channel, user, "Ev1"))
    async with mirror_on(fake, stores, url) as mirror:
        await mirror.start()
        try:
            await stored_once(stores, ws.team_id)
        finally:
            await mirror.stop()
    assert await stored_count(stores, ws.team_id) == 1
