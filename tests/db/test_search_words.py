"""The exact-words search (`db.search`, the indexes of revision 0008) on SQLite and PostgreSQL:
codes and words found exactly, every word required, best first, filters, private channels kept
out whatever the words, edits and deletions followed, hostile input harmless, rows stored before
the migration found."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import removals
from db.messages import upsert_messages
from db.migrate import alembic_config, migrate
from db.records import MessageRecord
from db.search import MAX_TERMS, search_statement, search_terms, search_words
from db.session import create_engine, make_sessionmaker

W = "T1"
GENERAL, RANDOM, SECRET = "C1", "C2", "G9"  # SECRET: a private channel the searcher is not in
READABLE = {GENERAL, RANDOM}


def msg(
    ts: str,
    text_: str,
    *,
    channel: str = GENERAL,
    user: str = "U1",
    workspace: str = W,
    edited: str | None = None,
) -> MessageRecord:
    return MessageRecord(
        workspace, channel, channel.lower(), ts, None, user, user.lower(), text_, edited_ts=edited
    )


async def write(
    sessions: async_sessionmaker[AsyncSession], records: Iterable[MessageRecord]
) -> None:
    async with sessions.begin() as s:
        await upsert_messages(s, list(records))


async def found(
    sessions: async_sessionmaker[AsyncSession],
    words: str,
    channel_ids: Iterable[str] = READABLE,
    **kw: Any,
) -> list[str]:
    """The ts of the hits, in rank order."""
    async with sessions() as s:
        hits = await search_words(s, W, words, channel_ids=set(channel_ids), **kw)
    return [h.ts for h in hits]


CORPUS = [
    msg("1700000001.000100", "connection failed with ERR_CONN_RESET at 10:00"),
    msg("1700000002.000100", "got E1234 from the billing api"),
    msg("1700000003.000100", "release v2.3.1 shipped today."),
    msg("1700000004.000100", "ERR_CONN_REFUSED is a different failure"),
    msg("1700000005.000100", "E12345 is not the code you want"),
    msg("1700000006.000100", "the deploy failed again", channel=RANDOM, user="U2"),
    msg("1700000007.000100", "deploy went fine", channel=RANDOM),
    msg("1700000008.000100", "nothing failed", user="U2"),
    msg("1700000009.000100", "café au lait, 日本語のテキスト, naïve résumé"),
    msg("1700000010.000100", "ERR_CONN_RESET deploy failed secret plans", channel=SECRET),
    msg("1700000011.000100", "ERR_CONN_RESET deploy failed elsewhere", workspace="T2"),
]


@pytest.fixture
async def corpus(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    await write(sessions, CORPUS)
    return sessions


async def test_exact_codes_are_results_and_only_them(
    corpus: async_sessionmaker[AsyncSession],
) -> None:
    assert await found(corpus, "ERR_CONN_RESET") == ["1700000001.000100"]
    assert await found(corpus, "err_conn_reset") == ["1700000001.000100"]  # case folded
    assert await found(corpus, "E1234") == ["1700000002.000100"]  # not E12345
    assert await found(corpus, "E12345") == ["1700000005.000100"]
    assert await found(corpus, "v2.3.1") == ["1700000003.000100"]
    assert await found(corpus, "today") == ["1700000003.000100"]  # "today." ends a sentence
    assert await found(corpus, "ERR_CONN_REFUSED") == ["1700000004.000100"]


async def test_every_word_is_required(corpus: async_sessionmaker[AsyncSession]) -> None:
    assert await found(corpus, "deploy failed") == ["1700000006.000100"]
    assert set(await found(corpus, "failed")) == {
        "1700000001.000100",
        "1700000006.000100",
        "1700000008.000100",
    }
    assert await found(corpus, "deploy failed unicorn") == []
    assert await found(corpus, "café 日本語のテキスト") == ["1700000009.000100"]


async def test_best_match_first_and_ties_newest_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    await write(
        sessions,
        [
            msg("1700000100.000100", f"timeout {filler}"),  # one mention in a long message
            msg("1700000050.000100", "timeout timeout timeout"),  # older, but a better match
            msg("1700000200.000100", "timeout again"),
            msg("1700000300.000100", "timeout again"),  # same text: the newer first
        ],
    )
    hits = await found(sessions, "timeout")
    assert hits[0] == "1700000050.000100"
    assert hits[-1] == "1700000100.000100"
    assert hits.index("1700000300.000100") < hits.index("1700000200.000100")
    # Paging walks the same order.
    assert await found(sessions, "timeout", limit=2) == hits[:2]
    assert await found(sessions, "timeout", limit=2, offset=2) == hits[2:]
    assert await found(sessions, "timeout", limit=0) == []


async def test_each_filter(corpus: async_sessionmaker[AsyncSession]) -> None:
    all_failed = {"1700000001.000100", "1700000006.000100", "1700000008.000100"}
    assert set(await found(corpus, "failed", channel_ids={RANDOM})) == {"1700000006.000100"}
    assert set(await found(corpus, "failed", user_ids={"U2"})) == {
        "1700000006.000100",
        "1700000008.000100",
    }
    assert await found(corpus, "failed", user_ids=set()) == []
    # Bounds are exclusive.
    assert set(await found(corpus, "failed", after_ts="1700000001.000100")) == all_failed - {
        "1700000001.000100"
    }
    assert set(await found(corpus, "failed", before_ts="1700000008.000100")) == all_failed - {
        "1700000008.000100"
    }
    assert set(await found(corpus, "failed", after_ts="1700000000.000000")) == all_failed
    assert await found(
        corpus,
        "failed",
        channel_ids={GENERAL},
        user_ids={"U1", "U2"},
        after_ts="1700000001.000100",
        before_ts="1700000009.000000",
    ) == ["1700000008.000100"]


async def test_a_channel_outside_the_readable_set_is_never_searched(
    corpus: async_sessionmaker[AsyncSession],
) -> None:
    for words in ("ERR_CONN_RESET deploy failed secret plans", "secret", "plans", "failed"):
        assert "1700000010.000100" not in await found(corpus, words)
        # Another workspace's messages neither, even given its channel.
        assert "1700000011.000100" not in await found(corpus, words, READABLE | {SECRET})
    assert await found(corpus, "secret plans") == []
    assert await found(corpus, "secret plans", {SECRET}) == ["1700000010.000100"]
    assert await found(corpus, "failed", set()) == []  # no readable channel: nothing


async def test_many_readable_channels_fit_in_one_query(
    corpus: async_sessionmaker[AsyncSession],
) -> None:
    """More channel ids than either driver's bind-parameter cap (32766)."""
    many = {f"C{i:06d}" for i in range(40_000)} | {RANDOM}
    assert set(await found(corpus, "deploy", many)) == {"1700000007.000100", "1700000006.000100"}


