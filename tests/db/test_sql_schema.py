"""Migrations on empty SQLite and PostgreSQL databases: the contract schema, idempotence, no drift."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, Text, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement

from db.migrate import current_revision, head_revision, migrate
from db.models import Base
from db.session import create_engine

# Written out by hand from design.md ("Stored data") plus the documented additions; never
# derived from the models, so a renamed or dropped column fails here.
CONTRACT_COLUMNS: dict[str, set[str]] = {
    "workspaces": {"workspace_id", "name", "created_at", "enterprise_id"},  # + 0009
    "backfill_schedules": {
        "schedule_id",
        "workspace_id",
        "cron_expression",
        "timezone",
        "days_to_backfill",
        "include_all_channels",
        "channel_ids",
        "is_active",
        "last_run_at",
        "next_run_at",
        "created_by",
        "created_at",
        "updated_at",
    },
    "backfill_job_runs": {
        "job_run_id",
        "workspace_id",
        "schedule_id",
        "job_type",
        "status",
        "messages_collected",
        "channels_processed",
        "error_message",
        "triggered_by",
        "started_at",
        "completed_at",
    },
    "messages": {
        "workspace_id",
        "channel_id",
        "ts",
        "thread_ts",
        "user_id",
        "user_name",
        "text",
        "channel_name",
        "stored_at",
    },
}
ADDED_COLUMNS: dict[str, set[str]] = {
    "backfill_job_runs": {
        "heartbeat_at",
        "fire_time",
        "days",
        "channels_skipped",
        # revision 0002: run lifecycle
        "cancel_requested_by",
        "cancel_requested_at",
        "attempt",
        "interruptions",
        "owner",
        "retry_at",
        "channel_ids",
        # revision 0004: what the run asked of Slack, per method
        "slack_calls",
        # revision 0006: stored messages the run removed because Slack no longer had them
        "messages_removed",
    },
    "backfill_schedules": {"paused_reason"},
    "channel_checkpoints": {
        "workspace_id",
        "channel_id",
        "channel_name",
        "job_run_id",
        "phase",
        "window_oldest_ts",
        "window_latest_ts",
        "resume_latest_ts",
        "high_water_ts",
        "updated_at",
    },
    # revision 0003: the replay guard's signatures
    "seen_request_signatures": {"signature", "valid_until"},
    # revision 0005: the live mirror
    "messages": {"edited_ts"},
    "message_tombstones": {"workspace_id", "channel_id", "ts", "reason", "edited_ts", "removed_at"},
    "mirror_inbox": {
        "inbox_id",
        "workspace_id",
        "event_id",
        "channel_id",
        "event_type",
        "payload",
        "event_time",
        "received_at",
        "claimed_by",
        "claimed_at",
    },
    "mirror_seen_events": {"workspace_id", "event_id", "seen_at"},
    "mirror_state": {"workspace_id", "day", "applied_today", "last_applied_at", "last_event_at"},
    # revision 0007: multi-workspace mode (tokens only ever encrypted)
    "installations": {
        "install_key",
        "enterprise_id",
        "enterprise_name",
        "enterprise_url",
        "team_id",
        "team_name",
        "is_enterprise_install",
        "app_id",
        "bot_id",
        "bot_user_id",
        "bot_scopes",
        "installer_user_id",
        "token_type",
        "bot_token_encrypted",
        "bot_refresh_token_encrypted",
        "bot_token_expires_at",
        "installed_at",
        "status",
        "status_reason",
        "updated_at",
    },
    "oauth_states": {"state_hash", "expire_at"},
}
EXPECTED_TABLES = {
    "workspaces",
    "backfill_schedules",
    "backfill_job_runs",
    "messages",
    "channel_checkpoints",
    "seen_request_signatures",
    "message_tombstones",
    "mirror_inbox",
    "mirror_seen_events",
    "mirror_state",
    "installations",
    "oauth_states",
    "alembic_version",
}
# Revision 0008, the word search's index: on SQLite an FTS5 table and its shadow tables (made by
# SQLite, outside the models: Alembic's comparison leaves them out), on PostgreSQL an expression
# index (likewise outside the models, which cannot spell it for SQLite too).
SQLITE_SEARCH_TABLES = {
    "messages_fts",
    "messages_fts_data",
    "messages_fts_idx",
    "messages_fts_docsize",
    "messages_fts_config",
}
POSTGRES_SEARCH_INDEX = "ix_messages_text_search"


def _not_a_search_index(obj: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
    """Alembic `include_object`: everything but the search index objects above."""
    return not (name in SQLITE_SEARCH_TABLES or name == POSTGRES_SEARCH_INDEX)


PRIMARY_KEYS = {
    "workspaces": ["workspace_id"],
    "backfill_schedules": ["schedule_id"],
    "backfill_job_runs": ["job_run_id"],
    "messages": ["workspace_id", "channel_id", "ts"],
    "channel_checkpoints": ["workspace_id", "channel_id"],
    "seen_request_signatures": ["signature"],
    "message_tombstones": ["workspace_id", "channel_id", "ts"],
    "mirror_inbox": ["inbox_id"],
    "mirror_seen_events": ["workspace_id", "event_id"],
    "mirror_state": ["workspace_id"],
    "installations": ["install_key"],
    "oauth_states": ["state_hash"],
}


def _plain(value: Any) -> Any:
    """Reflection output with SQL expressions (partial index predicates) rendered as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, ClauseElement):
        return str(value)
    return value


def _snapshot(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    snap: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        snap[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table),
            "fks": sorted(repr(_plain(fk)) for fk in insp.get_foreign_keys(table)),
            "uniques": sorted(repr(_plain(u)) for u in insp.get_unique_constraints(table)),
            "indexes": sorted(repr(_plain(i)) for i in insp.get_indexes(table)),
            "checks": sorted(repr(_plain(c)) for c in insp.get_check_constraints(table)),
        }
    return snap


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


