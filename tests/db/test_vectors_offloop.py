"""No chromadb call (nor any embedding) runs in the app's process: all of it runs in the store's
worker process, which is started again if it dies and ends with the app; the loop keeps ticking."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import chromadb
import pytest

from db.embedding import HashingEmbeddingFunction
from db.records import MessageRecord
from db.vectors import ChromaVectorStore, _WorkerProcess

ROOT = Path(__file__).resolve().parents[2]

LARGE = 6_000  # > the default chunk and > chromadb's max batch (5461): several chunks


class PipeRecorder:
    """Every request the store sends its worker process: the method and, for upserts, the size."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self.batch_sizes: list[int] = []


def _instrument(monkeypatch: pytest.MonkeyPatch) -> tuple[PipeRecorder, list[str]]:
    """Record what crosses the pipe, and any chromadb client or embedding made in THIS process."""
    pipe = PipeRecorder()
    here: list[str] = []
    call = _WorkerProcess.call

    def recorded_call(self: _WorkerProcess, method: str, *args: Any) -> Any:
        pipe.methods.append(method)
        if method == "upsert":
            pipe.batch_sizes.append(len(args[1]))
        return call(self, method, *args)

    monkeypatch.setattr(_WorkerProcess, "call", recorded_call)
    for factory in ("PersistentClient", "HttpClient"):
        original = getattr(chromadb, factory)

        def create(*a: Any, _name: str = factory, _original: Any = original, **k: Any) -> Any:
            here.append(_name)
            return _original(*a, **k)

        monkeypatch.setattr(chromadb, factory, create)
    embed = HashingEmbeddingFunction._embed_pass

    def recorded_embed(self: HashingEmbeddingFunction, texts: list[str]) -> Any:
        here.append("embedding")
        return embed(self, texts)

    monkeypatch.setattr(HashingEmbeddingFunction, "_embed_pass", recorded_embed)
    return pipe, here


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _records(workspace_id: str, n: int) -> list[MessageRecord]:
    words = [
        "deploy",
        "release",
        "staging",
        "incident",
        "rollback",
        "review",
        "lunch",
        "standup",
        "wiki",
        "ticket",
    ]
    return [
        MessageRecord(
            workspace_id=workspace_id,
            channel_id=f"C{i % 7}",
            channel_name=f"chan-{i % 7}",
            ts=f"1700{i:06d}.000100",
            thread_ts=None if i % 5 else "1700000000.000100",
            user_id=f"U{i % 11}",
            user_name=f"person {i % 11}",
            text=f"{words[i % 10]} {words[(i * 7) % 10]} item {i} for {words[(i * 3) % 10]}",
        )
        for i in range(n)
    ]


async def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> ChromaVectorStore:
    if kind == "server":
        return await ChromaVectorStore.open(None, request.getfixturevalue("chroma_url"), "hashing")
    return await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")


@pytest.mark.parametrize("kind", ["embedded", "server"])
async def test_vectors_offloop_every_chroma_call_runs_in_the_worker_process(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe, here = _instrument(monkeypatch)
    ws = f"T{uuid.uuid4().hex[:10].upper()}"

    store = await _open(kind, request, tmp_path)
    pid = store.worker_pid
    try:
        assert pid is not None and pid != os.getpid() and _alive(pid)
        records = _records(ws, LARGE)
        await store.upsert(records)
        assert await store.count(ws) == LARGE
        assert len(await store.search(ws, "rollback item 4242", limit=3)) == 3
        assert len(await store.get(ws, [records[0].document_id])) == 1
        await store.delete_workspace(ws)
    finally:
        await store.close()

    # No chromadb client and no embedding in this process: the worker did all of it.
    assert here == []
    assert pipe.methods[:1] == ["upsert"] and pipe.methods[-1] == "close"
    assert {"count", "search", "get", "delete"} <= set(pipe.methods)
    # Chunked: several batches, none above the store's chunk or chromadb's own limit.
    assert len(pipe.batch_sizes) >= 2
    assert sum(pipe.batch_sizes) == LARGE
    assert max(pipe.batch_sizes) <= min(store.chunk_size, 5461)
    assert not _alive(pid)  # close() ends the worker


async def test_vectors_offloop_a_killed_worker_is_started_again(tmp_path: Path) -> None:
    ws = f"T{uuid.uuid4().hex[:10].upper()}"
    store = await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")
    try:
        await store.upsert(_records(ws, 50))
        first = store.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # The next call finds the pipe closed, starts a worker on the same path and retries.
        assert await store.count(ws) == 50
        await store.upsert(_records(ws, 80))
        assert await store.count(ws) == 80
        assert store.worker_pid not in (None, first)
    finally:
        await store.close()


async def test_vectors_offloop_the_worker_ends_with_the_app(tmp_path: Path) -> None:
    """An app process killed outright leaves no worker holding the store open."""
    path = str(tmp_path / "chroma")
    code = f"""
import asyncio
from db.vectors import ChromaVectorStore

async def main():
    store = await ChromaVectorStore.open({path!r}, None, "hashing")
    print(store.worker_pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        worker = int(await asyncio.wait_for(proc.stdout.readline(), timeout=120))
        assert _alive(worker)
        proc.kill()
        await proc.wait()
        for _ in range(300):  # a liveness bound, not a timing assertion
            if not _alive(worker):
                break
            await asyncio.sleep(0.1)
        assert not _alive(worker)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("kind", ["embedded", "server"])
async def test_vectors_offloop_loop_keeps_ticking_during_a_large_upsert(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
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
