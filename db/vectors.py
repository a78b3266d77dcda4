"""The vector store: messages in ChromaDB, one collection `slack_<workspace_id>` per workspace.

The chromadb client lives in a process of its own (`db.chroma_worker`): its native core keeps the
GIL while it indexes, which on a thread stalled the event loop (and Slack's acknowledgements) for
half a second per batch. The event loop only awaits a pipe. `VectorStore` is the async interface
the rest of the app (and its fakes) depend on. No Slack code is imported here. One module
(~530 lines): the store and the worker process it drives share one protocol over the pipe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import logging
import multiprocessing
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final, Protocol, Self, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from db.chroma_worker import ChromaCallError, EmbeddingMismatchError, worker_main
from db.embedding import embedding_function
from db.records import MessageRecord

__all__ = [
    "ChromaCallError",
    "ChromaVectorStore",
    "EmbeddingMismatchError",
    "StoreClosedError",
    "VectorMatch",
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
WORKER_NAME: Final = "chroma-worker"
# `ping()` counts this collection: never created, so each ping is one cheap lookup in the store
# (a request to the server for `CHROMA_URL`), not a scan of a workspace's documents.
PING_COLLECTION: Final = "backfill_ping"
# Start the worker from a fork server that has imported chromadb once, so opening a store costs
# a fork, not a fresh interpreter importing chromadb (about a second); spawn where there is none.
_PRELOAD: Final = ["db.chroma_worker"]
log = logging.getLogger(__name__)
# Told of every call to the worker: (the call, e.g. `upsert` or `search`, seconds it took).
CallTimer = Callable[[str, float], None]
# Slack team / enterprise ids are alphanumeric; Chroma names must also end with one.
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# The worker's calls that only read: served before any queued write (`ChromaVectorStore._run`).
READS: Final = frozenset({"search", "get", "count"})


class StoreClosedError(RuntimeError):
    """The store was used after `close()`."""


class VectorStoreUnavailable(RuntimeError):
    """The Chroma server (or embedded store) could not be opened."""


@dataclass(frozen=True, slots=True)
class VectorMatch:
    """A document near a query: message text, metadata and cosine distance (lower is closer).
    The search the app shows people merges these with the word search (`scheduler.search`)."""

    document_id: str
    text: str
    metadata: dict[str, Any] = field(hash=False)
    distance: float


@runtime_checkable
class VectorStore(Protocol):
    """What the app needs from a vector store; tests may swap in a fake."""

    async def upsert(self, records: Sequence[MessageRecord]) -> None: ...

    async def count(self, workspace_id: str) -> int: ...

    async def search(
        self,
        workspace_id: str,
        query: str,
        limit: int = 5,
        *,
        channel_ids: Collection[str] | None = None,
        user_ids: Collection[str] | None = None,
    ) -> list[VectorMatch]: ...

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    async def delete(self, workspace_id: str, ids: Sequence[str]) -> None: ...

    async def delete_channel(self, workspace_id: str, channel_id: str) -> None: ...

    async def rename_channel(self, workspace_id: str, channel_id: str, name: str) -> int: ...

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


def _metadata(record: MessageRecord) -> dict[str, str]:
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
    return meta


@dataclass(order=True)
class _Call:
    """A call waiting for the worker: reads (rank 0) before writes (rank 1), each in the order
    they came (`seq`)."""

    rank: int
    seq: int
    method: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    future: concurrent.futures.Future[Any] = field(compare=False)


class _WorkerDied(Exception):
    """The worker process is gone (killed, crashed, or never started)."""


class _WorkerProcess:
    """One `db.chroma_worker` process and the app's end of its pipe. Blocking: it is only used
    from the store's one calling thread, so requests go one at a time, in order."""

    def __init__(
        self, path: str | None, target: tuple[str, int, bool] | None, embedding: str
    ) -> None:
        self._args = (path, target, embedding)
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.max_batch = 0

    def start(self) -> None:
        ctx = _context()
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=worker_main, args=(child, *self._args), name=WORKER_NAME, daemon=True
        )
        process.start()
        child.close()  # only the worker holds its end: our death is its EOF
        self._conn, self._process = parent, process
        self.max_batch = int(self._receive() or 0)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def call(self, method: str, *args: Any) -> Any:
        if self._conn is None:
            raise _WorkerDied("not started")
        try:
            self._conn.send((method, args))
        except (OSError, ValueError) as exc:
            self._reap()
            raise _WorkerDied(str(exc)) from exc
        return self._receive()

    def _receive(self) -> Any:
        assert self._conn is not None
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._reap()
            raise _WorkerDied(str(exc) or "the pipe closed") from exc
        if status == "error":
            raise value
        return value

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to release the store and exit; end it if it does not."""
        if self._conn is not None:
            try:
                self.call("close")
            except _WorkerDied:
                pass
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                log.warning("the Chroma worker did not stop in %.0f s: ending it", timeout)
                self._process.kill()
                self._process.join(5)
        self._reap()

    def _reap(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None and not self._process.is_alive():
            self._process.join(0)


_context_lock = threading.Lock()


def _context() -> Any:  # ForkServerContext or SpawnContext (typeshed's BaseContext has no Process)
    with _context_lock:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            return ctx
        return multiprocessing.get_context("spawn")


class ChromaVectorStore:
    """`VectorStore` on ChromaDB: embedded (`PersistentClient`) or a server (`HttpClient`).

    Build it with `await ChromaVectorStore.open(...)`. The client lives in a worker process (see
    the module's docstring); one private thread carries each call to it and waits for the answer,
    so the event loop only awaits. Calls are served one at a time: the writes in the order they
    came, and a read (search, get, count, ping) before every write still queued, so a search waits
    for at most the one write in flight, however many batches (a run's, the live mirror's) queue
    behind it. A worker that dies is started again once for the call that found it dead (every
    call is idempotent).
    """

    def __init__(
        self,
        worker: _WorkerProcess,
        calls: ThreadPoolExecutor,
        where: str,
        chunk_size: int,
        observer: CallTimer | None = None,
    ) -> None:
        self._worker = worker
        self._observer = observer
        self._calls = calls
        self._where = where
        self._chunk_size = chunk_size
        self._inflight: set[asyncio.Future[Any]] = set()
        # Calls not yet served, best first (`_Call`); the calling thread takes one per job.
        self._queue: list[_Call] = []
        self._queue_lock = threading.Lock()
        self._seq = itertools.count()
        self._ping: asyncio.Future[Any] | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | None,
        url: str | None,
        embedding: str,
        *,
        chunk_size: int = DEFAULT_CHUNK,
        observer: CallTimer | None = None,
    ) -> ChromaVectorStore:
        """Connect to the server at `url` when given, else open (creating) the store at `path`.

        `embedding` is the `EMBEDDING` setting (`default` or `hashing`). `observer`, when given,
        hears every call to the worker with its duration (the app's metrics). Raises `ValueError`
        for a bad setting and `VectorStoreUnavailable` when Chroma cannot be reached or opened.
        """
        embedding_function(embedding)  # a bad EMBEDDING is the caller's error, said here
        if url is not None:
            target: tuple[str, int, bool] | None = _parse_chroma_url(url)
            where = f"Chroma server at {url}"
        elif path is not None:
            target = None
            where = f"Chroma store at {path}"
        else:
            raise ValueError("a Chroma path or URL is required")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

        calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORKER_NAME)
        worker = _WorkerProcess(path, target, embedding)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(calls, worker.start)
        except BaseException as exc:
            await loop.run_in_executor(calls, worker.stop)
            calls.shutdown(wait=False, cancel_futures=True)
            if isinstance(exc, Exception):
                detail = " ".join(str(exc).split()) or type(exc).__name__
                raise VectorStoreUnavailable(f"cannot open the {where}: {detail}") from exc
            raise
        if worker.max_batch > 0:
            chunk_size = min(chunk_size, worker.max_batch)
        return cls(worker, calls, where, chunk_size, observer)

    @property
    def chunk_size(self) -> int:
        """The largest batch sent to Chroma in one call."""
        return self._chunk_size

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id (for operators and tests)."""
        return self._worker.pid

    def _call_blocking(self, method: str, args: tuple[Any, ...]) -> Any:
        # The calling thread.
        try:
            return self._worker.call(method, *args)
        except _WorkerDied as first:
            log.warning("the Chroma worker process stopped (%s): starting it again", first)
            try:
                self._worker.start()
                return self._worker.call(method, *args)
            except _WorkerDied as again:
                raise VectorStoreUnavailable(
                    f"the {self._where} is unavailable: its worker process stopped ({again})"
                ) from again

    def _serve_next(self) -> None:
        # The calling thread: one job per call queued, each serving the best call waiting then.
        with self._queue_lock:
            call = heapq.heappop(self._queue)
        if not call.future.set_running_or_notify_cancel():
            return  # its caller stopped waiting before it started
        try:
            result = self._call_blocking(call.method, call.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as an executor would
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)

    async def _run(self, method: str, *args: Any) -> Any:
        if self._closed:
            raise StoreClosedError("the vector store is closed")
        call = _Call(
            0 if method in READS else 1,
            next(self._seq),
            method,
            args,
            concurrent.futures.Future(),
        )
        with self._queue_lock:
            heapq.heappush(self._queue, call)
        try:
            self._calls.submit(self._serve_next)
        except RuntimeError:  # the thread is shut down (interpreter exit): nobody would serve it
            with self._queue_lock:
                self._queue.remove(call)
                heapq.heapify(self._queue)
            raise StoreClosedError("the vector store is closed") from None
        future = asyncio.wrap_future(call.future)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        if self._observer is None:
            return await future
        started = time.perf_counter()
        try:
            return await future
        finally:
            self._observer(method, time.perf_counter() - started)

    # -- API -----------------------------------------------------------------------------------

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        """Insert or replace messages; a record stored twice stays one document (fixed ids)."""
        by_workspace: dict[str, dict[str, MessageRecord]] = {}
        for record in records:
            # Chroma rejects a batch that repeats an id; the last copy of a message wins.
            by_workspace.setdefault(record.workspace_id, {})[record.document_id] = record
        for workspace_id, unique in by_workspace.items():
            name = collection_name(workspace_id)
            for chunk in _chunks(list(unique.values()), self._chunk_size):
                await self._run(
                    "upsert",
                    name,
                    [r.document_id for r in chunk],
                    [r.text for r in chunk],
                    [_metadata(r) for r in chunk],
                )

    async def count(self, workspace_id: str) -> int:
        """Documents stored for the workspace (0 when it has none)."""
        return int(await self._run("count", collection_name(workspace_id)))

    async def search(
        self,
        workspace_id: str,
        query: str,
        limit: int = 5,
        *,
        channel_ids: Collection[str] | None = None,
        user_ids: Collection[str] | None = None,
    ) -> list[VectorMatch]:
        """The `limit` documents nearest to `query`, closest first; only of `channel_ids` and by
        `user_ids` when given (Chroma's metadata filter; an empty collection finds nothing)."""
        name = collection_name(workspace_id)
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if not query.strip():
            return []
        where: list[dict[str, Any]] = []
        for key, values in (("channel_id", channel_ids), ("user_id", user_ids)):
            if values is None:
                continue
            if not values:
                return []
            where.append({key: {"$in": sorted(values)}})
        condition = where[0] if len(where) == 1 else ({"$and": where} if where else None)
        found = await self._run("search", name, query, limit, condition)
        return [
            VectorMatch(document_id=doc_id, text=text, metadata=meta, distance=distance)
            for doc_id, text, meta, distance in found
        ]

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`{id: {"document": text, "metadata": {...}}}` for the ids that exist."""
        name = collection_name(workspace_id)
        wanted = list(dict.fromkeys(ids))
        if not wanted:  # Chroma's get(ids=[]) would return the whole collection
            return {}
        return dict(await self._run("get", name, wanted))

    async def ping(self) -> None:
        """Return once the store answers one cheap lookup; raise what stopped it otherwise.

        Calls are served one at a time, so a ping may wait behind an upsert in flight: callers
        bound the wait. Concurrent pings share the one in flight, so a health probe polling a
        busy store never queues more than one lookup behind the work."""
        if self._ping is None or self._ping.done():
            self._ping = asyncio.ensure_future(self._run("count", PING_COLLECTION))
            # Its outcome is read here even when every caller stopped waiting for it.
            self._ping.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(self._ping)

    async def delete(self, workspace_id: str, ids: Sequence[str]) -> None:
        """Remove these documents (ids as `MessageRecord.document_id`); absent ones are ignored."""
        wanted = list(dict.fromkeys(ids))
        name = collection_name(workspace_id)
        for chunk in _chunks(wanted, self._chunk_size):
            await self._run("delete_ids", name, chunk)

    async def delete_channel(self, workspace_id: str, channel_id: str) -> None:
        """Remove every document of a channel."""
        await self._run("delete_channel", collection_name(workspace_id), channel_id)

    async def rename_channel(self, workspace_id: str, channel_id: str, name: str) -> int:
        """Give the channel's documents their channel's new name; returns how many changed."""
        collection = collection_name(workspace_id)
        return int(
            await self._run("rename_channel", collection, channel_id, name, self._chunk_size)
        )

    async def delete_workspace(self, workspace_id: str) -> None:
        """Drop the workspace's collection and everything in it; a no-op when there is none."""
        await self._run("delete", collection_name(workspace_id))

    async def close(self) -> None:
        """Wait for calls in flight, release the store and stop the worker process. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._inflight:
            await asyncio.wait(list(self._inflight))
        try:
            await asyncio.get_running_loop().run_in_executor(self._calls, self._worker.stop)
        finally:
            self._calls.shutdown(wait=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