async def test_sql_migrate_creates_the_contract_tables_and_columns(database_url: str) -> None:
    assert await current_revision(database_url) is None
    await migrate(database_url)
    assert await current_revision(database_url) == head_revision()

    snap = await _inspect(database_url, _snapshot)
    search_tables = SQLITE_SEARCH_TABLES if database_url.startswith("sqlite") else set()
    assert set(snap) == EXPECTED_TABLES | search_tables
    for table in EXPECTED_TABLES - {"alembic_version"}:
        expected = CONTRACT_COLUMNS.get(table, set()) | ADDED_COLUMNS.get(table, set())
        actual = {name for name, _type, _nullable in snap[table]["columns"]}
        assert actual == expected, table
        assert snap[table]["pk"]["constrained_columns"] == PRIMARY_KEYS[table]
        assert snap[table]["pk"]["name"] in (f"pk_{table}", None)  # SQLite may not report it


async def test_sql_migrate_names_constraints_and_indexes(database_url: str) -> None:
    await migrate(database_url)

    def details(conn: Connection) -> dict[str, Any]:
        insp = inspect(conn)
        return {
            "schedule_uniques": insp.get_unique_constraints("backfill_schedules"),
            "run_uniques": insp.get_unique_constraints("backfill_job_runs"),
            "run_indexes": insp.get_indexes("backfill_job_runs"),
            "message_indexes": insp.get_indexes("messages"),
            "run_fks": insp.get_foreign_keys("backfill_job_runs"),
            "nullable": {c["name"]: c["nullable"] for c in insp.get_columns("backfill_job_runs")},
        }

    d = await _inspect(database_url, details)
    assert [u["column_names"] for u in d["schedule_uniques"]] == [["workspace_id"]]
    assert d["schedule_uniques"][0]["name"] == "uq_backfill_schedules_workspace_id"
    assert {(u["name"], tuple(u["column_names"])) for u in d["run_uniques"]} == {
        ("uq_backfill_job_runs_schedule_id_fire_time", ("schedule_id", "fire_time"))
    }
    running = [
        i for i in d["run_indexes"] if i["name"] == "uq_backfill_job_runs_workspace_id_running"
    ]
    assert (
        len(running) == 1
        and running[0]["unique"]
        and running[0]["column_names"] == ["workspace_id"]
    )
    assert any(
        i["column_names"] == ["workspace_id", "channel_id", "thread_ts"]
        for i in d["message_indexes"]
    )
    on_delete = {
        fk["referred_table"]: (fk["options"].get("ondelete") or "").upper() for fk in d["run_fks"]
    }
    assert on_delete == {"workspaces": "CASCADE", "backfill_schedules": "SET NULL"}
    assert d["nullable"]["schedule_id"] is True
    assert d["nullable"]["completed_at"] is True
    assert d["nullable"]["status"] is False


async def test_sql_migrate_twice_is_a_no_op(database_url: str) -> None:
    await migrate(database_url)
    first_revision = await current_revision(database_url)
    first = await _inspect(database_url, _snapshot)

    await migrate(database_url)

    assert await current_revision(database_url) == first_revision == head_revision()
    assert await _inspect(database_url, _snapshot) == first


async def test_sql_autogenerate_finds_no_difference_between_models_and_migrations(
    database_url: str,
) -> None:
    await migrate(database_url)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "target_metadata": Base.metadata,
                "include_object": _not_a_search_index,
            },
        )
        return list(compare_metadata(context, Base.metadata))

    assert await _inspect(database_url, diff) == []


async def test_sql_autogenerate_comparison_is_not_vacuous(database_url: str) -> None:
    """Guard for the test above: a model that drifts from the migration is reported."""
    await migrate(database_url)
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["messages"].append_column(Column("extra", Text()))
    drifted.tables["backfill_job_runs"].c.days.type = Text()

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "target_metadata": drifted,
                "include_object": _not_a_search_index,
            },
        )
        return list(compare_metadata(context, drifted))

    found = await _inspect(database_url, diff)
    kinds = {entry[0] if isinstance(entry, tuple) else entry[0][0] for entry in found}
    assert kinds == {"add_column", "modify_type"}, found


async def test_sql_concurrent_migrations_queue_up_instead_of_failing(database_url: str) -> None:
    """Several app processes starting at once all call `migrate` on the same database."""
    await asyncio.gather(*(migrate(database_url) for _ in range(3)))
    assert await current_revision(database_url) == head_revision()
    tables = await _inspect(database_url, lambda conn: set(inspect(conn).get_table_names()))
    search_tables = SQLITE_SEARCH_TABLES if database_url.startswith("sqlite") else set()
    assert tables == EXPECTED_TABLES | search_tables


async def test_sqlite_connections_opening_a_new_file_at_once_all_get_wal(tmp_path: Any) -> None:
    """Regression: switching a new file to WAL is a SHARED-to-EXCLUSIVE upgrade, for which SQLite
    skips the busy handler, so concurrent first connections used to fail with "database is locked"
    (the cause of flaky concurrent migrations). Repeated on fresh files because it is a race."""

    async def journal_mode(url: str) -> str:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return str((await conn.exec_driver_sql("PRAGMA journal_mode")).scalar())
        finally:
            await engine.dispose()

    for attempt in range(25):
        url = f"sqlite+aiosqlite:///{tmp_path}/fresh{attempt}.db"
        modes = await asyncio.gather(*(journal_mode(url) for _ in range(4)))
        assert modes == ["wal"] * 4