async def test_an_edit_is_resultsby_its_new_text_only(
    corpus: async_sessionmaker[AsyncSession],
) -> None:
    edited = msg("1700000002.000100", "got W9876 from the billing api", edited="1700000099.000000")
    await write(corpus, [edited])  # the upsert's DO UPDATE path
    assert await found(corpus, "W9876") == ["1700000002.000100"]
    assert await found(corpus, "E1234") == []
    assert await found(corpus, "billing") == ["1700000002.000100"]  # once, not twice
    await _assert_index_consistent(corpus)


async def test_a_deleted_message_is_not_found(corpus: async_sessionmaker[AsyncSession]) -> None:
    async with corpus.begin() as s:
        assert await removals.remove_messages(s, W, GENERAL, ["1700000001.000100"]) == [
            "1700000001.000100"
        ]
    assert await found(corpus, "ERR_CONN_RESET") == []
    # A late copy is kept out by the tombstone trigger, and so out of the index too.
    await write(corpus, [CORPUS[0]])
    assert await found(corpus, "ERR_CONN_RESET") == []
    await _assert_index_consistent(corpus)


async def _assert_index_consistent(sessions: async_sessionmaker[AsyncSession]) -> None:
    """SQLite: FTS5's own check that the index holds exactly the content table's text."""
    async with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            await s.execute(
                text("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
            )


HOSTILE = [
    '"',
    "'",
    "*",
    "NEAR(",
    "NEAR(deploy failed)",
    "OR",
    "deploy OR unicorn",
    "-",
    "-deploy",
    ":",
    "text:deploy",
    ")",
    "(",
    "^deploy",
    "deploy*",
    '"deploy',
    "'; DROP TABLE messages; --",
    "a & b | !c <-> d",
    "\\",
    "\x00",
    "deploy\x00failed",
    "🔥💥",
    "—",
    "\u0301",
    "AND",
    "NOT deploy",
    "x" * 5000,
    ("( " * 2500)[:5000],
    ("deploy " * 800)[:5000],
    "",
    "   ",
]


@pytest.mark.parametrize("words", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_input_never_raises_nor_matches_everything(
    corpus: async_sessionmaker[AsyncSession], words: str
) -> None:
    hits = set(await found(corpus, words))
    # Exactly the messages holding every word's letters and digits, as plain words.
    assert hits == _expected(words)
    assert len(hits) < len([m for m in CORPUS if m.workspace_id == W and m.channel_id in READABLE])


def _tokens(s: str) -> list[str]:
    """Letters and digits runs, lower-cased: what both tokenizers make of ASCII text."""
    return re.findall(r"[a-z0-9]+", s.lower())


def _expected(words: str) -> set[str]:
    terms = [_tokens(w) for w in search_terms(words)]
    if not terms or not all(terms):
        return set()  # a word of only non-ASCII symbols: matches no ASCII text here
    hits = set()
    for m in CORPUS:
        if m.workspace_id != W or m.channel_id not in READABLE:
            continue
        have = " " + " ".join(_tokens(m.text)) + " "
        if all(f" {' '.join(t)} " in have for t in terms):
            hits.add(m.ts)
    return hits


def test_search_terms_keeps_the_words_that_can_match() -> None:
    assert search_terms('  deploy "" * Deploy ERR_CONN_RESET -- :x ') == [
        "deploy",
        "ERR_CONN_RESET",
        ":x",
    ]
    assert search_terms(" ".join(f"w{i}" for i in range(100))) == [
        f"w{i}" for i in range(MAX_TERMS)
    ]


VOCABULARY = ["deploy", "failed", "or", "and", "not", "near", "error", "e1234"]
NOISE = ['"', "'", "*", "(", ")", "-", "+", ":", "^", "NEAR(", "{", "}", ",", ".", "\\", "|"]
# Every seventh subset of the vocabulary, in a readable channel and again in the secret one.
PROPERTY_CORPUS = [
    msg(
        f"170000{2 if channel == SECRET else 1}{i:03d}.000100",
        " ".join(VOCABULARY[j] for j in range(len(VOCABULARY)) if i >> j & 1),
        channel=channel,
    )
    for i in range(1, 2 ** len(VOCABULARY), 7)
    for channel in (GENERAL, SECRET)
]


def _hostile_word() -> st.SearchStrategy[str]:
    noise = st.lists(st.sampled_from(NOISE), max_size=3).map("".join)
    word = st.sampled_from(VOCABULARY).map(lambda w: w.upper() if w in ("or", "and", "not") else w)
    return st.one_of(noise, st.tuples(noise, word, noise).map("".join), st.text(max_size=6))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(words=st.lists(_hostile_word(), max_size=6).map(" ".join))
async def test_property_hostile_words_match_exactly_the_messages_holding_them(
    sessions: async_sessionmaker[AsyncSession], words: str
) -> None:
    await write(sessions, PROPERTY_CORPUS)  # idempotent: the same rows every example
    async with sessions() as s:
        results = await search_words(s, W, words, channel_ids=READABLE)
    assert {h.channel_id for h in results} <= READABLE  # whatever the words
    hits = {h.ts for h in results}
    terms = search_terms(words)
    if not terms:
        assert hits == set()
    elif all(t.isascii() for t in terms):
        # Each term is the phrase of its letter and digit runs; every term is required.
        phrases = [" " + " ".join(_tokens(t)) + " " for t in terms]
        assert hits == {
            m.ts
            for m in PROPERTY_CORPUS
            if m.channel_id in READABLE
            and all(p in " " + " ".join(_tokens(m.text)) + " " for p in phrases)
        }
    # Otherwise (letters beyond ASCII, which the tokenizer may fold): it only must not raise.


async def test_postgres_uses_the_gin_index(postgres_url: str) -> None:
    """The query spells the index's expression exactly (else PostgreSQL scans every row).
    PostgreSQL only: the GIN index is its own."""
    await migrate(postgres_url)
    engine = create_engine(postgres_url)
    try:
        await _explain_uses_the_index(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _explain_uses_the_index(corpus: async_sessionmaker[AsyncSession]) -> None:
    await write(corpus, CORPUS)
    # Enough rows of the same workspace and channels that only the text index narrows them down.
    await write(corpus, [msg(f"1700100000.{i:06d}", f"filler message {i}") for i in range(3000)])
    async with corpus() as s:
        await s.execute(text("ANALYZE messages"))
        stmt = search_statement(
            "postgresql", W, search_terms("deploy failed"), channel_ids=READABLE
        )
        compiled = stmt.compile(
            dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join(row[0] for row in (await s.execute(text(f"EXPLAIN {compiled}"))).all())
    assert "ix_messages_text_search" in plan, plan


async def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(url)

    def run(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


def _search_objects(conn: Connection) -> set[str]:
    insp = inspect(conn)
    names = {t for t in insp.get_table_names() if t.startswith("messages_fts")}
    return names | {i["name"] for i in insp.get_indexes("messages") if "search" in str(i["name"])}


async def test_the_migration_indexes_rows_stored_before_it_and_downgrades(
    database_url: str,
) -> None:
    await _migrate_to(database_url, "0007")
    engine = create_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        await write(sessions, CORPUS)
        await migrate(database_url)
        assert await found(sessions, "ERR_CONN_RESET") == ["1700000001.000100"]
        assert await found(sessions, "deploy failed") == ["1700000006.000100"]
        await _assert_index_consistent(sessions)

        await _migrate_to(database_url, "0007", down=True)
        async with engine.connect() as conn:
            assert await conn.run_sync(_search_objects) == set()
        await write(sessions, [msg("1700000500.000100", "written while unindexed ERR_CONN_RESET")])

        await migrate(database_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_search_objects)
        assert set(await found(sessions, "ERR_CONN_RESET")) == {
            "1700000001.000100",
            "1700000500.000100",
        }
    finally:
        await engine.dispose()
