"""Search results, the search modal and its submission parser, Home's search button: goldens,
highlighting and escaping, and Slack's limits with ten 5,000-character hostile messages."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks import ids
from blocks.home import home_view
from blocks.modals import ModalContext
from blocks.search import (
    MAX_MORE_VALUE,
    MAX_SEARCH_CHARS,
    RESULTS_PER_PAGE,
    SearchQuery,
    parse_search_submission,
    readable,
    search_button,
    search_modal,
    search_reply,
    search_results,
    search_window,
    snippet,
)
from db.records import MessageRecord, SearchHit
from tests.blocks.samples import NOW, SCHEDULE, TOTALS, VIEWER_TZ
from tests.blocks.slack_limits import assert_golden, check_message, check_view
from tests.support.block_trees import nodes

TS = "1772546700.000100"  # Tue 3 Mar 2026, 14:05 UTC
HOSTILE = (
    "<!channel> <!here|here> <https://evil.example|click> <@U0ADMIN01> <#C0GENERAL|general> "
    "&lt;!channel&gt; *pwn*_x_~y~`code` ```block``` > quote a > b < c & d :skull: "
)
QUERY = SearchQuery(
    words="deploy ERR:12",
    channel_ids=("C0000ENG0001",),
    user_ids=("U0MEMBER001",),
    after=date(2026, 3, 1),
    before=date(2026, 4, 1),
)


def message(
    text: str,
    *,
    channel_id: str = "C0000ENG0001",
    user_id: str = "U0MEMBER001",
    ts: str = TS,
    thread_ts: str | None = None,
) -> MessageRecord:
    return MessageRecord(
        workspace_id="T0000000001",
        channel_id=channel_id,
        channel_name="eng",
        ts=ts,
        thread_ts=thread_ts,
        user_id=user_id,
        user_name="Mia",
        text=text,
    )


def hit(text: str, permalink: str | None = None, **fields: Any) -> SearchHit:
    return SearchHit(message=message(text, **fields), score=1.0, permalink=permalink)


def permalink(channel: str, ts: str) -> str:
    return f"https://acme.slack.com/archives/{channel}/p{ts.replace('.', '')}"


SAMPLE_HITS = [
    hit(
        "The deploy of api-7 failed with ERR:12 again &amp; <@U0ADMIN01> is on it, see "
        "<https://ci.example/run/88|the CI run>",
        permalink("C0000ENG0001", TS),
    ),
    hit(
        "Rolled back: deployment blocked by *ERR:12* in <#C0000OPS0001|ops>",
        permalink("C0000OPS0001", "1772460000.000200") + "?thread_ts=1772459000.000100",
        channel_id="C0000OPS0001",
        user_id="U0ADMIN0001",
        ts="1772460000.000200",
        thread_ts="1772459000.000100",
    ),
    hit("Shipping is paused until Friday", None, ts="1772373600.000300"),
]


def mrkdwn_texts(blocks: Any) -> list[str]:
    return [
        n["text"]
        for n in nodes(blocks)
        if isinstance(n, dict) and n.get("type") == "mrkdwn" and isinstance(n.get("text"), str)
    ]


def action_ids(blocks: Any) -> list[str]:
    return [n["action_id"] for n in nodes(blocks) if isinstance(n, dict) and "action_id" in n]


# --- goldens -------------------------------------------------------------------------------------


def test_search_reply_golden() -> None:
    reply = search_reply(SAMPLE_HITS, QUERY, tz=VIEWER_TZ, page=1, more="page-2-token")
    check_message(reply.blocks, reply.text)
    assert_golden("search_reply", reply.blocks)
    assert reply.text == "3 results for “deploy ERR:12”"
    assert reply.as_kwargs()["response_type"] == "ephemeral"


def test_search_reply_nothing_matched_golden() -> None:
    reply = search_reply([], QUERY, tz=VIEWER_TZ)
    check_message(reply.blocks, reply.text)
    assert_golden("search_reply_empty", reply.blocks)
    shown = json.dumps(reply.blocks)
    assert "Nothing matched" in shown and "in:#channel" in shown and "from:@person" in shown
    assert ids.SEARCH_MORE not in action_ids(reply.blocks)


def test_search_modal_golden() -> None:
    view = search_modal(context=ModalContext(team_id="T0000000001", user_id="U0MEMBER001"))
    check_view(view)
    assert_golden("search_modal", view)
    assert view["callback_id"] == ids.SEARCH_MODAL
    assert [b["block_id"] for b in view["blocks"]] == [
        ids.SEARCH_WORDS_BLOCK,
        ids.SEARCH_CHANNEL_BLOCK,
        ids.SEARCH_AUTHOR_BLOCK,
        ids.SEARCH_AFTER_BLOCK,
        ids.SEARCH_BEFORE_BLOCK,
    ]


def test_search_modal_with_results_golden() -> None:
    view = search_modal(QUERY, hits=SAMPLE_HITS, tz=VIEWER_TZ, page=2, more="page-3-token")
    check_view(view)
    assert_golden("search_modal_results", view)
    assert action_ids(view["blocks"])[-1] == ids.SEARCH_MODAL_MORE
    assert ids.SEARCH_MORE not in action_ids(view["blocks"])
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs[ids.SEARCH_WORDS_BLOCK]["initial_value"] == "deploy ERR:12"
    assert inputs[ids.SEARCH_CHANNEL_BLOCK]["initial_conversation"] == "C0000ENG0001"
    assert inputs[ids.SEARCH_AUTHOR_BLOCK]["initial_user"] == "U0MEMBER001"
    assert inputs[ids.SEARCH_AFTER_BLOCK]["initial_date"] == "2026-03-01"
    assert inputs[ids.SEARCH_BEFORE_BLOCK]["initial_date"] == "2026-04-01"
    assert "*11.*" in json.dumps(view)  # page 2 numbers on from 11


def test_home_with_search_golden() -> None:
    view = home_view(
        SCHEDULE, None, None, [], TOTALS, is_admin=False, viewer_tz=VIEWER_TZ, now=NOW,
        can_search=True,
    )  # fmt: skip
    check_view(view)
    assert_golden("home_member_search", view)
    assert ids.HOME_SEARCH_OPEN in action_ids(view["blocks"])
    assert any(b.get("block_id") == ids.HOME_SEARCH_BLOCK for b in view["blocks"])
    without = home_view(SCHEDULE, is_admin=False, viewer_tz=VIEWER_TZ, now=NOW)
    assert ids.HOME_SEARCH_OPEN not in action_ids(without["blocks"])


def test_search_button() -> None:
    button = search_button().to_dict()
    assert button["action_id"] == ids.HOME_SEARCH_OPEN
    assert button["text"]["text"] == "Search the history"


# --- one result ----------------------------------------------------------------------------------


def result_text(h: SearchHit, words: str = "deploy", tz: str = "UTC") -> str:
    blocks = [b.to_dict() for b in search_results([h], SearchQuery(words), tz=tz)]
    return str(blocks[1]["text"]["text"])


def test_search_result_shows_channel_author_date_in_the_viewers_zone_and_link() -> None:
    text = result_text(hit("deploy done", permalink("C0000ENG0001", TS)), tz="Asia/Tokyo")
    head = text.split("\n")[0]
    assert head.startswith("*1.* <#C0000ENG0001> · <@U0MEMBER001> · Tue 3 Mar 2026, 23:05 JST")
    assert head.endswith("|Open in Slack>")
    assert "<https://acme.slack.com/archives/C0000ENG0001/p1772546700000100|" in head


def test_search_result_without_a_usable_permalink_has_no_link() -> None:
    for link in (
        None,
        "",
        "javascript:alert(1)",
        "http://acme.slack.com/x",
        "https://acme.slack.com/x|click",
        "https://a.example/<!channel>",
        "https://a.example/" + "x" * 1000,
    ):
        assert "<http" not in result_text(hit("deploy", link)), link


def test_search_result_link_ampersands_are_escaped() -> None:
    text = result_text(hit("deploy", "https://a.slack.com/archives/C1/p1?thread_ts=1.2&cid=C1"))
    assert "?thread_ts=1.2&amp;cid=C1|Open in Slack>" in text


def test_search_result_unknown_ids_and_bad_ts_degrade() -> None:
    text = result_text(hit("deploy", channel_id="not-an-id", user_id="<!here>", ts="nan"))
    head = text.split("\n")[0]
    assert "#eng" in head and "Mia" in head and "unknown date" in head
    assert "<!" not in head and "<#" not in head and "<@" not in head


def test_search_result_marks_thread_replies() -> None:
    assert "in a thread" in result_text(hit("deploy", thread_ts="1772459000.000100"))
    assert "in a thread" not in result_text(hit("deploy", thread_ts=TS))


def test_search_results_are_numbered_by_page_and_capped_at_ten() -> None:
    hits = [hit(f"deploy {i}", ts=f"17725467{i:02d}.000100") for i in range(14)]
    blocks = [b.to_dict() for b in search_results(hits, SearchQuery("deploy"), tz="UTC", page=3)]
    numbered = [t for t in mrkdwn_texts(blocks) if re.match(r"\*\d+\.\*", t)]
    assert len(numbered) == RESULTS_PER_PAGE
    assert numbered[0].startswith("*21.*") and numbered[-1].startswith("*30.*")


def test_more_button_carries_the_callers_value_or_is_absent() -> None:
    value = "q" * MAX_MORE_VALUE
    reply = search_reply(SAMPLE_HITS, QUERY, tz="UTC", more=value)
    [button] = [n for n in nodes(reply.blocks) if isinstance(n, dict) and n.get("type") == "button"]
    assert button["action_id"] == ids.SEARCH_MORE and button["value"] == value
    assert any(b.get("block_id") == ids.SEARCH_MORE_BLOCK for b in reply.blocks)
    for absent in (None, ""):
        assert ids.SEARCH_MORE not in action_ids(
            search_reply(SAMPLE_HITS, QUERY, tz="UTC", more=absent).blocks
        )
    too_long = search_reply(SAMPLE_HITS, QUERY, tz="UTC", more=value + "q")
    check_message(too_long.blocks, too_long.text)
    assert ids.SEARCH_MORE not in action_ids(too_long.blocks)
    assert "narrow the search" in json.dumps(too_long.blocks)


def test_header_says_what_was_searched_escaped() -> None:
    query = SearchQuery(
        words="<!channel> *x* a&b",
        channel_ids=("C0000ENG0001", "not an id <!here>"),
        user_ids=("U0MEMBER001", "<@U0ADMIN01|x>"),
        after=date(2026, 3, 1),
    )
    for blocks in (
        search_reply(SAMPLE_HITS, query, tz="UTC").blocks,
        search_reply([], query, tz="UTC").blocks,
    ):
        head = blocks[0]["text"]["text"]
        assert "&lt;!channel&gt;" in head and "a&amp;b" in head and "*x*" not in head
        assert "<#C0000ENG0001>" in head and "<@U0MEMBER001>" in head
        assert "on or after 2026-03-01" in head
        assert "<!" not in head and "<@U0ADMIN01" not in head
    reply = search_reply(SAMPLE_HITS, query, tz="UTC")
    assert "<!" not in reply.text and "&lt;!channel&gt;" in reply.text


# --- snippets ------------------------------------------------------------------------------------


def test_readable_turns_slack_markup_into_words() -> None:
    text = (
        "hi <@U1|ann> in <#C1|eng> <#C2> <!here> <!subteam^S1|@devs> "
        "<https://x.example|the run> <mailto:a@b.c> a &lt; b &amp;&amp; c &gt;\n\nnext"
    )
    assert readable(text) == (
        "hi @ann in #eng #C2 @here @devs the run mailto:a@b.c a < b && c > next"
    )


def test_snippet_highlights_whole_words_case_insensitively() -> None:
    out = snippet("The Deployment failed; redeploy later. ERR:12!", ["deploy", "err:12"])
    assert out == " The *Deployment* failed; redeploy later. *ERR:12*!"


def test_snippet_cuts_around_the_first_match_with_ellipses() -> None:
    text = "filler " * 200 + "the needle is here " + "tail " * 200
    out = snippet(text, ["needle"])
    assert out.startswith(" …") and out.endswith("…")
    assert "*needle*" in out
    assert out.index("*needle*") < 120
    assert len(out) <= 700


def test_snippet_without_a_match_shows_the_start() -> None:
    out = snippet("about shipping " * 100, ["deploy"])
    assert out.startswith(" about shipping") and out.endswith("…") and "*" not in out


def test_snippet_makes_message_formatting_and_markup_inert() -> None:
    out = snippet(HOSTILE * 3, ["pwn", "code", "quote"])
    stripped = re.sub(r"\*[^*\s][^*]*\*", "", out)  # our bold spans
    assert "*" not in stripped
    for char in "_~`<>":
        assert char not in out, char
    assert "&lt;!channel&gt;" not in out or "&amp;lt;" not in out
    assert "&lt;" in out and "&amp;" in out


def test_snippet_of_an_empty_message() -> None:
    assert snippet("", ["x"]).strip() and snippet("<@U1>", []).strip()


# --- limits --------------------------------------------------------------------------------------


def hostile_5000(i: int) -> str:
    return ((HOSTILE + "&&&&<<<>>>" * 5 + " deploy ") * 40)[: 5000 - i]


def worst_query() -> SearchQuery:
    return SearchQuery(
        words=("&<>*_~` deploy " * 40)[:MAX_SEARCH_CHARS],
        channel_ids=tuple(f"C{i:010d}" for i in range(100)),
        user_ids=tuple(f"U{i:010d}" for i in range(100)),
        after=date(2026, 1, 1),
        before=date(2026, 12, 31),
    )


def test_ten_hostile_5000_character_messages_fit_a_message_and_a_modal() -> None:
    hits = [
        hit(
            hostile_5000(i),
            "https://acme.slack.com/archives/C0000ENG0001/p" + "1" * 300 + "?a=1&b=2",
            thread_ts="1.0",
        )
        for i in range(12)
    ]
    for tz in ("UTC", "Pacific/Chatham", "Bad/Zone", None):
        reply = search_reply(hits, worst_query(), tz=tz, page=10**9, more="m" * MAX_MORE_VALUE)
        check_message(reply.blocks, reply.text)
        assert len([t for t in mrkdwn_texts(reply.blocks) if "\n>" in t]) == RESULTS_PER_PAGE
        view = search_modal(worst_query(), hits=hits, tz=tz, more="m" * MAX_MORE_VALUE)
        check_view(view)


def test_snippets_of_entity_heavy_messages_still_show_the_match() -> None:
    hits = [hit("&" * 2000 + " deploy " + "<" * 2000) for _ in range(10)]
    reply = search_reply(hits, SearchQuery("deploy"), tz="UTC")
    check_message(reply.blocks, reply.text)
    snippets = [t.split("\n>", 1)[1] for t in mrkdwn_texts(reply.blocks) if "\n>" in t]
    assert len(snippets) == 10
    assert all("*deploy*" in s for s in snippets)


hostile_text = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.sampled_from([*HOSTILE.split(), "deploy", "Deploy", " ", "&", "<", ">", "*", "_"]),
        max_size=80,
    ).map(" ".join),
)
ids_ = st.one_of(st.from_regex(r"[CGU][A-Z0-9]{8}", fullmatch=True), st.text(max_size=20))
hits_strategy = st.builds(
    SearchHit,
    message=st.builds(
        MessageRecord,
        workspace_id=st.just("T1"),
        channel_id=ids_,
        channel_name=st.text(max_size=100),
        ts=st.one_of(st.text(max_size=20), st.floats().map(str), st.just(TS)),
        thread_ts=st.none() | st.just(TS) | st.text(max_size=5),
        user_id=ids_,
        user_name=st.text(max_size=100),
        text=hostile_text | hostile_text.map(lambda t: (t + " ") * 30),
    ),
    score=st.floats(),
    permalink=st.none() | st.text(max_size=50) | st.just(permalink("C1", TS)),
)
OURS = re.compile(r"<#[A-Z0-9]+>|<@[A-Z0-9]+>|<https://[^<>|\s]+\|Open in Slack>")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hits=st.lists(hits_strategy, max_size=12),
    words=st.text(min_size=1, max_size=MAX_SEARCH_CHARS) | hostile_text,
    tz=st.sampled_from(["UTC", "Europe/Paris", "Bad/Zone", ""]),
    page=st.integers(min_value=-3, max_value=10**6),
    more=st.none() | st.text(max_size=2100),
)
def test_any_results_fit_and_write_no_control_sequence_of_their_own(
    hits: list[SearchHit], words: str, tz: str, page: int, more: str | None
) -> None:
    query = SearchQuery(words=words, channel_ids=("C0000ENG0001",), user_ids=("U0MEMBER001",))
    reply = search_reply(hits, query, tz=tz, page=page, more=more)
    check_message(reply.blocks, reply.text)
    check_view(search_modal(query, hits=hits, tz=tz, page=page, more=more))
    for text in [reply.text, *mrkdwn_texts(reply.blocks)]:
        rest = OURS.sub("", text)
        assert "<" not in rest and ">" not in rest.replace("\n>", "\n"), text
    for text in mrkdwn_texts(reply.blocks):
        if "\n>" in text:
            shown = text.split("\n>", 1)[1]
            assert not any(c in shown for c in "_~`<")
            assert shown.count("*") % 2 == 0


# --- the modal's submission ----------------------------------------------------------------------


def state(
    words: str | None = "deploy",
    channel: str | None = None,
    user: str | None = None,
    after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    return {
        ids.SEARCH_WORDS_BLOCK: {
            ids.SEARCH_WORDS_ACTION: {"type": "plain_text_input", "value": words}
        },
        ids.SEARCH_CHANNEL_BLOCK: {
            ids.SEARCH_CHANNEL_ACTION: {
                "type": "conversations_select",
                "selected_conversation": channel,
            }
        },
        ids.SEARCH_AUTHOR_BLOCK: {
            ids.SEARCH_AUTHOR_ACTION: {"type": "users_select", "selected_user": user}
        },
        ids.SEARCH_AFTER_BLOCK: {
            ids.SEARCH_AFTER_ACTION: {"type": "datepicker", "selected_date": after}
        },
        ids.SEARCH_BEFORE_BLOCK: {
            ids.SEARCH_BEFORE_ACTION: {"type": "datepicker", "selected_date": before}
        },
    }


def test_parse_search_submission_reads_every_field() -> None:
    parsed = parse_search_submission(
        state("  deploy   ERR:12 ", "C0000ENG0001", "U0MEMBER001", "2026-03-01", "2026-04-01")
    )
    assert parsed == QUERY
    assert parse_search_submission(state()) == SearchQuery("deploy")


def test_parse_search_submission_errors_name_their_block() -> None:
    assert parse_search_submission(state("   ")) == {
        ids.SEARCH_WORDS_BLOCK: "Give some words to search for."
    }
    assert ids.SEARCH_WORDS_BLOCK in parse_search_submission(state("w" * (MAX_SEARCH_CHARS + 1)))  # type: ignore[operator]
    assert set(parse_search_submission(state(after="2026-03-02", before="2026-03-02"))) == {  # type: ignore[arg-type]
        ids.SEARCH_BEFORE_BLOCK
    }
    assert set(parse_search_submission(state(after="2026-02-30"))) == {ids.SEARCH_AFTER_BLOCK}  # type: ignore[arg-type]


def test_parse_search_submission_ignores_ids_of_the_wrong_shape() -> None:
    parsed = parse_search_submission(state(channel="<!here>", user="C0000ENG0001"))
    assert parsed == SearchQuery("deploy")


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=25), inner, max_size=3)
        ),
        max_leaves=15,
    )
    | st.builds(
        state,
        st.none() | st.text(),
        st.none() | st.text(),
        st.none() | st.text(),
        st.none() | st.text(),
        st.none() | st.text(),
    )
)
def test_parse_search_submission_never_raises(values: Any) -> None:
    result = parse_search_submission(values)
    assert isinstance(result, (SearchQuery, dict))


def test_search_window_is_the_viewers_days_in_utc() -> None:
    start, end = search_window(QUERY, "Europe/Paris")
    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # summer time from 29 March
    assert search_window(SearchQuery("x"), "Bad/Zone") == (None, None)
    assert search_window(SearchQuery("x", after=date(2026, 3, 1)), None)[0] == datetime(
        2026, 3, 1, tzinfo=UTC
    )
