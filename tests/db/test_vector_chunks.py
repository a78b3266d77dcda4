"""The batch writer sends Chroma at most `VECTOR_CHUNK` documents per call (upserts and deletes),
however many rows its SQL statements carry: a search waits behind at most one such call. Observed
at the pipe to a real ChromaVectorStore's worker process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.records import MessageRecord
from db.removals import DELETED
from db.vectors import ChromaVectorStore, _WorkerProcess
from scheduler.backfill.writer import VECTOR_CHUNK, Removal, write_batch, write_pruned_batch

WS = "TCHUNKS"
MANY = 3 * VECTOR_CHUNK + 7  # several chunks, and at most one SQL statement's 200 rows


def _records(n: int) -> list[MessageRecord]:
    return [
        MessageRecord(
            workspace_id=WS,
            channel_id="C1",
            channel_name="general",
            ts=f"1700{i:06d}.000100",
            thread_ts=None,
            user_id="U1",
            user_name="person",
            text=f"release item {i} shipped",
        )
        for i in range(n)
    ]


@pytest.fixture
def sizes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The size of every upsert and delete the store sends its worker process."""
    seen: dict[str, list[int]] = {"upsert": [], "delete_ids": []}
    call = _WorkerProcess.call

    def recorded(self: _WorkerProcess, method: str, *args: Any) -> Any:
        if method in seen:
            seen[method].append(len(args[1]))
        return call(self, method, *args)

    monkeypatch.setattr(_WorkerProcess, "call", recorded)
    return seen


@pytest.fixture
async def vectors(tmp_path: Path) -> AsyncIterator[ChromaVectorStore]:
    opened = await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")
    try:
        yield opened
    finally:
        await opened.close()


def test_vector_chunks_are_smaller_than_sql_statements() -> None:
    assert 1 <= VECTOR_CHUNK < 200  # write_batch's default rows per SQL statement


async def test_vector_chunks_bound_every_chroma_call_of_a_batch(
    sessions: async_sessionmaker[AsyncSession],
    vectors: ChromaVectorStore,
    sizes: dict[str, list[int]],
) -> None:
    records = _records(MANY)
    assert await write_batch(sessions, vectors, records, [], batch_size=200) == MANY
    assert sum(sizes["upsert"]) == MANY and max(sizes["upsert"]) == VECTOR_CHUNK
    assert await vectors.count(WS) == MANY

    gone = tuple(r.ts for r in records[: 2 * VECTOR_CHUNK + 1])
    outcome = await write_pruned_batch(
        sessions,
        vectors,
        [],
        [],
        [],
        removals=[Removal(WS, "C1", gone, DELETED)],
        batch_size=200,
    )
    assert outcome.removed == len(gone)
    assert sum(sizes["delete_ids"]) == len(gone) and max(sizes["delete_ids"]) == VECTOR_CHUNK
    assert await vectors.count(WS) == MANY - len(gone)


async def test_vector_chunks_follow_a_smaller_batch_size(
    sessions: async_sessionmaker[AsyncSession],
    vectors: ChromaVectorStore,
    sizes: dict[str, list[int]],
) -> None:
    await write_batch(sessions, vectors, _records(25), [], batch_size=10)
    assert sizes["upsert"] == [10, 10, 5]
