"""The exact-words half of `/backfill search`: stored messages containing every word typed, best
first, from the channels the person searching may read. The meaning half (Chroma) and the fusion
of both live elsewhere.

Uses the full-text indexes of revision 0008: FTS5 `messages_fts` on SQLite (ranked by bm25), the
GIN index on `to_tsvector('simple', text)` on PostgreSQL (ranked by ts_rank).

What people type is never query syntax. The input is split on whitespace; a word without a letter
or digit is dropped (it could match nothing); every other word becomes one quoted FTS5 phrase
(`"` doubled inside) or one `phraseto_tsquery` (which reads plain text, no operators), always as
a bound parameter; and all of them are required. So `"`, `*`, `NEAR(`, `OR`, `-`, `:` or
parentheses are plain characters (dropped by the tokenizer, or plain words), never operators.

Takes the `AsyncSession` first and never commits. Imports SQLAlchemy and `db` only.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    Table,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from db.messages import message_record
from db.models import Message
from db.records import MessageRecord

# More words than this narrow nothing down in practice; beyond them the query only costs more.
MAX_TERMS = 32

_MESSAGES = cast(Table, Message.__table__)
_M = _MESSAGES.c
_FTS = table("messages_fts", column("rowid"))
# Spelled exactly as the index expression of revision 0008: a bound config would not match it.
_PG_CONFIG: ColumnElement[Any] = literal_column("'simple'::regconfig")


def search_terms(words: str) -> list[str]:
    """The words of `words` that can match something: split on whitespace (and NUL), those with
    at least one letter or digit, first occurrences only (case-insensitively), at most
    `MAX_TERMS`."""
    terms: dict[str, str] = {}
    # NUL splits words: PostgreSQL text cannot hold it at all.
    for word in words.replace("\x00", " ").split():
        if any(ch.isalnum() for ch in word):
            terms.setdefault(word.casefold(), word)
    return list(terms.values())[:MAX_TERMS]


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 query requiring every term, each as a quoted phrase: inside double quotes FTS5
    reads no operator, and a double quote is escaped by doubling it."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _ts_key(col: ColumnElement[str], dialect: str) -> ColumnElement[str]:
    # ts text compares in byte order, which is numeric order for Slack's "1700000000.000100";
    # PostgreSQL's default collation may not be byte order, SQLite's BINARY is.
    return col.collate("C") if dialect == "postgresql" else col


def _filters(
    dialect: str,
    workspace_id: str,
    channel_ids: Collection[str],
    user_ids: Collection[str] | None,
    after_ts: str | None,
    before_ts: str | None,
) -> list[ColumnElement[bool]]:
    """The conditions on `messages`: workspace, readable channels, authors, ts bounds. Id lists
    are one bound parameter each (a JSON list on SQLite, an array on PostgreSQL), so no list is
    too long for the drivers' parameter caps."""

    def among(col: ColumnElement[str], ids: Collection[str], name: str) -> ColumnElement[bool]:
        values = sorted(set(ids))
        if dialect == "postgresql":
            return col == func.any(bindparam(name, values, type_=ARRAY(Text)))
        each = func.json_each(bindparam(name, json.dumps(values))).table_valued("value")
        return col.in_(select(each.c.value))

    where = [_M.workspace_id == workspace_id, among(_M.channel_id, channel_ids, "channel_ids")]
    if user_ids is not None:
        where.append(among(_M.user_id, user_ids, "user_ids"))
    if after_ts is not None:
        where.append(_ts_key(_M.ts, dialect) > after_ts)
    if before_ts is not None:
        where.append(_ts_key(_M.ts, dialect) < before_ts)
    return where


