"""The `/backfill` grammar: a table of accepted inputs and of refusals, and a parser that never raises."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.help import USAGE_BY_COMMAND, USAGE_LINES
from handlers.grammar import (
    Cancel,
    Delete,
    Help,
    History,
    ListSchedule,
    OpenRunModal,
    OpenScheduleModal,
    ParseError,
    Pause,
    Purge,
    Resume,
    SaveSchedule,
    Search,
    StartRun,
    Status,
    parse_command,
)

ACCEPTED = [
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("help schedule", Help("schedule")),
    ("schedule", OpenScheduleModal()),
    ("  Schedule  ", OpenScheduleModal()),
    ('schedule "0 2 * * *"', SaveSchedule(cron="0 2 * * *")),
    ("schedule “0 2 * * 1-5”", SaveSchedule(cron="0 2 * * 1-5")),
    ("schedule „0 3 * * 0“", SaveSchedule(cron="0 3 * * 0")),
    ("schedule '*/15 * * * *'", SaveSchedule(cron="*/15 * * * *")),
    ('schedule "  0   2 * * * "', SaveSchedule(cron="0 2 * * *")),
    ('SCHEDULE "0 2 * * *" DAYS=3', SaveSchedule(cron="0 2 * * *", days=3)),
    ('schedule "0 2 * * *" days = 3', SaveSchedule(cron="0 2 * * *", days=3)),
    ('schedule "0 2 * * *" days= 3 tz =UTC', SaveSchedule(cron="0 2 * * *", days=3, tz="UTC")),
    ('schedule "0 2 * * *" days=007', SaveSchedule(cron="0 2 * * *", days=7)),
    ('schedule "0 2 * * *" days=365', SaveSchedule(cron="0 2 * * *", days=365)),
    (
        'schedule "0 2 * * *" tz=America/Argentina/Buenos_Aires',
        SaveSchedule(cron="0 2 * * *", tz="America/Argentina/Buenos_Aires"),
    ),
    ('schedule tz=Europe/Paris "0 2 * * *"', SaveSchedule(cron="0 2 * * *", tz="Europe/Paris")),
    (
        'schedule cron="0 2 * * *" timezone="Etc/GMT+3"',
        SaveSchedule(cron="0 2 * * *", tz="Etc/GMT+3"),
    ),
    ('schedule"0 2 * * *"', SaveSchedule(cron="0 2 * * *")),
    ('schedule "@daily"', SaveSchedule(cron="@daily")),
    (
        'schedule "0 2 * * *" channels=<#C0123ABCD|general>,<#G0PRIV0001>,<#C0999ZZZZ|>',
        SaveSchedule(cron="0 2 * * *", channel_ids=("C0123ABCD", "G0PRIV0001", "C0999ZZZZ")),
    ),
    (
        'schedule "0 2 * * *" channels=#General, #eng ,random',
        SaveSchedule(cron="0 2 * * *", channel_names=("general", "eng", "random")),
    ),
    (
        'schedule "0 2 * * *" channels=C0123ABCD,#eng,<#C0123ABCD|general>,#eng',
        SaveSchedule(cron="0 2 * * *", channel_ids=("C0123ABCD",), channel_names=("eng",)),
    ),
    ('schedule "0 2 * * *" channels=all', SaveSchedule(cron="0 2 * * *")),
    (
        'schedule "0 2 * * *" channel=#ünïcode-頻道',
        SaveSchedule(cron="0 2 * * *", channel_names=("ünïcode-頻道",)),
    ),
    ('schedule\u00a0"0 2 * * *"\u00a0days=2', SaveSchedule(cron="0 2 * * *", days=2)),
    ("sche\u200bdule", OpenScheduleModal()),
    ("run", OpenRunModal()),
    ("run days=3", StartRun(days=3)),
    ("RUN Days=1 channels=<#C0123ABCD|general>", StartRun(days=1, channel_ids=("C0123ABCD",))),
    ("run channels=#eng days=30", StartRun(days=30, channel_names=("eng",))),
    ("run channels=*", StartRun()),
    ("status", Status()),
    ("list", ListSchedule()),
    ("pause", Pause()),
    ("Resume", Resume()),
    ("delete", Delete()),
    ("cancel", Cancel()),
    ("history", History(10)),
    ("history 1", History(1)),
    ("history 100", History(100)),
    ("history 025", History(25)),
    ("purge", Purge()),
    ("PURGE", Purge()),
    ("help purge", Help("purge")),
    ("help search", Help("search")),
    ("search deploy failed", Search(words="deploy failed")),
    ("Search  deploy\u00a0 failed ", Search(words="deploy failed")),
    # words with a colon that is not one of the four filters are words, kept in order
    (
        "search ERR:12 http://x.example/a?b=1 note:",
        Search(words="ERR:12 http://x.example/a?b=1 note:"),
    ),
    ("search don't “panic”", Search(words="don't “panic”")),
    ('search "in:#eng" is a phrase', Search(words='"in:#eng" is a phrase')),
    (
        "search in:<#C0123ABCD|eng> deploy from:<@U0123ABCD|bob> failed",
        Search(words="deploy failed", channel_ids=("C0123ABCD",), user_ids=("U0123ABCD",)),
    ),
    (
        "search x in:#Eng in:<#C0123ABCD> in:C0456EFGH,#ops in:#eng",
        Search(words="x", channel_ids=("C0123ABCD", "C0456EFGH"), channel_names=("eng", "ops")),
    ),
    ("search x IN: #eng", Search(words="x", channel_names=("eng",))),
    (
        "search x from:<@U0123ABCD> from:<@W0123ABCD|ann lee> FROM:U0999ZZZZ from:<@U0123ABCD|b>",
        Search(words="x", user_ids=("U0123ABCD", "W0123ABCD", "U0999ZZZZ")),
    ),
    (
        "search x after:2026-03-01 before:2026-04-01",
        Search(words="x", after=date(2026, 3, 1), before=date(2026, 4, 1)),
    ),
    ("search before:2026-3-2 x", Search(words="x", before=date(2026, 3, 2))),
    ("search x after:2024-02-29", Search(words="x", after=date(2024, 2, 29))),
    (
        "search x after:2026-03-01 before:2026-03-02",
        Search(words="x", after=date(2026, 3, 1), before=date(2026, 3, 2)),
    ),
    # Slack escapes `&`, `<`, `>` in the command text: the words are what was typed
    ("search a&lt;b &amp;&amp; c&gt;", Search(words="a<b && c>")),
    ("search ask <@U0123ABCD|bob> in <#C0123ABCD|eng>", Search(words="ask @bob in #eng")),
    ("search " + "w" * 500, Search(words="w" * 500)),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_parse_command_accepts(text: str, expected: object) -> None:
    assert parse_command(text) == expected


REFUSED = [
    # (text, sub-command for the usage line, words the message must contain)
    ("frobnicate", None, "`frobnicate` is not a /backfill command"),
    ("sched", None, "Did you mean `schedule`?"),
    ("histroy 5", None, "Did you mean `history`?"),
    ('"0 2 * * *"', None, "Start with a sub-command"),
    (
        "schedule 0 2 * * *",
        "schedule",
        'Put the cron expression in double quotes, like `/backfill schedule "0 2 * * *"`',
    ),
    ('schedule "0 2 * * *', "schedule", "never closed"),
    ("schedule “0 2 * * *", "schedule", "never closed"),
    ('schedule ""', "schedule", "The cron expression is empty"),
    ('schedule "   "', "schedule", "The cron expression is empty"),
    ('schedule "' + "1 " * 150 + '"', "schedule", "too long"),
    ('schedule "0 2 * * *" "0 3 * * *"', "schedule", "one cron expression"),
    ('schedule cron="0 2 * * *" "0 3 * * *"', "schedule", "one cron expression"),
    ("schedule days=3", "schedule", "needs a cron expression in quotes"),
    ("schedule nightly", "schedule", "Unexpected `nightly`"),
    ('schedule "0 2 * * *" nightly', "schedule", "Unexpected `nightly`"),
    (
        'schedule "0 2 * * *" days=0',
        "schedule",
        "`days` must be a whole number of days from 1 to 365; got `0`",
    ),
    ('schedule "0 2 * * *" days=366', "schedule", "got `366`"),
    ('schedule "0 2 * * *" days=1.5', "schedule", "got `1.5`"),
    ('schedule "0 2 * * *" days=-3', "schedule", "got `-3`"),
    ('schedule "0 2 * * *" days=+3', "schedule", "got `+3`"),
    ('schedule "0 2 * * *" days=٣', "schedule", "whole number"),
    ('schedule "0 2 * * *" days=' + "9" * 5000, "schedule", "whole number"),
    ('schedule "0 2 * * *" days=', "schedule", "got nothing"),
    ('schedule "0 2 * * *" days= tz=UTC', "schedule", "got nothing"),
    ('schedule "0 2 * * *" days=3 days=4', "schedule", "`days` is given twice; give it once"),
    ('schedule "0 2 * * *" day=3 Days=4', "schedule", "(as `day` and `Days`)"),
    (
        'schedule "0 2 * * *" color=blue',
        "schedule",
        "`color` is not an option of `/backfill schedule`",
    ),
    ('schedule "0 2 * * *" tz=', "schedule", "`tz` must be a time zone name"),
    ('schedule "0 2 * * *" tz="Europe Paris"', "schedule", "`tz` must be a time zone name"),
    ('schedule "0 2 * * *" channels=', "schedule", "`channels` needs at least one channel"),
    ('schedule "0 2 * * *" channels=,,', "schedule", "`channels` needs at least one channel"),
    ('schedule "0 2 * * *" channels=#a,all', "schedule", "cannot be mixed"),
    ('schedule "0 2 * * *" channels=<@U0123ABCD|bob>', "schedule", "is not a channel"),
    ('schedule "0 2 * * *" channels=#a#b', "schedule", "is not a channel"),
    ("run 3", "run", "Did you mean `days=3`?"),
    ("run now", "run", "Unexpected `now`"),
    ('run "0 2 * * *"', "run", "Unexpected"),
    ("run tz=UTC", "run", "`tz` is not an option of `/backfill run`"),
    ("run days=abc", "run", "got `abc`"),
    ("run days=3 days=3", "run", "given twice"),
    ("status now", "status", "`/backfill status` takes no arguments; got `now`"),
    ("list all", "list", "takes no arguments"),
    ("pause 5", "pause", "takes no arguments"),
    ("resume x", "resume", "takes no arguments"),
    ("delete --force", "delete", "takes no arguments"),
    ("cancel 12", "cancel", "takes no arguments"),
    ("history 0", "history", "from 1 to 100; got `0`"),
    ("history 101", "history", "got `101`"),
    ("history ten", "history", "got `ten`"),
    ("history 5 6", "history", "takes one number at most"),
    ("help me please", "help", "takes no arguments or one sub-command"),
    ("purge now", "purge", "`/backfill purge` takes no arguments; got `now`"),
    ("purge --yes", "purge", "takes no arguments"),
    ("search", "search", "Give some words to search for, like"),
    ("search    ", "search", "Give some words to search for"),
    ("search in:#eng", "search", "Give some words to search for, not only filters"),
    ("search from:<@U0123ABCD> after:2026-01-01", "search", "not only filters"),
    ("search x after:2024-02-30", "search", "`after:` needs a real day as YYYY-MM-DD"),
    ("search x before:2026-13-01", "search", "got `2026-13-01`"),
    ("search x after:yesterday", "search", "got `yesterday`"),
    ("search x after:", "search", "got nothing"),
    ("search x before:20260301", "search", "`before:` needs a real day"),
    ("search x after:2026-03-01 after:2026-03-02", "search", "`after:` is given twice"),
    (
        "search x after:2026-03-05 before:2026-03-01",
        "search",
        "`after:` must be an earlier day than `before:`",
    ),
    ("search x after:2026-03-01 before:2026-03-01", "search", "No day is both on or after"),
    ("search x in:", "search", "`in:` needs a channel, like `in:#general`"),
    ("search x in:,", "search", "`in:` needs a channel"),
    ("search x in:<@U0123ABCD>", "search", "is not a channel"),
    ("search x in:#a#b", "search", "is not a channel"),
    ("search x in:all", "search", "leave `in:` out"),
    ("search x from:", "search", "`from:` needs a person, like `from:@alice`"),
    ("search x from:@bob", "search", "`@bob` is not a person Slack knows"),
    ("search x from:<#C0123ABCD|eng>", "search", "is not a person"),
    ("search x from:bob", "search", "`from:` takes a mention"),
    ("search " + "w" * 501, "search", "too long (501 characters; at most 500)"),
    ("search " + "word " * 120, "search", "at most 500"),
]


@pytest.mark.parametrize(("text", "sub", "words"), REFUSED)
def test_parse_command_refuses_with_a_precise_message(
    text: str, sub: str | None, words: str
) -> None:
    result = parse_command(text)
    assert isinstance(result, ParseError), result
    assert words in result.message
    assert result.usage_line == USAGE_BY_COMMAND[sub or "help"]
    assert result.subcommand == sub
    assert len(result.message) <= 400


def test_usage_lines_agree_with_the_help_text() -> None:
    help_forms = " ".join(syntax for syntax, _ in USAGE_LINES)
    for sub, line in USAGE_BY_COMMAND.items():
        if sub not in ("pause", "resume", "delete"):
            assert line in help_forms, line


def test_parse_command_echoes_no_slack_markup_as_code_breakers() -> None:
    result = parse_command("frob`nicate")
    assert isinstance(result, ParseError)
    assert result.message.count("`") % 2 == 0


def test_parse_command_accepts_non_strings() -> None:
    assert parse_command(None) == Help()
    assert parse_command(42) == Help()  # type: ignore[arg-type]


words = st.sampled_from(
    [
        "schedule",
        "run",
        "history",
        "help",
        "status",
        "days=",
        "days",
        "=",
        "3",
        "0",
        "400",
        "channels=",
        "#a",
        "<#C0123ABCD|x>",
        ",",
        "tz=",
        "UTC",
        '"',
        "“",
        "”",
        "'",
        "0 2 * * *",
        "all",
        "cron=",
        " ",
        "\u00a0",
        "search",
        "purge",
        "in:",
        "in:#eng",
        "from:",
        "from:<@U0123ABCD|b>",
        "after:",
        "after:2026-03-01",
        "before:2026-03-01",
        "before:2026-02-30",
        "ERR:12",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_parse_command_never_raises_on_any_text(text: str) -> None:
    result = parse_command(text)
    if isinstance(result, ParseError):
        assert result.message.strip() and result.usage_line.startswith("/backfill")
    else:
        assert type(result).__module__ == "handlers.grammar"


@settings(max_examples=1000, deadline=None)
@given(st.lists(words | st.text(max_size=5), max_size=12).map(" ".join))
def test_parse_command_never_raises_on_near_misses(text: str) -> None:
    result = parse_command(text)
    if isinstance(result, ParseError):
        assert result.message.strip() and result.usage_line.startswith("/backfill")
    elif isinstance(result, (SaveSchedule, StartRun)):
        assert 1 <= result.days <= 365
        assert all(i and i == i.strip() for i in result.channel_ids + result.channel_names)
        if isinstance(result, SaveSchedule):
            assert result.cron and result.cron == " ".join(result.cron.split())
    elif isinstance(result, History):
        assert 1 <= result.n <= 100
    elif isinstance(result, Search):
        assert result.words and result.words == " ".join(result.words.split())
        assert len(result.words) <= 500
        assert not (result.after and result.before and result.after >= result.before)
        assert all(i and i == i.strip() for i in result.channel_ids + result.channel_names)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["deploy", "ERR:12", "in:#eng", "from:<@U0123ABCD>", "after:2026-03-01"])
        | st.text(max_size=8),
        max_size=10,
    ).map(lambda ws: "search " + " ".join(ws))
)
def test_parse_search_never_raises_and_keeps_the_words_in_order(text: str) -> None:
    result = parse_command(text)
    if isinstance(result, Search):
        pieces = [w for w in result.words.split() if w in ("deploy", "ERR:12")]
        typed = [w for w in text.split() if w in ("deploy", "ERR:12")]
        assert pieces == typed
    else:
        assert isinstance(result, ParseError) and result.subcommand == "search"
        assert len(result.message) <= 400


def test_search_keeps_channel_labels_for_display_only() -> None:
    parsed = parse_command("search x in:<#C0123ABCD|general> in:<#C0456EFGH>")
    assert isinstance(parsed, Search)
    assert parsed.channel_labels == (("C0123ABCD", "general"),)
    assert parsed == Search(words="x", channel_ids=("C0123ABCD", "C0456EFGH"))


def test_search_refuses_more_channels_than_the_cap() -> None:
    from blocks.limits import MAX_CHANNELS

    many = ",".join(f"C0MADE{i:04d}" for i in range(MAX_CHANNELS + 1))
    parsed = parse_command(f"search x in:{many}")
    assert isinstance(parsed, ParseError) and f"at most {MAX_CHANNELS}" in parsed.message


def test_grammar_channel_mentions_keep_their_names_for_display_only() -> None:
    parsed = parse_command("run channels=<#C0123ABCD|general>,<#C0456EFGH>,#eng")
    assert isinstance(parsed, StartRun)
    assert parsed.channel_labels == (("C0123ABCD", "general"),)
    assert parsed.channel_ids == ("C0123ABCD", "C0456EFGH") and parsed.channel_names == ("eng",)
    assert parsed == StartRun(channel_ids=("C0123ABCD", "C0456EFGH"), channel_names=("eng",))


def test_grammar_refuses_more_channels_than_the_cap_naming_it() -> None:
    """A 1,000-channel command is refused by the parser, before any Slack call."""
    from blocks.limits import MAX_CHANNELS

    ids_ = ",".join(f"C0MADE{i:04d}" for i in range(1000))
    for text in (f"run days=1 channels={ids_}", f'schedule "0 2 * * *" channels={ids_}'):
        parsed = parse_command(text)
        assert isinstance(parsed, ParseError), text[:40]
        assert "Too many channels (1000)" in parsed.message
        assert f"at most {MAX_CHANNELS}" in parsed.message
    at_cap = ",".join(f"C0MADE{i:04d}" for i in range(MAX_CHANNELS))
    assert isinstance(parse_command(f"run channels={at_cap}"), StartRun)
