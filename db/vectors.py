"""The vector store: messages in ChromaDB, one collection `slack_<workspace_id>` per workspace.

The sync Chroma client only ever runs on the store's own `chroma-*` worker threads, never on the
event loop. `VectorStore` is the async interface the rest of the app (and its fakes) depend on.
No Slack code is imported here.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, cast, runtime_checkable
from urllib.parse import urlsplit

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata
from chromadb.config import Settings
from chromadb.errors import NotFoundError

from db.embedding import embedding_function
from db.records import MessageRecord

__all__ = [
    "ChromaVectorStore",
    "EmbeddingMismatchError",
    "SearchHit",
    "StoreClosedError",
    "VectorStore",
    "VectorStoreUnavailable",
    "check_chroma_url",
    "collection_name",
]

T = TypeVar("T")

COLLECTION_PREFIX: Final = "slack_"
# Keeps each worker job short (so searches interleave with a long upsert) and HTTP bodies small;
# the client's own `get_max_batch_size()` is the hard ceiling.
DEFAULT_CHUNK: Final = 1000
# Cosine for every EF (Chroma's own default is l2). The larger beams buy recall: on hashed lexical
# vectors chromadb's defaults (100/100) missed the exact nearest neighbour noticeably more often.
HNSW_CONFIG: Final[dict[str, Any]] = {"space": "cosine", "ef_construction": 200, "ef_search": 200}
HTTP_TIMEOUT_SECONDS: Final = 120.0
HTTP_CONNECT_SECONDS: Final = 10.0
_WORKERS: Final = 4
_THREAD_PREFIX: Final = "chroma-worker"
# Slack team / enterprise ids are alphanumeric; Chroma names must also end with one.
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


class StoreClosedError(RuntimeError):
    """The store was used after `close()`."""


class VectorStoreUnavailable(RuntimeError):
    """The Chroma server (or embedded store) could not be opened."""


class EmbeddingMismatchError(ValueError):
    """A collection was indexed with another embedding function than `EMBEDDING` selects."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result: message text, metadata and cosine distance (lower is closer)."""

    document_id: str
    text: str
    metadata: dict[str, Any] = field(hash=False)
    distance: float


@runtime_checkable
class VectorStore(Protocol):
    """What the app needs from a vector store; tests may swap in a fake."""

    async def upsert(self, records: Sequence[MessageRecord]) -> None: ...

    async def count(self, workspace_id: str) -> int: ...

    async def search(self, workspace_id: str, query: str, limit: int = 5) -> list[SearchHit]: ...

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def delete_workspace(self, workspace_id: str) -> None: ...

    async def close(self) -> None: ...


def collection_name(workspace_id: str) -> str:
    """`slack_<workspace_id>`; rejects ids Chroma could not name a collection after."""
    if not isinstance(workspace_id, str) or not _WORKSPACE_ID.fullmatch(workspace_id):
        raise ValueError(f"not a valid workspace id: {workspace_id!r}")
    return f"{COLLECTION_PREFIX}{workspace_id}"


def check_chroma_url(url: str) -> None:
    """Raise `ValueError` (one line) unless `url` is `http(s)://host[:port]`."""
    _parse_chroma_url(url)


