"""ChromaVectorStore serves its one worker process reads first: a search (get, count, ping) waits
for at most the write in flight, never for the writes queued behind it, while the writes keep the
order they came in (an upsert then a delete of the same document stays an upsert then a delete).
Observed at the pipe to the worker, so no timing is asserted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from db.records import MessageRecord
from db.vectors import READS, ChromaVectorStore, _WorkerProcess

WS = "TPRIORITY"


def _records(first: int, n: int, word: str = "deploy") -> list[MessageRecord]:
    return [
        MessageRecord(
            workspace_id=WS,
            channel_id="C1",
            channel_name="general",
            ts=f"1700{i:06d}.000100",
            thread_ts=None,
            user_id="U1",
            user_name="person",
            text=f"{word} item {i} of the release train",
        )
        for i in range(first, first + n)
    ]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every call the store sends its worker, in the order sent: (method, its first id or query)."""
    order: list[tuple[str, Any]] = []
    call = _WorkerProcess.call

    def recorded(self: _WorkerProcess, method: str, *args: Any) -> Any:
        tag: Any = None
        if method in ("upsert", "delete_ids", "get"):
            tag = args[1][0]
        elif method == "search":
            tag = args[1]
        order.append((method, tag))
        return call(self, method, *args)

    monkeypatch.setattr(_WorkerProcess, "call", recorded)
    return order


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ChromaVectorStore]:
    opened = await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")
    try:
        yield opened
    finally:
        await opened.close()


async def test_reads_are_served_before_queued_writes(
    store: ChromaVectorStore, served: list[tuple[str, Any]]
) -> None:
    await store.upsert(_records(0, 10))
    served.clear()
    writes = [_records(100 * k, 100) for k in range(1, 5)]  # four batches queued at once
    # Tasks start in the order made: the four upserts ask first, then the reads.
    upserts = [asyncio.ensure_future(store.upsert(batch)) for batch in writes]
    searching = asyncio.ensure_future(store.search(WS, "deploy item"))
    getting = asyncio.ensure_future(store.get(WS, ["C1:1700000003.000100"]))
    await asyncio.gather(*upserts, searching, getting, store.count(WS), store.ping())
    reads = [i for i, (method, _) in enumerate(served) if method in READS]
    assert len(reads) == 4  # search, get, count, the ping's count
    # Only the write the worker had already taken may go before them: the three others queued.
    writes_before = [m for m, _ in served[: max(reads)] if m not in READS]
    assert len(writes_before) <= 1, served
    # The writes themselves: in the order they came.
    assert [tag for m, tag in served if m == "upsert"] == [b[0].document_id for b in writes]
    assert searching.result() and "C1:1700000003.000100" in getting.result()


async def test_writes_keep_their_order_behind_reads(
    store: ChromaVectorStore, served: list[tuple[str, Any]]
) -> None:
    first, second = _records(0, 300), _records(1000, 50, "rollback")
    doomed = [r.document_id for r in second[:20]]
    await asyncio.gather(
        store.upsert(first),
        store.upsert(second),
        store.search(WS, "rollback item"),
        store.delete(WS, doomed),  # after the upsert that stored them, as it was asked
        store.count(WS),
    )
    writes = [(m, tag) for m, tag in served if m not in READS]
    assert writes == [
        ("upsert", first[0].document_id),
        ("upsert", second[0].document_id),
        ("delete_ids", doomed[0]),
    ]
    assert await store.count(WS) == 330
    assert await store.get(WS, doomed) == {}


async def test_a_queued_call_whose_caller_left_is_not_sent(
    store: ChromaVectorStore, served: list[tuple[str, Any]]
) -> None:
    writing = asyncio.ensure_future(store.upsert(_records(0, 400)))
    while not served:  # the upsert is in flight: the search can only queue
        await asyncio.sleep(0.001)
    searching = asyncio.ensure_future(store.search(WS, "never asked"))
    await asyncio.sleep(0)
    searching.cancel()
    await writing
    assert await store.count(WS) == 400  # the store still serves every call after it
    assert ("search", "never asked") not in served
