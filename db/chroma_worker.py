"""The process that owns the chromadb client: every Chroma call and every embedding runs here.

Why a process and not threads: chromadb's native core keeps the GIL while it indexes, so an
upsert of 1,000 documents on a worker *thread* stopped the app's event loop for about half a
second, long enough to delay Slack's acknowledgements (the ack benchmark, `bench/bench_ack.py`).
In a process of its own it costs the event loop only the pickling of the batch.

`ChromaWorker` is the synchronous store (client, embedding function, collection cache), used only
inside that process. `worker_main` is the process's loop: it answers `(method, args)` requests
from one pipe, one at a time, and exits when the app asks or when the app's end of the pipe
closes (the app died, or ended its shutdown with a write still in flight: a watcher thread ends
the process then, even mid-call), so an orphan never keeps the store open or writes to it. No
Slack code is imported here.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Metadata, Where
from chromadb.config import Settings
from chromadb.errors import NotFoundError

from db.embedding import embedding_function

# Cosine for every EF (Chroma's own default is l2). The larger beams buy recall: on hashed lexical
# vectors chromadb's defaults (100/100) missed the exact nearest neighbour noticeably more often.
HNSW_CONFIG: Final[dict[str, Any]] = {"space": "cosine", "ef_construction": 200, "ef_search": 200}
HTTP_TIMEOUT_SECONDS: Final = 120.0
HTTP_CONNECT_SECONDS: Final = 10.0
_PR_SET_PDEATHSIG: Final = 1


class EmbeddingMismatchError(ValueError):
    """A collection was indexed with another embedding function than `EMBEDDING` selects."""


class ChromaCallError(RuntimeError):
    """A chromadb error, carried across the process boundary as its type name and message
    (chromadb's own exception classes do not all survive pickling)."""


class ChromaWorker:
    """The synchronous store on one chromadb client: embedded (`PersistentClient`) or a server
    (`HttpClient`). Collections are cached by name; a collection deleted meanwhile (by another
    process, or `delete`) is forgotten and, for writes, recreated once."""

    def __init__(
        self, path: str | None, target: tuple[str, int, bool] | None, embedding: str
    ) -> None:
        self._embedding: EmbeddingFunction[Documents] = embedding_function(embedding)
        self._client = _connect(path, target)
        self._collections: dict[str, Collection] = {}

    def max_batch_size(self) -> int:
        return int(self._client.get_max_batch_size())

    def _collection(self, name: str, *, create: bool) -> Collection | None:
        cached = self._collections.get(name)
        if cached is not None:
            return cached
        if create:
            collection = self._client.get_or_create_collection(
                name,
                configuration={"hnsw": HNSW_CONFIG},  # type: ignore[arg-type]
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
        self._collections[name] = collection
        return collection

    def upsert(
        self, name: str, ids: list[str], documents: list[str], metadatas: list[Metadata]
    ) -> None:
        for attempt in (1, 2):
            collection = self._collection(name, create=True)
            assert collection is not None
            try:
                collection.upsert(ids=ids, documents=documents, metadatas=metadatas)
                return
            except NotFoundError:
                self._collections.pop(name, None)  # deleted meanwhile: recreate once
                if attempt == 2:
                    raise

    def count(self, name: str) -> int:
        collection = self._collection(name, create=False)
        if collection is None:
            return 0
        try:
            return int(collection.count())
        except NotFoundError:
            self._collections.pop(name, None)
            return 0

    def search(
        self, name: str, query: str, limit: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, str, dict[str, Any], float]]:
        """`(id, text, metadata, distance)` of the `limit` nearest documents, closest first (of
        those matching the metadata filter `where`)."""
        collection = self._collection(name, create=False)
        if collection is None:
            return []
        try:
            with warnings.catch_warnings():
                # Asking for more results than documents is fine here; do not warn about it.
                warnings.simplefilter("ignore", UserWarning)
                result = collection.query(
                    query_texts=[query],
                    n_results=limit,
                    where=where,
                    include=["documents", "metadatas", "distances"],
                )
        except NotFoundError:
            self._collections.pop(name, None)
            return []
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            (doc_id, documents[i] or "", dict(metadatas[i] or {}), float(distances[i]))
            for i, doc_id in enumerate(ids)
        ]

    def get(self, name: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        collection = self._collection(name, create=False)
        if collection is None:
            return {}
        try:
            result = collection.get(ids=list(ids), include=["documents", "metadatas"])
        except NotFoundError:
            self._collections.pop(name, None)
            return {}
        documents = result["documents"] or []
        metadatas = result["metadatas"] or []
        return {
            doc_id: {"document": documents[i], "metadata": dict(metadatas[i] or {})}
            for i, doc_id in enumerate(result["ids"])
        }

    def delete_ids(self, name: str, ids: list[str]) -> None:
        collection = self._collection(name, create=False)
        if collection is None or not ids:
            return
        try:
            collection.delete(ids=ids)
        except NotFoundError:
            self._collections.pop(name, None)

    def delete_channel(self, name: str, channel_id: str) -> None:
        collection = self._collection(name, create=False)
        if collection is None:
            return
        try:
            collection.delete(where={"channel_id": channel_id})
        except NotFoundError:
            self._collections.pop(name, None)

    def rename_channel(self, name: str, channel_id: str, channel_name: str, page: int) -> int:
        """Set `channel_name` in the metadata of the channel's documents; returns how many."""
        collection = self._collection(name, create=False)
        if collection is None:
            return 0
        where: Where = {"channel_id": channel_id}
        renamed = 0
        try:
            while True:
                found = collection.get(
                    where=where, limit=page, offset=renamed, include=["metadatas"]
                )
                ids = list(found["ids"])
                if not ids:
                    return renamed
                metadatas: list[Metadata] = []
                for meta in found["metadatas"] or []:
                    updated: dict[str, Any] = {**dict(meta or {}), "channel_name": channel_name}
                    metadatas.append(updated)
                collection.update(ids=ids, metadatas=metadatas)
                renamed += len(ids)
        except NotFoundError:
            self._collections.pop(name, None)
            return renamed

    def delete(self, name: str) -> None:
        self._collections.pop(name, None)
        try:
            self._client.delete_collection(name)
        except NotFoundError:
            pass

    def close(self) -> None:
        self._collections.clear()
        close_client(self._client)


def _connect(path: str | None, target: tuple[str, int, bool] | None) -> ClientAPI:
    settings = Settings(anonymized_telemetry=False)
    client: ClientAPI
    if target is not None:
        host, port, ssl = target
        client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        for session in _http_sessions(client):
            # chromadb creates its httpx sessions with timeout=None: a hung server would pin the
            # worker (and the run awaiting it) forever.
            session.timeout = httpx.Timeout(HTTP_TIMEOUT_SECONDS, connect=HTTP_CONNECT_SECONDS)
    else:
        assert path is not None
        Path(path).mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=path, settings=settings)
    return client


