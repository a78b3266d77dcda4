"""Telling a database that is away or busy from a bug, with real errors: a refused PostgreSQL
connection is "unavailable", SQLite's "database is locked" is "busy", and neither an integrity
error nor Slack's HTTP client failing to connect is either (a user must never be told the
database is down when Slack is). The words a user reads for each come from `handlers.errors`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text

from db.session import create_engine, database_busy, database_trouble, database_unavailable
from handlers.errors import DATABASE_BUSY, DATABASE_UNAVAILABLE, PLAIN_ERROR, explain_failure
from tests.support.servers import free_port


async def error_of(url: str, statement: str) -> BaseException:
    """What running `statement` on the database at `url` raises (it must raise)."""
    engine = create_engine(url)
    try:
        with pytest.raises(Exception) as caught:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
    return caught.value


async def test_database_trouble_refused_postgres_is_unavailable() -> None:
    error = await error_of(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing", "SELECT 1"
    )
    assert database_unavailable(error) and not database_busy(error)
    assert explain_failure(error, "test") == DATABASE_UNAVAILABLE


async def test_database_trouble_sqlite_locked_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import db.session

    monkeypatch.setattr(db.session, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        error = await error_of(f"sqlite+aiosqlite:///{path}", "INSERT INTO t VALUES (1)")
    finally:
        other.rollback()
        other.close()
    assert database_busy(error) and not database_unavailable(error)
    assert explain_failure(error, "test") == DATABASE_BUSY


async def test_database_trouble_integrity_error_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(Exception) as caught:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        await engine.dispose()
    assert not database_trouble(caught.value)
    assert explain_failure(caught.value, "test") == PLAIN_ERROR


async def test_database_trouble_slack_unreachable_is_not_the_database() -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{free_port()}/api/")
    with pytest.raises(OSError) as caught:
        await client.auth_test()
    assert not database_trouble(caught.value)
    assert explain_failure(caught.value, "test") == PLAIN_ERROR
