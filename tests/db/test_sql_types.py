"""`UTCDateTime` conversions and the Alembic config, without a database."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from db.migrate import alembic_config, current_revision, head_revision, migrate
from db.models import UTCDateTime

aware = st.datetimes(
    min_value=datetime(1971, 1, 2),
    max_value=datetime(2285, 12, 30),
    timezones=st.builds(
        timezone, st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))
    ),
)


@given(aware)
def test_sql_utcdatetime_round_trips_the_instant_as_utc(value: datetime) -> None:
    col = UTCDateTime()
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        bound = col.process_bind_param(value, dialect)
        assert bound is not None
        if dialect.name == "sqlite":
            assert bound.tzinfo is None  # stored as UTC wall time
        back = col.process_result_value(bound, dialect)
        assert back == value
        assert back is not None and back.tzinfo is UTC


def test_sql_utcdatetime_refuses_naive_and_non_datetimes() -> None:
    col = UTCDateTime()
    with pytest.raises(ValueError, match="naive datetime refused"):
        col.process_bind_param(datetime(2024, 1, 1), sqlite.dialect())
    with pytest.raises(TypeError):
        col.process_bind_param("2024-01-01T00:00:00Z", postgresql.dialect())  # type: ignore[arg-type]
    assert col.process_bind_param(None, sqlite.dialect()) is None
    assert col.process_result_value(None, sqlite.dialect()) is None


def test_sql_alembic_config_escapes_percent_in_urls() -> None:
    url = "postgresql+asyncpg://user:p%40ss%25@host:5432/db"
    config = alembic_config(url)
    assert config.get_main_option("sqlalchemy.url") == url
    assert config.attributes["url"] == url
    assert config.get_main_option("script_location", "").endswith("migrations")


async def test_sql_migrate_leaves_app_logging_alone(tmp_path: object) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("sqlalchemy").level)
    await migrate(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    assert (root.level, list(root.handlers), logging.getLogger("sqlalchemy").level) == before
    assert not logging.getLogger("alembic").disabled


async def test_sql_alembic_cli_path_builds_its_own_engine(tmp_path: object) -> None:
    """`alembic upgrade` through the env's asyncio.run path (what a CLI run would do)."""
    from alembic import command

    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
    assert await current_revision(url) == head_revision()
    await migrate(url)  # and the in-app path agrees it has nothing to do
    assert await current_revision(url) == head_revision()
