"""Word search over stored messages: an FTS5 index on SQLite, a GIN index on PostgreSQL.

Revision ID: 0008
Revises: 0007
Create Date: 2025-01-08 00:00:00

Only `messages.text` is indexed, with no stemming and no stop words, case- and accent-folded on
SQLite ('simple' configuration on PostgreSQL): `db.search` looks for the words people type (error
codes, names, versions), whatever the language. Both dialects split on punctuation; the query
side turns each typed word into a phrase of its tokens through the same tokenizer, so
`ERR_CONN_RESET` finds the adjacent tokens err, conn, reset, and `failed` still finds "failed."
(a tokenizer that kept `.`, `-` or `_` inside tokens would lose words at the end of sentences and
in Slack's `_italic_`).

SQLite: `messages_fts`, an external-content FTS5 table over `messages` (the text is not stored
twice) keyed by the rowid of `messages`, kept in sync by three triggers. Rows skipped by the
tombstone trigger of 0005 (BEFORE INSERT, RAISE(IGNORE)) are never inserted, so they never reach
the AFTER INSERT trigger either; the upsert's DO UPDATE fires the UPDATE trigger. A later
migration that recreates `messages` (Alembic batch mode on SQLite copies and drops the table)
drops these triggers with it, and may renumber rowids: it must recreate the triggers and run
`INSERT INTO messages_fts(messages_fts) VALUES('rebuild')`.

PostgreSQL: an expression index on `to_tsvector('simple', text)`; queries must spell the same
expression (`db.search`) for the planner to use it. No stored column, so the model is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TABLE = "messages_fts"
POSTGRES_INDEX = "ix_messages_text_search"

# remove_diacritics 2 also folds accents of composed characters ("café" finds "cafe"); no
# tokenchars on purpose (see the module's docstring).
SQLITE_UPGRADE = (
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content='messages', content_rowid='rowid',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
    END
    """,
    # An external-content index forgets a row by being told its old values exactly.
    """
    CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    END
    """,
    # Only a change of text re-indexes (a rename of the channel or an author's name does not).
    """
    CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
    END
    """,
    # The rows stored before this revision.
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS messages_fts_after_update",
    "DROP TRIGGER IF EXISTS messages_fts_after_delete",
    "DROP TRIGGER IF EXISTS messages_fts_after_insert",
    "DROP TABLE IF EXISTS messages_fts",
)
POSTGRES_UPGRADE = (
    f"CREATE INDEX {POSTGRES_INDEX} ON messages USING gin (to_tsvector('simple'::regconfig, text))",
)
POSTGRES_DOWNGRADE = (f"DROP INDEX IF EXISTS {POSTGRES_INDEX}",)


def _is_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    for statement in POSTGRES_UPGRADE if _is_postgresql() else SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in POSTGRES_DOWNGRADE if _is_postgresql() else SQLITE_DOWNGRADE:
        op.execute(statement)
