"""No chromadb call (nor any embedding) runs on the event loop, and the loop keeps ticking."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api.models.Collection import Collection

from db.embedding import HashingEmbeddingFunction
from db.records import MessageRecord
from db.vectors import ChromaVectorStore

LARGE = 6_000  # > the default chunk and > chromadb's max batch (5461): several chunks


class Recorder:
    """Every attribute access and call on a wrapped object, with the thread it ran on."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str]] = []
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def note(self, what: str) -> None:
        thread = threading.current_thread()
        with self._lock:
            self.events.append((what, thread.ident or 0, thread.name))


class Proxy:
    """Stands in for a chromadb client or collection; wraps the collections it hands out."""

    def __init__(self, target: Any, recorder: Recorder, label: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_recorder", recorder)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        recorder: Recorder = object.__getattribute__(self, "_recorder")
        label = object.__getattribute__(self, "_label")
        recorder.note(f"{label}.{name}")
        attr = getattr(object.__getattribute__(self, "_target"), name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            recorder.note(f"{label}.{name}()")
            if name == "upsert":
                recorder.batch_sizes.append(len(kwargs["ids"]))
            result = attr(*args, **kwargs)
            if isinstance(result, Collection):
                return Proxy(result, recorder, "collection")
            return result

        return call


def _instrument(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
    def wrap_factory(factory: Callable[..., Any]) -> Callable[..., Any]:
        def create(*args: Any, **kwargs: Any) -> Any:
            recorder.note("client creation")
            return Proxy(factory(*args, **kwargs), recorder, "client")
        return create

    monkeypatch.setattr(chromadb, "PersistentClient", wrap_factory(chromadb.PersistentClient))
    monkeypatch.setattr(chromadb, "HttpClient", wrap_factory(chromadb.HttpClient))
    embed = HashingEmbeddingFunction._embed_pass

    def recorded_embed(self: HashingEmbeddingFunction, texts: list[str]) -> Any:
        recorder.note("embedding")
        return embed(self, texts)

    monkeypatch.setattr(HashingEmbeddingFunction, "_embed_pass", recorded_embed)


def _records(workspace_id: str, n: int) -> list[MessageRecord]:
    words = "deploy release staging incident rollback review lunch standup wiki ticket".split()
    return [
        MessageRecord(
            workspace_id=workspace_id, channel_id=f"C{i % 7}", channel_name=f"chan-{i % 7}",
            ts=f"1700{i:06d}.000100", thread_ts=None if i % 5 else "1700000000.000100",
            user_id=f"U{i % 11}", user_name=f"person {i % 11}",
            text=f"{words[i % 10]} {words[(i * 7) % 10]} item {i} for {words[(i * 3) % 10]}",
        )
        for i in range(n)
    ]


async def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
    if kind == "server":
        return await ChromaVectorStore.open(None, request.getfixturevalue("chroma_url"), "hashing")
    return await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")


@pytest.mark.parametrize("kind", ["embedded", "server"])
async def test_vectors_offloop_every_chroma_call_runs_on_a_worker_thread(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    _instrument(monkeypatch, recorder)
    loop_thread = threading.get_ident()
    ws = f"T{uuid.uuid4().hex[:10].upper()}"

    store = await _open(kind, request, tmp_path)
    try:
        records = _records(ws, LARGE)
        await store.upsert(records)
        assert await store.count(ws) == LARGE
        assert len(await store.search(ws, "rollback item 4242", limit=3)) == 3
        assert len(await store.get(ws, [records[0].document_id])) == 1
        await store.delete_workspace(ws)
    finally:
        await store.close()

    names = [what for what, _, _ in recorder.events]
    for expected in ["client creation", "client.get_max_batch_size()",
                     "client.get_or_create_collection()", "collection.upsert()",
                     "collection.count()", "collection.query()", "collection.get()",
                     "client.delete_collection()", "client.close()", "embedding"]:
        assert expected in names
    on_loop = [what for what, ident, _ in recorder.events if ident == loop_thread]
    assert on_loop == []
    assert {name.split("_")[0] for _, _, name in recorder.events} == {"chroma-worker"}
    # Chunked: several batches, none above the store's chunk or chromadb's own limit.
    assert len(recorder.batch_sizes) >= 2
    assert sum(recorder.batch_sizes) == LARGE
    assert max(recorder.batch_sizes) <= min(store.chunk_size, 5461)


@pytest.mark.parametrize("kind", ["embedded", "server"])
async def test_vectors_offloop_loop_keeps_ticking_during_a_large_upsert(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    ws = f"T{uuid.uuid4().hex[:10].upper()}"
    store = await _open(kind, request, tmp_path)
    ticks = 0
    upsert_done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not upsert_done.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    try:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # let the ticker start before the upsert
        ticks_at_start = ticks
        await store.upsert(_records(ws, LARGE))
        during = ticks - ticks_at_start
        upsert_done.set()
        await task
        assert await store.count(ws) == LARGE
    finally:
        await store.delete_workspace(ws)
        await store.close()
    # Not a timing bound: only that the loop was free while Chroma worked.
    assert during >= 3, during
