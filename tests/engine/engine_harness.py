"""Shared helpers for the engine's end-to-end tests (not a test module): stores on a test
database and an embedded Chroma with the hashing embedding, a gateway on a FakeSlack, one run of
the engine over the test's window, and readers of what ended up stored."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import fakeslack
from db.messages import list_checkpoints
from db.migrate import migrate
from db.models import Message
from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore
from fakeslack import FakeSlack
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import INTERNAL, RateProfile
from scheduler.backfill.progress import RunResult

NOW = 1_750_000_000.0
DAYS = 7  # the window of most runs here: the last week before the workspace's `now`
# Fast pacing for tests against an unthrottled fakeslack (Tier 3 in 0.05 s "minutes"), and small
# pages so every channel spans several units.
FAST = dataclasses.replace(INTERNAL.scaled(0.05), history_page_size=25, replies_page_size=200)


def small_workspace(seed: int = 7, messages: int = 700) -> fakeslack.Workspace:
    return fakeslack.generate(seed, users=24, channels=9, messages=messages, days=30, now=NOW)


@dataclass
class Stores:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vectors: ChromaVectorStore


@asynccontextmanager
async def open_stores(database_url: str, chroma_path: Path) -> AsyncIterator[Stores]:
    await migrate(database_url)
    engine = create_engine(database_url)
    vectors = await ChromaVectorStore.open(str(chroma_path), None, "hashing")
    try:
        yield Stores(engine, make_sessionmaker(engine), vectors)
    finally:
        await vectors.close()
        await engine.dispose()


@asynccontextmanager
async def slack_and_stores(
    ws: fakeslack.Workspace, database_url: str, tmp_path: Path, **fake_kw: Any
) -> AsyncIterator[tuple[FakeSlack, Stores]]:
    """A fakeslack serving `ws`, without rate limits unless `fake_kw` says otherwise, and the
    test's stores (Chroma under `tmp_path`)."""
    fake_kw.setdefault("rate_limits", False)
    async with (
        FakeSlack(ws, **fake_kw) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        yield fake, stores


def make_gateway(fake: fakeslack.FakeSlack, profile: RateProfile = FAST, **kw: Any) -> SlackGateway:
    kw.setdefault("backoff_base", 0.02)
    return SlackGateway(fake.bot_token, base_url=fake.base_url, profile=profile, **kw)


def make_engine(
    gateway: SlackGateway, stores: Stores, config: EngineConfig | None = None
) -> BackfillEngine:
    return BackfillEngine(gateway, stores.sessions, stores.vectors, config or EngineConfig())


def request(
    ws: fakeslack.Workspace, *, job_run_id: int = 1, days: float = DAYS, **kw: Any
) -> RunRequest:
    """A run of the whole workspace over the `days` before its `now`."""
    return RunRequest(ws.team_id, job_run_id=job_run_id, days=days, now=ws.now, **kw)


async def run_engine(
    fake: FakeSlack,
    stores: Stores,
    ws: fakeslack.Workspace,
    gateway: SlackGateway | None = None,
    config: EngineConfig | None = None,
    **request_kw: Any,
) -> RunResult:
    """One run to its end, on `gateway` (a fresh fast one on `fake` by default)."""
    engine = make_engine(gateway or make_gateway(fake), stores, config)
    return await engine.run(request(ws, **request_kw))


async def stored_rows(stores: Stores, workspace_id: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every stored message row as (channel_id, ts) -> full row (stored_at included)."""
    t = Message.__table__
    async with stores.sessions() as session:
        rows = (await session.execute(select(t).where(t.c.workspace_id == workspace_id))).all()
    return {(r.channel_id, r.ts): tuple(r) for r in rows}


async def chroma_ids(stores: Stores, workspace_id: str, keys: set[tuple[str, str]]) -> set[str]:
    got = await stores.vectors.get(workspace_id, [f"{c}:{ts}" for c, ts in keys])
    return set(got)


async def checkpoints(stores: Stores, workspace_id: str) -> list[Any]:
    async with stores.sessions() as session:
        return await list_checkpoints(session, workspace_id)


def history_latests(fake: fakeslack.FakeSlack) -> list[tuple[str, str | None]]:
    """(channel, latest) of every conversations.history call that got an answer."""
    return [
        (c.args.get("channel"), c.args.get("latest"))
        for c in fake.calls_of("conversations.history")
        if c.status == 200 and c.ok
    ]
