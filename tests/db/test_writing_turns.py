"""`db.session.writing`: the store's batch writers of a process take turns first come first served,
so a writer that comes straight back for another batch (a run) does not overtake one that was
already waiting (the live mirror), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.session import writing


async def note(session: AsyncSession, who: str) -> None:
    await session.execute(
        text("INSERT INTO workspaces (workspace_id, name, created_at) VALUES (:w, :w, :t)"),
        {"w": who, "t": datetime(2026, 12, 3, tzinfo=UTC)},
    )


async def test_a_waiting_writer_goes_before_one_that_comes_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    order: list[str] = []
    run_holds = asyncio.Event()

    async def run() -> None:
        for batch in range(3):  # back-to-back batches, as a large run writes them
            async with writing(sessions) as session:
                await note(session, f"run-{batch}")
                order.append(f"run-{batch}")
                run_holds.set()
                await asyncio.sleep(0.2)  # Chroma calls inside the transaction

    async def mirror() -> None:
        await run_holds.wait()
        async with writing(sessions) as session:
            await note(session, "mirror")
            order.append("mirror")

    await asyncio.gather(run(), mirror())
    assert order == ["run-0", "mirror", "run-1", "run-2"]


async def test_a_failed_writer_gives_its_turn_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError):
        async with writing(sessions) as session:
            await note(session, "lost")
            raise RuntimeError("the batch failed")
    async with asyncio.timeout(5), writing(sessions) as session:
        await note(session, "next")
    async with sessions() as session:
        rows = await session.execute(text("SELECT workspace_id FROM workspaces"))
        assert [w for (w,) in rows.all()] == ["next"]