def _parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """`(host, port, ssl)` for `chromadb.HttpClient`; a missing port means 80 / 443."""
    expected = "expected http(s)://host[:port]"
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"Chroma URL is empty; {expected}")
    if "@" in url:
        # Never echo a URL that may carry credentials.
        raise ValueError(f"Chroma URL must not contain credentials (user@host); {expected}")
    shown = repr(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"Chroma URL {shown} is malformed ({exc}); {expected}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"Chroma URL {shown} must start with http:// or https://; {expected}")
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal, bracketed in the URL
        host = f"[{host}]"
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"Chroma URL {shown} has no valid host; {expected}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"Chroma URL {shown} must not have a path, query or fragment; {expected}")
    if port == 0:
        raise ValueError(f"Chroma URL {shown} has port 0; {expected}")
    ssl = parts.scheme == "https"
    return host, port if port is not None else (443 if ssl else 80), ssl


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _metadata(record: MessageRecord) -> Metadata:
    # Chroma metadata values cannot be None: `thread_ts` is simply absent outside threads.
    meta: dict[str, str] = {
        "workspace_id": record.workspace_id,
        "channel_id": record.channel_id,
        "channel_name": record.channel_name,
        "user_id": record.user_id,
        "user_name": record.user_name,
        "ts": record.ts,
    }
    if record.thread_ts is not None:
        meta["thread_ts"] = record.thread_ts
    return cast(Metadata, meta)


class ChromaVectorStore:
    """`VectorStore` on ChromaDB: embedded (`PersistentClient`) or a server (`HttpClient`).

    Build it with `await ChromaVectorStore.open(...)`. Every call into chromadb, including creating
    the client, runs on one private thread pool; the event loop only awaits.
    """

    def __init__(
        self,
        client: ClientAPI,
        executor: ThreadPoolExecutor,
        embedding: EmbeddingFunction[Documents],
        chunk_size: int,
    ) -> None:
        self._client = client
        self._executor = executor
        self._embedding = embedding
        self._chunk_size = chunk_size
        self._collections: dict[str, Collection] = {}
        self._collections_lock = asyncio.Lock()
        self._inflight: set[Future[Any]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | None,
        url: str | None,
        embedding: str,
        *,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> ChromaVectorStore:
        """Connect to the server at `url` when given, else open (creating) the store at `path`.

        `embedding` is the `EMBEDDING` setting (`default` or `hashing`). Raises `ValueError` for a
        bad setting and `VectorStoreUnavailable` when Chroma cannot be reached or opened.
        """
        ef = embedding_function(embedding)
        if url is not None:
            target = _parse_chroma_url(url)
            where = f"Chroma server at {url}"
        elif path is not None:
            target = None
            where = f"Chroma store at {path}"
        else:
            raise ValueError("a Chroma path or URL is required")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

        executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix=_THREAD_PREFIX)
        try:
            client, max_batch = await asyncio.wrap_future(
                executor.submit(_connect, path, target)
            )
        except BaseException as exc:
            executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, Exception):
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise VectorStoreUnavailable(f"cannot open the {where}: {detail}") from exc
            raise
        if max_batch > 0:
            chunk_size = min(chunk_size, max_batch)
        return cls(client, executor, ef, chunk_size)

    @property
    def chunk_size(self) -> int:
        """The largest batch sent to Chroma in one call."""
        return self._chunk_size

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosedError("the vector store is closed")
        future = self._executor.submit(fn, *args)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await asyncio.wrap_future(future)

    # -- collections -------------------------------------------------------------------------

    async def _collection(self, workspace_id: str, *, create: bool) -> Collection | None:
        name = collection_name(workspace_id)
        cached = self._collections.get(name)
        if cached is not None:
            return cached
        async with self._collections_lock:
            cached = self._collections.get(name)
            if cached is None:
                cached = await self._run(self._open_collection, name, create)
                if cached is not None:
                    self._collections[name] = cached
            return cached

    def _open_collection(self, name: str, create: bool) -> Collection | None:
        # Worker thread.
        if create:
            collection = self._client.get_or_create_collection(
                name,
                configuration={"hnsw": HNSW_CONFIG},
                embedding_function=self._embedding,  # type: ignore[arg-type]
            )
        else:
            try:
                collection = self._client.get_collection(
                    name,
                    embedding_function=self._embedding,  # type: ignore[arg-type]
                )
            except NotFoundError:
                return None
        # Chroma only compares names when the given function is not "default", so a collection
        # indexed with `hashing` would silently take MiniLM vectors of the same size: refuse.
        persisted = collection.configuration_json.get("embedding_function") or {}
        stored = persisted.get("name") if persisted.get("type") == "known" else None
        if stored is not None and stored != self._embedding.name():
            raise EmbeddingMismatchError(
                f"collection {name} was indexed with embedding {stored!r}, but this store uses "
                f"{self._embedding.name()!r}; change EMBEDDING back or delete the collection"
            )
        return collection

    def _forget(self, workspace_id: str) -> None:
        self._collections.pop(collection_name(workspace_id), None)

    # -- API -----------------------------------------------------------------------------------

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        """Insert or replace messages; a record stored twice stays one document (fixed ids)."""
        by_workspace: dict[str, dict[str, MessageRecord]] = {}
        for record in records:
            # Chroma rejects a batch that repeats an id; the last copy of a message wins.
            by_workspace.setdefault(record.workspace_id, {})[record.document_id] = record
        for workspace_id, unique in by_workspace.items():
            batch = list(unique.values())
            for chunk in _chunks(batch, self._chunk_size):
                await self._upsert_chunk(workspace_id, chunk)

    async def _upsert_chunk(self, workspace_id: str, chunk: Sequence[MessageRecord]) -> None:
        collection = await self._collection(workspace_id, create=True)
        assert collection is not None
        try:
            await self._run(_upsert, collection, chunk)
        except NotFoundError:
            # Deleted meanwhile (another process, or delete_workspace): recreate once.
            self._forget(workspace_id)
            collection = await self._collection(workspace_id, create=True)
            assert collection is not None
            await self._run(_upsert, collection, chunk)

    async def count(self, workspace_id: str) -> int:
        """Documents stored for the workspace (0 when it has none)."""
        collection = await self._collection(workspace_id, create=False)
        if collection is None:
            return 0
        try:
            return await self._run(_count, collection)
        except NotFoundError:
            self._forget(workspace_id)
            return 0

    async def search(self, workspace_id: str, query: str, limit: int = 5) -> list[SearchHit]:
        """The `limit` documents nearest to `query`, closest first."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not query.strip():
            return []
        collection = await self._collection(workspace_id, create=False)
        if collection is None:
            return []
        try:
            return await self._run(_search, collection, query, limit)
        except NotFoundError:
            self._forget(workspace_id)
            return []

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`{id: {"document": text, "metadata": {...}}}` for the ids that exist."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:  # Chroma's get(ids=[]) would return the whole collection
            return {}
        collection = await self._collection(workspace_id, create=False)
        if collection is None:
            return {}
        try:
            return await self._run(_get, collection, wanted)
        except NotFoundError:
            self._forget(workspace_id)
            return {}

    async def delete_workspace(self, workspace_id: str) -> None:
        """Drop the workspace's collection and everything in it; a no-op when there is none."""
        name = collection_name(workspace_id)
        async with self._collections_lock:
            self._collections.pop(name, None)
            await self._run(_delete_collection, self._client, name)

    async def close(self) -> None:
        """Wait for calls in flight, release the client and stop the worker threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        pending = [asyncio.wrap_future(f) for f in list(self._inflight)]
        if pending:
            await asyncio.wait(pending)
        self._collections.clear()
        try:
            # Releases the shared System (and its SQLite handles) so the path can be reopened.
            await asyncio.wrap_future(self._executor.submit(_close_client, self._client))
        finally:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> ChromaVectorStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# -- worker-thread functions: the only code that touches the chromadb client ------------------


def _connect(path: str | None, target: tuple[str, int, bool] | None) -> tuple[ClientAPI, int]:
    settings = Settings(anonymized_telemetry=False)
    client: ClientAPI
    if target is not None:
        host, port, ssl = target
        client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        for session in _http_sessions(client):
            # chromadb creates its httpx sessions with timeout=None: a hung server would pin a
            # worker thread (and the run awaiting it) forever.
            session.timeout = httpx.Timeout(HTTP_TIMEOUT_SECONDS, connect=HTTP_CONNECT_SECONDS)
    else:
        assert path is not None
        Path(path).mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=path, settings=settings)
    return client, client.get_max_batch_size()


def _upsert(collection: Collection, records: Sequence[MessageRecord]) -> None:
    collection.upsert(
        ids=[r.document_id for r in records],
        documents=[r.text for r in records],
        metadatas=[_metadata(r) for r in records],
    )


def _count(collection: Collection) -> int:
    return collection.count()


def _search(collection: Collection, query: str, limit: int) -> list[SearchHit]:
    with warnings.catch_warnings():
        # Asking for more results than documents is fine here; do not warn about it.
        warnings.simplefilter("ignore", UserWarning)
        result = collection.query(
            query_texts=[query],
            n_results=limit,
            include=["documents", "metadatas", "distances"],  # type: ignore[list-item]
        )
    ids = result["ids"][0]
    documents = (result["documents"] or [[]])[0]
    metadatas = (result["metadatas"] or [[]])[0]
    distances = (result["distances"] or [[]])[0]
    return [
        SearchHit(
            document_id=doc_id,
            text=documents[i] or "",
            metadata=dict(metadatas[i] or {}),
            distance=float(distances[i]),
        )
        for i, doc_id in enumerate(ids)
    ]


def _get(collection: Collection, ids: list[str]) -> dict[str, dict[str, Any]]:
    result = collection.get(ids=ids, include=["documents", "metadatas"])  # type: ignore[list-item]
    documents = result["documents"] or []
    metadatas = result["metadatas"] or []
    return {
        doc_id: {"document": documents[i], "metadata": dict(metadatas[i] or {})}
        for i, doc_id in enumerate(result["ids"])
    }


def _delete_collection(client: ClientAPI, name: str) -> None:
    try:
        client.delete_collection(name)
    except NotFoundError:
        pass


def _http_sessions(client: ClientAPI) -> list[httpx.Client]:
    # chromadb 1.5's HttpClient holds two private httpx sessions (its own and its internal admin
    # client's, each on a System of its own) and never closes either.
    sessions: list[httpx.Client] = []
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if isinstance(session, httpx.Client) and session not in sessions:
            sessions.append(session)
    return sessions


def _close_client(client: ClientAPI) -> None:
    sessions = _http_sessions(client)
    close = getattr(client, "close", None)
    if callable(close):
        close()
    # HTTP Systems are keyed by a fresh uuid per client, so these sessions are ours alone;
    # without this their pooled sockets leak until garbage collection.
    for session in sessions:
        session.close()
