"""Schema migrations: bring a database to the newest Alembic revision, safely on every start.

Builds the Alembic `Config` in code (no alembic.ini, no `fileConfig`: the app owns logging).
Imports SQLAlchemy, Alembic and `db.session`; never Slack code.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.session import SQLITE_BEGIN_OPTION, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Key of the PostgreSQL advisory lock that serialises concurrent `migrate` calls from several
# app processes starting at once (any constant shared by all processes works).
_MIGRATION_LOCK_KEY = 0x6261636B66696C6C  # "backfill"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at `db/migrations`; `url` is used by the alembic CLI path."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = url
        # configparser interpolates "%": a URL-encoded password like p%40ss must be escaped.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision shipped with the code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to head. Idempotent: a database already at head is untouched."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Take the write lock before reading alembic_version, so two processes
                # migrating the same file queue up instead of failing on lock upgrade.
                await conn.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with conn.begin():
                if conn.dialect.name == "postgresql":
                    # DDL is transactional on PostgreSQL; the lock is released at commit.
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at, or None when it was never migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()


__all__ = ["alembic_config", "current_revision", "head_revision", "migrate"]