def _sqlite_query(terms: Sequence[str]) -> tuple[Select[Any], ColumnElement[Any]]:
    """Messages whose indexed text matches; bm25 is lower for better matches. Its word statistics
    cover the whole index (every workspace and channel): they weigh words, they never select rows;
    only the filters on `messages` do."""
    match = literal_column("messages_fts").op("MATCH")(bindparam("fts_query", fts5_query(terms)))
    rank = func.bm25(literal_column("messages_fts"), type_=Float)
    # The join on rowid is spelled by hand: `rowid` is not a declared column of `messages`.
    stmt = (
        select(_MESSAGES)
        .select_from(_FTS)
        .join(_MESSAGES, literal_column("messages.rowid") == _FTS.c.rowid)
        .where(match)
    )
    return stmt, rank.asc()


def _postgres_query(terms: Sequence[str]) -> tuple[Select[Any], ColumnElement[Any]]:
    """Messages whose text vector holds every term's phrase; ts_rank is higher for better
    matches. Normalisation 1 divides by 1 + log(length), so that, as with bm25, a long message
    does not win by its length alone."""
    query: ColumnElement[Any] | None = None
    for i, term in enumerate(terms):
        phrase = func.phraseto_tsquery(_PG_CONFIG, bindparam(f"term_{i}", term, type_=Text))
        query = phrase if query is None else query.op("&&")(phrase)
    assert query is not None
    vector = func.to_tsvector(_PG_CONFIG, _M.text)
    stmt = select(_MESSAGES).where(vector.op("@@")(query))
    return stmt, func.ts_rank(vector, query, 1, type_=Float).desc()


def search_statement(
    dialect: str,
    workspace_id: str,
    terms: Sequence[str],
    *,
    channel_ids: Collection[str],
    user_ids: Collection[str] | None = None,
    after_ts: str | None = None,
    before_ts: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Select[Any]:
    """The SELECT of `messages` rows behind `search_words` for non-empty `terms` (from
    `search_terms`), for `dialect` ("sqlite" or "postgresql"); see there for the rest."""
    if not terms:
        raise ValueError("no search terms: there is nothing to search for")
    if dialect == "postgresql":
        stmt, best_first = _postgres_query(terms)
    elif dialect == "sqlite":
        stmt, best_first = _sqlite_query(terms)
    else:
        raise NotImplementedError(
            f"word search is written for PostgreSQL and SQLite, not {dialect}"
        )
    return (
        stmt.where(*_filters(dialect, workspace_id, channel_ids, user_ids, after_ts, before_ts))
        .order_by(best_first, _ts_key(_M.ts, dialect).desc(), _M.channel_id)
        .limit(limit)
        .offset(offset)
    )


async def search_words(
    session: AsyncSession,
    workspace_id: str,
    words: str,
    *,
    channel_ids: Collection[str],
    user_ids: Collection[str] | None = None,
    after_ts: str | None = None,
    before_ts: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[MessageRecord]:
    """The workspace's stored messages containing every word of `words`, best first (bm25 on
    SQLite, ts_rank on PostgreSQL; ties newest first), `limit` of them after skipping `offset`.

    `channel_ids`: the channels the person searching may read (public ones and the private ones
    they are in, narrowed by any `in:`); nothing outside it is ever returned, and an empty set
    returns nothing. `user_ids`: only these authors (`from:`); None for any, empty for none.
    `after_ts`, `before_ts`: exclusive bounds on `ts`, as Slack ts text ("1700000000.000000"),
    compared in byte order (numeric order for Slack's 10-digit seconds). A query with no usable
    word returns nothing, never everything.
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    terms = search_terms(words)
    if not terms or not channel_ids or limit <= 0 or (user_ids is not None and not user_ids):
        return []
    stmt = search_statement(
        session.get_bind().dialect.name,
        workspace_id,
        terms,
        channel_ids=channel_ids,
        user_ids=user_ids,
        after_ts=after_ts,
        before_ts=before_ts,
        limit=limit,
        offset=offset,
    )
    rows = (await session.execute(stmt)).all()
    return [message_record(row) for row in rows]


__all__ = ["MAX_TERMS", "fts5_query", "search_statement", "search_terms", "search_words"]
