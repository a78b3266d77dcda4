"""Engines and session factories for the SQL store (SQLite via aiosqlite, PostgreSQL via asyncpg).

Owns URL validation, per-connection SQLite settings and pool sizing. Imports SQLAlchemy only;
never Slack code.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

SQLITE_DRIVER = "sqlite+aiosqlite"
POSTGRES_DRIVER = "postgresql+asyncpg"
ACCEPTED_FORMS = "sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host:port/db"

# How long a SQLite writer waits for another writer's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Connection execution option naming the statement that opens a SQLite transaction.
SQLITE_BEGIN_OPTION = "sqlite_begin"


def _invalid(reason: str) -> ValueError:
    # One line, and never the URL itself: it may carry a password.
    return ValueError(f"DATABASE_URL {reason}; expected {ACCEPTED_FORMS}")


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise _invalid("is empty")
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError):
        raise _invalid("is not a database URL") from None
    if parsed.drivername not in (SQLITE_DRIVER, POSTGRES_DRIVER):
        raise _invalid(f"uses unsupported driver {parsed.drivername!r}")
    if parsed.drivername == SQLITE_DRIVER:
        if not parsed.database:
            raise _invalid("names no SQLite file")
    else:
        if not parsed.database:
            raise _invalid("names no PostgreSQL database")
        if not parsed.host and "host" not in parsed.query:
            raise _invalid("names no PostgreSQL host")
    return parsed


def check_database_url(url: str) -> None:
    """Raise `ValueError` (one line naming the accepted forms) unless `url` is usable."""
    _parse(url)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for `url` (validated first); extra kwargs go to SQLAlchemy."""
    parsed = _parse(url)
    if parsed.drivername == SQLITE_DRIVER:
        return _sqlite_engine(parsed, **kwargs)
    options: dict[str, Any] = {
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": 30,
        "pool_pre_ping": True,  # a server restart or idle kill must not fail the next request
        "pool_recycle": 1800,
    }
    options.update(kwargs)
    return _create_async_engine(parsed, **options)


async def _enable_wal(conn: Any) -> None:
    """`PRAGMA journal_mode=WAL` on a raw aiosqlite connection, waiting out a concurrent switch.

    Switching a file to WAL reads its header under a SHARED lock, then upgrades to EXCLUSIVE to
    rewrite it. SQLite never calls the busy handler for that upgrade (two readers waiting on each
    other would deadlock), so when several connections open a new file at once, the losers get
    SQLITE_BUSY ("database is locked") at once whatever busy_timeout says, and the pragma cannot
    run inside BEGIN IMMEDIATE. SQLite's documented remedy is to retry: after a short random pause
    the file is normally in WAL already and the pragma is a plain read. Bounded by the busy timeout;
    the pause is an asyncio sleep, so the event loop keeps running the connection holding the lock.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with conn.execute("PRAGMA journal_mode=WAL"):
                return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or loop.time() >= deadline:
                raise
        await asyncio.sleep(random.uniform(0.005, 0.05))  # jitter: contenders stop colliding


def _sqlite_engine(parsed: URL, **kwargs: Any) -> AsyncEngine:
    database = parsed.database or ""
    in_memory = database == ":memory:" or database.startswith("file:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(parsed, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module: its legacy mode skips BEGIN before SELECT
        # and DDL, which breaks SAVEPOINTs and transactional migrations. We emit it below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # First, so that every later statement waits for a lock instead of failing at once.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            if not in_memory:
                # WAL lets readers proceed while one writer commits.
                dbapi_connection.run_async(_enable_wal)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE by default: take the write lock up front, waiting up to busy_timeout.
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another writer committed in between (busy_timeout cannot help an upgrade),
        # and the app's transactions are short read-then-write ones. WAL readers are unaffected.
        begin = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "BEGIN IMMEDIATE")
        conn.exec_driver_sql(begin)

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay readable after commit (no implicit lazy reload)."""
    return async_sessionmaker(engine, expire_on_commit=False)


__all__ = [
    "ACCEPTED_FORMS",
    "SQLITE_BEGIN_OPTION",
    "check_database_url",
    "create_engine",
    "make_sessionmaker",
]