def _http_sessions(client: ClientAPI) -> list[httpx.Client]:
    # chromadb 1.5's HttpClient holds two private httpx sessions (its own and its internal admin
    # client's, each on a System of its own) and never closes either.
    sessions: list[httpx.Client] = []
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if isinstance(session, httpx.Client) and session not in sessions:
            sessions.append(session)
    return sessions


def close_client(client: ClientAPI) -> None:
    """Release a chromadb client: its shared System (and SQLite handles, so the path can be
    reopened) and the httpx sessions an `HttpClient` leaves open."""
    sessions = _http_sessions(client)
    close = getattr(client, "close", None)
    if callable(close):
        close()
    # HTTP Systems are keyed by a fresh uuid per client, so these sessions are ours alone;
    # without this their pooled sockets leak until garbage collection.
    for session in sessions:
        session.close()


# -- the process ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """On Linux, have the kernel end this process if its parent dies mid-call (the pipe's EOF
    covers every other moment, and every other platform)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def _portable(exc: BaseException) -> BaseException:
    """What to send back for `exc`: itself when it survives pickling, else a `ChromaCallError`."""
    # Only classes whose pickled form is certain to load: a library's subclass with an __init__
    # of its own may not rebuild from its args, and would fail in the app's `recv()` instead.
    if isinstance(exc, EmbeddingMismatchError) or type(exc) in (ValueError, TypeError, KeyError):
        return exc
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return ChromaCallError(f"{type(exc).__name__}: {detail}")


def _watch_the_app(conn: Connection, busy: threading.Event) -> None:
    """Watcher thread: once the app's end of the pipe is closed, end this process as soon as it
    is in a call. Idle, the main loop reads the end of the pipe itself and closes the store; but
    a call (a large upsert, one a hung server holds for minutes) would outlive the app, and the
    fork server that started this process (the parent `_die_with_parent` watches) lives as long
    as its children do. A write cut short is redone by whoever resumes the run: documents are
    upserted by id. Linux only (POLLRDHUP: the peer closed, without reading what it sent)."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLRDHUP)
    while not poller.poll():
        pass
    while True:
        if busy.is_set():
            os._exit(0)
        time.sleep(0.05)


def worker_main(
    conn: Connection, path: str | None, target: tuple[str, int, bool] | None, embedding: str
) -> None:
    """The worker process: open the client, answer requests until told to stop or orphaned."""
    _die_with_parent()
    busy = threading.Event()  # a call is being answered
    if hasattr(select, "POLLRDHUP"):
        threading.Thread(
            target=_watch_the_app, args=(conn, busy), name="app-watcher", daemon=True
        ).start()
    # Ctrl-C reaches the whole process group: the app decides when this process stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        worker = ChromaWorker(path, target, embedding)
        conn.send(("ok", worker.max_batch_size()))
    except Exception as exc:  # noqa: BLE001 - reported to the app, which explains it
        conn.send(("error", _portable(exc)))
        conn.close()
        return
    try:
        while True:
            try:
                method, args = conn.recv()
            except (EOFError, OSError):
                return  # the app is gone: `finally` still releases the store
            if method == "close":
                break
            busy.set()
            try:
                result = getattr(worker, method)(*args)
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
                conn.send(("error", _portable(exc)))
            else:
                conn.send(("ok", result))
            finally:
                busy.clear()
    finally:
        try:
            worker.close()
        finally:
            try:
                conn.send(("ok", None))  # the answer to "close" (fails harmlessly if orphaned)
            except OSError:
                pass
            conn.close()
