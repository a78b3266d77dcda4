"""Shared setup for the engine benchmarks.

- `fakeslack_process`: a generated workspace served by `python -m fakeslack` in a SEPARATE process
  (as Slack is remote: its CPU, memory and JSON encoding are not charged to the engine's process
  or its heap), announced by the one JSON line it prints.
- `stores`: SQLite in a temp dir and embedded Chroma with the hashing embedding (no download), or a
  `CountingVectorStore` instead of Chroma.
- `RecordingVectorStore`: wraps a store and records the size of every upsert, so a benchmark can
  replay exactly the same batch sizes against bare Chroma.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.migrate import migrate
from db.records import MessageRecord
from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore, VectorMatch, VectorStore
from scheduler.backfill.engine import BackfillEngine, EngineConfig
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import RateProfile

NOW = 1_750_000_000.0


@dataclass(frozen=True)
class FakeSlackInfo:
    url: str
    bot_token: str
    team_id: str


@asynccontextmanager
async def fakeslack_process(
    *,
    seed: int,
    messages: int,
    channels: int,
    users: int,
    days: int = 30,
    rate_limits: bool = False,
    time_compression: float = 1.0,
) -> AsyncIterator[FakeSlackInfo]:
    """`python -m fakeslack …` in its own process; yields once it listens, stops it on exit."""
    args = [
        sys.executable,
        "-m",
        "fakeslack",
        "--seed",
        str(seed),
        "--messages",
        str(messages),
        "--channels",
        str(channels),
        "--users",
        str(users),
        "--days",
        str(days),
        "--now",
        repr(NOW),
        "--time-compression",
        str(time_compression),
        "--log-level",
        "WARNING",
    ]
    if not rate_limits:
        args.append("--no-rate-limits")
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=600)
        if not line:
            raise RuntimeError("fakeslack exited before listening")
        info = json.loads(line)
        yield FakeSlackInfo(info["url"], info["bot_token"], info["team_id"])
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def fake_get(info: FakeSlackInfo, path: str) -> Any:
    """GET one of fakeslack's `/_fake/*` control routes."""
    import aiohttp

    base = info.url.removesuffix("/").removesuffix("/api")
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_fake/{path}") as response:
        return await response.json()


async def fake_post(info: FakeSlackInfo, path: str, body: Any = None) -> Any:
    """POST (JSON) to one of fakeslack's `/_fake/*` control routes."""
    import aiohttp

    base = info.url.removesuffix("/").removesuffix("/api")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/_fake/{path}", json=body) as response,
    ):
        response.raise_for_status()
        return await response.json()


class CountingVectorStore:
    """A `VectorStore` that stores nothing and counts what it was given (memory benchmark)."""

    def __init__(self) -> None:
        self.documents = 0
        self.calls = 0

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        self.documents += len(records)
        self.calls += 1

    async def count(self, workspace_id: str) -> int:
        return self.documents

    async def search(
        self,
        workspace_id: str,
        query: str,
        limit: int = 5,
        *,
        channel_ids: Collection[str] | None = None,
        user_ids: Collection[str] | None = None,
    ) -> list[VectorMatch]:
        return []

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {}

    async def delete(self, workspace_id: str, ids: Sequence[str]) -> None:
        self.documents -= len(ids)

    async def delete_channel(self, workspace_id: str, channel_id: str) -> None:
        return None

    async def rename_channel(self, workspace_id: str, channel_id: str, name: str) -> int:
        return 0

    async def delete_workspace(self, workspace_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class RecordingVectorStore:
    """Delegates to `inner` and records each upsert's size (and the time spent inside it)."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.sizes: list[int] = []
        self.seconds = 0.0

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        import time

        started = time.perf_counter()
        await self.inner.upsert(records)
        self.seconds += time.perf_counter() - started
        self.sizes.append(len(records))

    async def count(self, workspace_id: str) -> int:
        return await self.inner.count(workspace_id)

    async def search(
        self,
        workspace_id: str,
        query: str,
        limit: int = 5,
        *,
        channel_ids: Collection[str] | None = None,
        user_ids: Collection[str] | None = None,
    ) -> list[VectorMatch]:
        return await self.inner.search(
            workspace_id, query, limit, channel_ids=channel_ids, user_ids=user_ids
        )

    async def get(self, workspace_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await self.inner.get(workspace_id, ids)

    async def delete(self, workspace_id: str, ids: Sequence[str]) -> None:
        await self.inner.delete(workspace_id, ids)

    async def delete_channel(self, workspace_id: str, channel_id: str) -> None:
        await self.inner.delete_channel(workspace_id, channel_id)

    async def rename_channel(self, workspace_id: str, channel_id: str, name: str) -> int:
        return await self.inner.rename_channel(workspace_id, channel_id, name)

    async def delete_workspace(self, workspace_id: str) -> None:
        await self.inner.delete_workspace(workspace_id)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Stores:
    tmp: str
    url: str
    sessions: async_sessionmaker[AsyncSession]
    vectors: Any


@asynccontextmanager
async def stores(*, chroma: bool = True) -> AsyncIterator[Stores]:
    """SQLite in a temp dir plus embedded Chroma (hashing), or a counting no-op vector store."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate(url)
        sql = create_engine(url)
        vectors: Any = (
            await ChromaVectorStore.open(f"{tmp}/chroma", None, "hashing")
            if chroma
            else CountingVectorStore()
        )
        try:
            yield Stores(tmp, url, make_sessionmaker(sql), vectors)
        finally:
            await vectors.close()
            await sql.dispose()


def make_engine(
    info: FakeSlackInfo, s: Stores, profile: RateProfile, vectors: Any = None, **config: Any
) -> BackfillEngine:
    gateway = SlackGateway(info.bot_token, base_url=info.url, profile=profile)
    return BackfillEngine(
        gateway, s.sessions, vectors if vectors is not None else s.vectors, EngineConfig(**config)
    )
