"""ChromaVectorStore against embedded Chroma (tmp_path) and a real `chroma run` server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from db.chroma_worker import close_client as _close_client
from db.embedding import HASHING_NAME
from db.records import MessageRecord
from db.vectors import (
    ChromaVectorStore,
    EmbeddingMismatchError,
    StoreClosedError,
    VectorMatch,
    VectorStore,
    VectorStoreUnavailable,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = {"workspace_id", "channel_id", "channel_name", "user_id", "user_name", "ts"}


def _workspace() -> str:
    # The server is shared by the session: every test gets its own collection.
    return f"T{uuid.uuid4().hex[:10].upper()}"


def _record(
    workspace_id: str,
    i: int,
    text: str | None = None,
    *,
    thread: bool = False,
    channel: str = "C0123",
) -> MessageRecord:
    ts = f"1700000{i:03d}.{i:06d}"
    return MessageRecord(
        workspace_id=workspace_id,
        channel_id=channel,
        channel_name="general",
        ts=ts,
        thread_ts="1700000000.000000" if thread else None,
        user_id=f"U{i % 3}",
        user_name=f"user {i % 3}",
        text=text if text is not None else f"message number {i} about things",
    )


@pytest.fixture(params=["embedded", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChromaVectorStore]:
    if request.param == "server":
        url = request.getfixturevalue("chroma_url")
        opened = await ChromaVectorStore.open(None, url, "hashing")
    else:
        opened = await ChromaVectorStore.open(str(tmp_path / "chroma"), None, "hashing")
    try:
        yield opened
    finally:
        await opened.close()


async def test_vectors_store_satisfies_protocol(store: ChromaVectorStore) -> None:
    assert isinstance(store, VectorStore)


async def test_vectors_store_upsert_twice_keeps_one_document_per_id(
    store: ChromaVectorStore,
) -> None:
    ws = _workspace()
    records = [_record(ws, i, thread=i % 2 == 1) for i in range(12)]
    await store.upsert(records)
    await store.upsert(records)
    assert await store.count(ws) == 12

    stored = await store.get(ws, [r.document_id for r in records])
    assert set(stored) == {f"C0123:{r.ts}" for r in records}
    for r in records:
        entry = stored[r.document_id]
        assert entry["document"] == r.text
        expected = {
            "workspace_id": ws,
            "channel_id": "C0123",
            "channel_name": "general",
            "user_id": r.user_id,
            "user_name": r.user_name,
            "ts": r.ts,
        }
        if r.thread_ts is not None:
            expected["thread_ts"] = r.thread_ts
        assert entry["metadata"] == expected
    # thread_ts only on thread messages: never None, never an empty placeholder.
    assert "thread_ts" not in stored[records[0].document_id]["metadata"]
    assert stored[records[1].document_id]["metadata"]["thread_ts"] == "1700000000.000000"


async def test_vectors_store_collection_follows_the_contract(
    store: ChromaVectorStore,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    ws = _workspace()
    await store.upsert([_record(ws, 1)])
    # Look with a plain chromadb client: the name, space and persisted EF are what others will see.
    if "server" in request.node.callspec.id:
        host, port = request.getfixturevalue("chroma_url").removeprefix("http://").split(":")
        client = chromadb.HttpClient(
            host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
        )
    else:
        client = chromadb.PersistentClient(
            str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
    try:
        collection = client.get_collection(f"slack_{ws}")
        config = collection.configuration_json
        assert config["hnsw"]["space"] == "cosine"
        assert config["hnsw"]["ef_search"] == 200
        assert config["embedding_function"]["name"] == HASHING_NAME
        got = collection.get(include=["metadatas"])
        assert got["ids"] == ["C0123:1700000001.000001"]
        assert got["metadatas"] is not None and set(got["metadatas"][0]) == CONTRACT_KEYS
    finally:
        _close_client(client)  # also closes the httpx sessions chromadb leaves open


async def test_vectors_store_update_replaces_text_and_metadata(store: ChromaVectorStore) -> None:
    ws = _workspace()
    await store.upsert([_record(ws, 1, "first version of the text")])
    edited = _record(ws, 1, "edited version of the text", thread=True)
    await store.upsert([edited])
    stored = await store.get(ws, [edited.document_id])
    assert stored[edited.document_id]["document"] == "edited version of the text"
    assert stored[edited.document_id]["metadata"]["thread_ts"] == "1700000000.000000"
    assert await store.count(ws) == 1


async def test_vectors_store_duplicate_ids_in_one_batch_last_wins(store: ChromaVectorStore) -> None:
    ws = _workspace()
    # A thread parent can come from history and from replies in the same batch.
    await store.upsert([_record(ws, 1, "old text here"), _record(ws, 1, "new text here")])
    assert await store.count(ws) == 1
    (entry,) = (await store.get(ws, ["C0123:1700000001.000001"])).values()
    assert entry["document"] == "new text here"


async def test_vectors_store_groups_by_workspace(store: ChromaVectorStore) -> None:
    a, b = _workspace(), _workspace()
    await store.upsert([_record(a, 1), _record(b, 2), _record(a, 3)])
    assert await store.count(a) == 2
    assert await store.count(b) == 1
    assert await store.get(b, ["C0123:1700000001.000001"]) == {}
    assert [h.document_id for h in await store.search(b, "message", limit=10)] == [
        "C0123:1700000002.000002"
    ]


async def test_vectors_store_search_is_lexical(store: ChromaVectorStore) -> None:
    ws = _workspace()
    texts = [
        "lunch plans for friday anyone up for tacos",
        "the kubernetes ingress certificate expired overnight",
        "reminder: quarterly planning review on thursday",
        "new hire onboarding checklist is in the wiki",
        "standup moved to 10am tomorrow",
    ]
    await store.upsert([_record(ws, i, t) for i, t in enumerate(texts)])
    hits = await store.search(ws, "ingress certificate", limit=3)
    assert len(hits) == 3
    assert isinstance(hits[0], VectorMatch)
    assert hits[0].document_id == "C0123:1700000001.000001"
    assert hits[0].text == texts[1]
    assert hits[0].metadata["channel_id"] == "C0123"
    assert hits[0].distance < hits[1].distance <= hits[2].distance
    # Character n-grams: an inflected form still finds it.
    assert (await store.search(ws, "onboard new hires", limit=1))[0].text == texts[3]


async def test_vectors_store_search_limits(store: ChromaVectorStore) -> None:
    ws = _workspace()
    await store.upsert([_record(ws, i) for i in range(3)])
    assert len(await store.search(ws, "message", limit=50)) == 3
    assert len(await store.search(ws, "message")) == 3
    assert await store.search(ws, "   ") == []
    with pytest.raises(ValueError, match="limit"):
        await store.search(ws, "message", limit=0)


async def test_vectors_store_unknown_workspace_is_empty_and_not_created(
    store: ChromaVectorStore,
) -> None:
    ws = _workspace()
    assert await store.count(ws) == 0
    assert await store.search(ws, "anything") == []
    assert await store.get(ws, ["C1:1.0"]) == {}
    await store.upsert([])
    await store.delete_workspace(ws)  # no collection: a no-op
    assert await store.count(ws) == 0


async def test_vectors_store_get_empty_ids_returns_nothing(store: ChromaVectorStore) -> None:
    ws = _workspace()
    await store.upsert([_record(ws, 1)])
    assert await store.get(ws, []) == {}


async def test_vectors_store_delete_workspace_then_reuse(store: ChromaVectorStore) -> None:
    ws = _workspace()
    await store.upsert([_record(ws, i) for i in range(4)])
    await store.delete_workspace(ws)
    assert await store.count(ws) == 0
    await store.upsert([_record(ws, 9)])
    assert await store.count(ws) == 1


async def test_vectors_store_concurrent_calls(store: ChromaVectorStore) -> None:
    a, b = _workspace(), _workspace()
    batches = [[_record(a, i) for i in range(k * 50, k * 50 + 50)] for k in range(4)]
    await asyncio.gather(
        *(store.upsert(batch) for batch in batches),
        store.upsert([_record(b, i) for i in range(30)]),
        store.upsert(batches[0]),  # the same ids twice, at the same time
        store.search(a, "message number"),
        store.count(b),
    )
    assert await store.count(a) == 200
    assert await store.count(b) == 30


async def test_vectors_store_rejects_bad_workspace_ids(store: ChromaVectorStore) -> None:
    for bad in ["", "T 1", "T1/../x", "T1-"]:
        with pytest.raises(ValueError, match="workspace id"):
            await store.count(bad)


async def test_vectors_store_close_is_idempotent_and_final(store: ChromaVectorStore) -> None:
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.count(_workspace())


async def test_vectors_store_reopened_embedded_store_keeps_documents(tmp_path: Path) -> None:
    path = str(tmp_path / "nested" / "chroma")  # the folder is created
    ws = _workspace()
    first = await ChromaVectorStore.open(path, None, "hashing")
    await first.upsert([_record(ws, i, thread=i == 2) for i in range(5)])
    await first.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = await ChromaVectorStore.open(path, None, "hashing")
        try:
            assert await again.count(ws) == 5
            assert (await again.get(ws, ["C0123:1700000002.000002"]))["C0123:1700000002.000002"][
                "metadata"
            ]["thread_ts"] == "1700000000.000000"
            await again.upsert([_record(ws, i) for i in range(3, 8)])
            assert await again.count(ws) == 8
            hit = (await again.search(ws, "message number 7", limit=1))[0]
            assert hit.document_id == "C0123:1700000007.000007"
        finally:
            await again.close()
    about_ef = [w for w in caught if "embedding" in str(w.message).lower()]
    assert about_ef == []


async def test_vectors_store_reopened_in_a_fresh_process(tmp_path: Path) -> None:
    # A new process knows the EF only through `db.embedding`'s registration.
    path = str(tmp_path / "chroma")
    ws = _workspace()
    store = await ChromaVectorStore.open(path, None, "hashing")
    await store.upsert([_record(ws, i, f"alpha bravo {i}") for i in range(4)])
    await store.close()
    code = f"""
