"""The noise filter: one table row per rule, plus properties that hold on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.backfill.filter import NOISE_SUBTYPES, keep_message, render_mentions, visible_text

LONG = "the deploy finished fine"  # well over 8 visible characters


def msg(text: str = LONG, **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U0123ABCD",
        "ts": "1716840123.001900",
        "text": text,
        **fields,
    }


SUBTYPE_ROWS = [pytest.param(msg(subtype=s), False, id=f"drop-{s}") for s in sorted(NOISE_SUBTYPES)]

RULE_ROWS = [
    # plain messages and the length threshold (min_text_chars=8)
    pytest.param(msg(), True, id="plain-long-text"),
    pytest.param(msg("ok"), False, id="short-ok"),
    pytest.param(msg(":+1:"), False, id="emoji-only"),
    pytest.param(msg(":+1::skin-tone-2:"), False, id="emoji-with-skin-tone"),
    pytest.param(msg("<@U1> :wave:"), False, id="mention-and-emoji"),
    pytest.param(msg("<@U123ABC|alice> <!here> :tada: :party_parrot:"), False, id="markup-only"),
    pytest.param(msg("abcdefgh"), True, id="exactly-min-chars"),
    pytest.param(msg("abcdefg"), False, id="one-below-min-chars"),
    pytest.param(msg("a b c d e f g h"), True, id="whitespace-not-counted-8-letters"),
    pytest.param(msg("a b c\td\ne f g"), False, id="whitespace-not-counted-7-letters"),
    pytest.param(msg("<@W0GRID01> thanks!"), False, id="grid-mention-7-chars"),
    pytest.param(msg("<@U1> thanks a lot"), True, id="mention-plus-enough-text"),
    pytest.param(msg("部署已经完成了吗"), True, id="cjk-8-chars"),
    pytest.param(msg("部署完成了吗"), False, id="cjk-6-chars"),
    pytest.param(msg("héllo wörld"), True, id="accented-10-chars"),
    pytest.param(msg(""), False, id="empty-text"),
    pytest.param({"type": "message", "ts": "1.000001"}, False, id="no-text-field"),
    # bots
    pytest.param(msg(bot_id="B01"), False, id="bot-id"),
    pytest.param(msg(subtype="bot_message", bot_id="B01"), False, id="bot-message-subtype"),
    pytest.param(msg(subtype="bot_message"), False, id="bot-message-without-bot-id"),
    # subtypes that are kept
    pytest.param(
        msg(subtype="thread_broadcast", thread_ts="1716840000.000100"), True, id="thread-broadcast"
    ),
    pytest.param(msg(subtype="file_share", files=[{"id": "F1"}]), True, id="file-share-with-text"),
    pytest.param(
        msg("", subtype="file_share", files=[{"id": "F1"}]), False, id="file-share-without-text"
    ),
    pytest.param(
        msg("edited: now long enough", edited={"user": "U1", "ts": "2.000000"}),
        True,
        id="edited-current-text",
    ),
    pytest.param(msg("ok", edited={"user": "U1", "ts": "2.000000"}), False, id="edited-now-short"),
    pytest.param(msg(thread_ts="1716840000.000100", parent_user_id="U2"), True, id="thread-reply"),
    pytest.param(msg("ok", thread_ts="1716840000.000100"), False, id="thread-reply-short"),
    pytest.param(msg(subtype="me_message"), True, id="me-message"),
    pytest.param(msg(subtype="some_future_subtype"), True, id="unknown-subtype"),
    pytest.param(msg(subtype="channel_convert_to_private"), True, id="unlisted-system-subtype"),
]


@pytest.mark.parametrize(("message", "kept"), SUBTYPE_ROWS + RULE_ROWS)
def test_keep_message_rules(message: dict[str, Any], kept: bool) -> None:
    assert keep_message(message, include_bots=False, min_text_chars=8) is kept


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        pytest.param(msg(bot_id="B01"), True, id="bot-id-long"),
        pytest.param(msg(subtype="bot_message", bot_id="B01"), True, id="bot-message-long"),
        pytest.param(msg("ok", bot_id="B01"), False, id="bot-short-still-noise"),
        pytest.param(msg(subtype="channel_join", bot_id="B01"), False, id="bot-join-still-noise"),
    ],
)
def test_keep_message_include_bots(message: dict[str, Any], kept: bool) -> None:
    assert keep_message(message, include_bots=True, min_text_chars=8) is kept


@pytest.mark.parametrize(
    ("text", "min_chars", "kept"),
    [
        pytest.param("", 0, True, id="zero-keeps-empty"),
        pytest.param("ok", 2, True, id="two-keeps-ok"),
        pytest.param("ok", 3, False, id="three-drops-ok"),
        pytest.param("部署", 2, True, id="cjk-counts-per-character"),
    ],
)
def test_keep_message_threshold(text: str, min_chars: int, kept: bool) -> None:
    assert keep_message(msg(text), include_bots=False, min_text_chars=min_chars) is kept


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("hello world", "helloworld"),
        ("<@U123> hi", "hi"),
        ("<@U123|alice> hi", "hi"),
        ("<@W999ZZ> hi", "hi"),
        ("<!here> <!channel> <!subteam^S1|@ops> go", "go"),
        (":+1::skin-tone-2: yes", "yes"),
        (":don't: :a-b: :c_d:", ""),
        ("\u3000全角スペース\u00a0nbsp", "全角スペースnbsp"),
        ("<#C123|general> link", "<#C123|general>link"),  # channel links are words too
        ("time 10:30", "time10:30"),
    ],
)
def test_visible_text_strips_markup_and_whitespace(text: str, visible: str) -> None:
    assert visible_text(text) == visible


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("hi <@U1>", "hi @Alice"),
        ("hi <@U1|alice.old>", "hi @Alice"),
        ("hi <@U9>", "hi @U9"),
        ("hi <@U9|someone>", "hi @U9"),
        ("<@U1> and <@W2>", "@Alice and @Bob"),
        ("<!here> <#C1|general>", "<!here> <#C1|general>"),
    ],
)
def test_render_mentions(text: str, rendered: str) -> None:
    assert render_mentions(text, {"U1": "Alice", "W2": "Bob"}) == rendered


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["type", "subtype", "text", "bot_id", "user", "ts", "thread_ts", "files"])


@given(
    message=st.dictionaries(_keys | st.text(max_size=8), _json, max_size=8),
    include_bots=st.booleans(),
    min_chars=st.integers(min_value=-5, max_value=50),
)
def test_keep_message_never_raises(
    message: dict[str, Any], include_bots: bool, min_chars: int
) -> None:
    assert keep_message(message, include_bots=include_bots, min_text_chars=min_chars) in (
        True,
        False,
    )


@given(text=st.text())
def test_visible_text_never_raises_and_has_no_whitespace(text: str) -> None:
    visible = visible_text(text)
    assert not any(ch.isspace() for ch in visible)
    assert len(visible) <= len(text)
    assert isinstance(render_mentions(text, {"U1": "x"}), str)


@given(text=st.text(), subtype=st.sampled_from(sorted(NOISE_SUBTYPES)))
def test_noise_subtypes_dropped_whatever_the_text(text: str, subtype: str) -> None:
    assert not keep_message(msg(text, subtype=subtype), include_bots=True, min_text_chars=0)
