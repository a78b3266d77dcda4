"""Engines and session factories for the SQL store (SQLite via aiosqlite, PostgreSQL via asyncpg).

Owns URL validation, per-connection SQLite settings, pool sizing, read sessions that never wait
for SQLite's write lock, and telling a database that is away or busy from a bug in a query.
Imports SQLAlchemy only; never Slack code.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
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


@asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads only. On SQLite its transaction opens with a plain (deferred) BEGIN:
    in WAL mode a reader works from a snapshot and never waits for the write lock, so a read is
    answered while another connection holds a long write transaction (the default BEGIN
    IMMEDIATE would queue behind it for the whole busy timeout). Other databases ignore it."""
    async with sessions() as session:
        await session.connection(execution_options={SQLITE_BEGIN_OPTION: "BEGIN"})
        yield session


# The store's batch writers' turns in this process, per engine (see `writing`).
_WRITE_TURNS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def writing(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A write transaction of the store's batch writers (a run's batches, the live mirror's
    changes), which hold it across their Chroma calls. In this process they take turns, first
    come first served, before their transaction begins:
    - SQLite: its busy handler lets a waiter for the file's one write lock sleep (up to 100 ms at
      a time) while a writer that comes straight back wins again, so a run's back-to-back batches
      would keep the mirror waiting for the whole run;
    - PostgreSQL: each writer takes its channels' advisory locks one by one (`lock_channels`), so
      a writer holding some while it waits for the next stalls the others behind it in a convoy.
    Chroma serves one call at a time anyway, so the turns cost no overlap that was there. Across
    processes, PostgreSQL's advisory locks still order the writers of a channel."""
    async with sessions() as session:
        bind = session.get_bind()
        if not isinstance(bind, Engine):  # a session bound to a connection: its caller orders
            async with session.begin():
                yield session
            return
        turn = _WRITE_TURNS.setdefault(bind, asyncio.Lock())
        async with turn, session.begin():
            yield session


# -- the database away or busy -------------------------------------------------------------------

# SQLSTATE classes of a connection that failed or was cut by the server (08: connection
# exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now, e.g. still starting).
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# Too many connections, lock not available: the server is up but cannot serve us now.
_BUSY_SQLSTATES = ("53300", "55P03")
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg", "aiosqlite")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error SQLAlchemy wrapped (`.orig`) and the causes behind them."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]


def _raised_by_database_driver(exc: BaseException) -> bool:
    """Whether `exc` came through SQLAlchemy or a database driver (an `OSError` from Slack's
    HTTP client is not a database outage)."""
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (refused, reset, cut by a restart,
    still starting), as opposed to a query the database refused. Such an error passes: retry."""
    for cause in _causes(exc):
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, DisconnectionError):
            return True
        if isinstance(cause, OSError) and _raised_by_database_driver(cause):
            return True  # refused, reset, unreachable (asyncpg's connect raises these bare)
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_GONE_SQLSTATES):
            return True
        kind = type(cause)
        # asyncpg's InterfaceError covers "the underlying connection is closed" among misuses.
        if (
            kind.__module__.startswith("asyncpg")
            and kind.__name__ == "InterfaceError"
            and "connection" in str(cause).lower()
        ):
            return True
    return False


def database_busy(exc: BaseException) -> bool:
    """Whether `exc` says the database is up but held by others past the wait allowed: SQLite's
    "database is locked" after the busy timeout, no pooled connection free in time, or
    PostgreSQL out of connections. Such an error passes: retry shortly."""
    for cause in _causes(exc):
        if isinstance(cause, PoolTimeout):
            return True
        if isinstance(cause, sqlite3.OperationalError):
            code = getattr(cause, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return True
            if code is None and "database is locked" in str(cause):
                return True
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state in _BUSY_SQLSTATES:
            return True
    return False


def database_trouble(exc: BaseException) -> bool:
    """Unavailable or busy: the database will most likely answer if asked again later."""
    return database_unavailable(exc) or database_busy(exc)


__all__ = [
    "ACCEPTED_FORMS",
    "SQLITE_BEGIN_OPTION",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_DRIVER",
    "check_database_url",
    "create_engine",
    "database_busy",
    "database_trouble",
    "database_unavailable",
    "make_sessionmaker",
    "reading",
    "writing",
]
