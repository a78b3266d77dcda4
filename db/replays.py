"""The replay ledger: has this signed request been seen before, while its signature is valid?

Slack signs `v0:<timestamp>:<body>`; the same bytes keep passing the signature check for five
minutes, so anyone who captured one request could send it again. The ledger remembers each
signature until it could no longer pass (`valid_until`). On PostgreSQL the memory is a table all
replicas share, and one statement both records and tells (`INSERT … ON CONFLICT DO NOTHING
RETURNING`: no row back means another request already holds it). On SQLite there is one process,
and the memory is a dict. Imports SQLAlchemy only; never Slack code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol, cast

from sqlalchemy import Table, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import SeenRequestSignature
from db.session import create_engine

# Expired entries are dropped at most this often (they are harmless meanwhile: a signature past
# `valid_until` fails Slack's timestamp check before the ledger is asked).
PRUNE_EVERY_S = 60.0
_TABLE: Final = cast(Table, SeenRequestSignature.__table__)


class ReplayLedger(Protocol):
    async def first_sight(self, signature: str, valid_until: int) -> bool:
        """Record `signature`; False when it was already recorded (a replay)."""
        ...

    async def close(self) -> None: ...


class MemoryReplayLedger:
    """One process's ledger (SQLite deployments run one app process)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[str, int] = {}
        self._next_prune = clock() + PRUNE_EVERY_S

    async def first_sight(self, signature: str, valid_until: int) -> bool:
        now = self._clock()
        if now >= self._next_prune:
            self._seen = {sig: until for sig, until in self._seen.items() if until >= now}
            self._next_prune = now + PRUNE_EVERY_S
        known = self._seen.get(signature)
        if known is not None and known >= now:
            return False
        self._seen[signature] = valid_until
        return True

    def __len__(self) -> int:
        return len(self._seen)

    async def close(self) -> None:
        self._seen.clear()


class SqlReplayLedger:
    """The ledger in `seen_request_signatures`, shared by every process on the database.

    It has an engine of its own, without the app pool's pre-ping, so that the check is one round
    trip per request; a connection the server dropped is retried once on a fresh one."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock
        self._next_prune = 0.0  # the first insert also clears what an earlier run left

    @classmethod
    def for_url(cls, url: str, clock: Callable[[], float] = time.time) -> SqlReplayLedger:
        engine = create_engine(
            url, pool_pre_ping=False, pool_size=2, max_overflow=6, pool_timeout=5
        )
        return cls(engine, clock)

    async def first_sight(self, signature: str, valid_until: int) -> bool:
        now = self._clock()
        table = _TABLE
        statement = (
            pg_insert(table)
            .values(signature=signature, valid_until=valid_until)
            .on_conflict_do_nothing(index_elements=[table.c.signature])
            .returning(table.c.signature)
        )
        if now >= self._next_prune:
            # Same statement, so still one round trip: a data-modifying CTE runs even unread.
            self._next_prune = now + PRUNE_EVERY_S
            statement = statement.add_cte(
                delete(table).where(table.c.valid_until < int(now)).cte("pruned")
            )
        for attempt in (1, 2):
            try:
                async with self._engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    return (await conn.execute(statement)).first() is not None
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._engine.dispose()


def open_replay_ledger(database_url: str) -> ReplayLedger:
    """The shared table on PostgreSQL, this process's memory on SQLite."""
    if database_url.startswith("postgresql"):
        return SqlReplayLedger.for_url(database_url)
    return MemoryReplayLedger()


__all__ = ["MemoryReplayLedger", "ReplayLedger", "SqlReplayLedger", "open_replay_ledger"]
