"""One app process (`run_service_process.open_node`) on its own fakeslack, and what the run tests
read back: the workspace's first member, the DMs Slack holds, the message keys stored. Not a test
module; the scheduler and engine tests that drive a RunService share it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

import fakeslack
from db.models import Message
from fakeslack import FakeSlack
from tests.scheduler.run_service_process import Node, open_node, shifted_clock


def sqlite_url(tmp_path: Path) -> str:
    """A file database of the test's own, for the tests that need no PostgreSQL run."""
    return f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"


def node_on(
    fake: FakeSlack,
    database_url: str,
    chroma_path: Path,
    *,
    clock: Callable[[], datetime],
    **node_kw: Any,
) -> AbstractAsyncContextManager[Node]:
    """`open_node` pointed at `fake` with its bot token."""
    return open_node(
        database_url,
        chroma_path,
        slack_url=fake.base_url,
        token=fake.bot_token,
        clock=clock,
        **node_kw,
    )


@asynccontextmanager
async def slack_node(
    ws: fakeslack.Workspace,
    database_url: str,
    tmp_path: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    **node_kw: Any,
) -> AsyncIterator[tuple[FakeSlack, Node]]:
    """A fakeslack serving `ws` without rate limits, and one node on it (Chroma under
    `tmp_path`). The clock moves in real time from the workspace's `now` unless one is given."""
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        node_on(
            fake,
            database_url,
            tmp_path / "chroma",
            clock=clock or shifted_clock(ws.now),
            **node_kw,
        ) as node,
    ):
        yield fake, node


def first_member(ws: fakeslack.Workspace) -> str:
    """The lowest user id of a human, active member (a run's creator in these tests)."""
    return min(
        u for u, user in ws.users.items() if not user.get("is_bot") and not user.get("deleted")
    )


def dm_dump(fake: FakeSlack, user: str) -> str:
    """Everything in the bot's DM with `user`, as one JSON string."""
    return json.dumps(fake.dms(user))


def dm_texts(fake: FakeSlack, user: str) -> list[str]:
    """Each message in the bot's DM with `user`: its blocks as JSON, then its text."""
    return [json.dumps(m.get("blocks")) + " " + str(m.get("text")) for m in fake.dms(user)]


async def stored_keys(node: Node, workspace_id: str) -> set[tuple[str, str]]:
    """(channel_id, ts) of every message stored for the workspace."""
    t = Message.__table__
    async with node.sessions() as session:
        rows = (
            await session.execute(
                select(t.c.channel_id, t.c.ts).where(t.c.workspace_id == workspace_id)
            )
        ).all()
    return {(r[0], r[1]) for r in rows}
