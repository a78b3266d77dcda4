"""`check_database_url`: the two accepted forms pass, anything else fails with one clear line."""

from __future__ import annotations

import pytest

from db.session import ACCEPTED_FORMS, check_database_url, create_engine
from tests.support.refusals import one_line_refusal


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./data/backfill.db",
        "sqlite+aiosqlite:////var/lib/backfill/backfill.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://user:pass@db.internal:5432/backfill",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/backfill",
        "postgresql+asyncpg://user:p%40ss@localhost/backfill",
    ],
)
def test_check_database_url_accepts_supported_forms(url: str) -> None:
    check_database_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://user:pass@host:5432/db", "unsupported driver 'postgresql'"),
        ("postgresql+psycopg://user:pass@host:5432/db", "unsupported driver"),
        ("sqlite:///./data/backfill.db", "unsupported driver 'sqlite'"),
        ("sqlite://", "unsupported driver"),
        ("mysql+aiomysql://u:p@h/db", "unsupported driver"),
        ("sqlite+aiosqlite://", "names no SQLite file"),
        ("postgresql+asyncpg://user:pass@host:5432", "names no PostgreSQL database"),
        ("postgresql+asyncpg://user:pass@host:5432/", "names no PostgreSQL database"),
        ("postgresql+asyncpg:///db", "names no PostgreSQL host"),
        ("not a url", "is not a database URL"),
        ("./data/backfill.db", "is not a database URL"),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_check_database_url_rejects_with_one_clear_line(url: str, reason: str) -> None:
    message = one_line_refusal(check_database_url, url)
    assert reason in message
    assert ACCEPTED_FORMS in message
    assert "sqlite+aiosqlite:///path" in message
    assert "postgresql+asyncpg://user:pass@host:port/db" in message


def test_check_database_url_never_echoes_a_password() -> None:
    with pytest.raises(ValueError) as info:
        check_database_url("postgresql://admin:hunter2-secret@host:5432/db")
    assert "hunter2-secret" not in str(info.value)


def test_create_engine_validates_the_url() -> None:
    with pytest.raises(ValueError, match="unsupported driver"):
        create_engine("postgresql://user:pass@host/db")


async def test_create_engine_makes_the_sqlite_parent_folder(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "nested" / "deeper" / "backfill.db"
    engine = create_engine(f"sqlite+aiosqlite:///{target}")
    try:
        assert target.parent.is_dir()
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
        assert (mode, fks) == ("wal", 1)
        assert busy > 0
    finally:
        await engine.dispose()