import asyncio, json, warnings
warnings.simplefilter("error", DeprecationWarning)
from db.records import MessageRecord
from db.vectors import ChromaVectorStore

async def main():
    store = await ChromaVectorStore.open({path!r}, None, "hashing")
    before = await store.count({ws!r})
    await store.upsert([MessageRecord({ws!r}, "C9", "random", "1.000001", None, "U9", "zed",
                                      "charlie delta echo")])
    hits = await store.search({ws!r}, "charlie delta", limit=1)
    print(json.dumps([before, await store.count({ws!r}), hits[0].document_id]))
    await store.close()

asyncio.run(main())
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANONYMIZED_TELEMETRY": "False"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,  # the exit code is asserted below, with stderr
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [4, 5, "C9:1.000001"]


async def test_vectors_store_refuses_a_collection_of_another_embedding(tmp_path: Path) -> None:
    path = str(tmp_path / "chroma")
    ws = _workspace()
    hashing = await ChromaVectorStore.open(path, None, "hashing")
    await hashing.upsert([_record(ws, 1)])
    await hashing.close()
    # Chroma itself lets the "default" EF write into it (same 384 dims); the store must not.
    # Nothing here embeds, so the MiniLM model is never downloaded.
    default = await ChromaVectorStore.open(path, None, "default")
    try:
        with pytest.raises(EmbeddingMismatchError, match=HASHING_NAME):
            await default.count(ws)
    finally:
        await default.close()


async def test_vectors_store_open_errors() -> None:
    with pytest.raises(ValueError, match="EMBEDDING"):
        await ChromaVectorStore.open("/tmp/never-used", None, "minilm")
    with pytest.raises(ValueError, match="path or URL"):
        await ChromaVectorStore.open(None, None, "hashing")
    with pytest.raises(ValueError, match="http"):
        await ChromaVectorStore.open(None, "localhost:8000", "hashing")


async def test_vectors_store_unreachable_server_is_a_clear_error() -> None:
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(VectorStoreUnavailable) as info:
        await ChromaVectorStore.open(None, url, "hashing")
    assert url in str(info.value)
