"""The shared text helpers: exact renderings, and properties that keep every text within its limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.progress import eta_text, progress_bar
from blocks.text import (
    channel_label,
    clip_mrkdwn,
    code,
    escape_mrkdwn,
    format_count,
    join_limited,
    mrkdwn_text,
    pack_lines,
    plain_text,
    plural,
    truncate,
    user_mention,
)
from blocks.times import format_duration, format_time, relative, zone

NOW = datetime(2026, 3, 3, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "unknown"),
        (float("nan"), "unknown"),
        (-5, "0 s"),
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
        (86400, "1 d"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("done", "total", "bar"),
    [
        (0, 0, "░" * 20 + " 0%"),
        (5, 20, "█" * 5 + "░" * 15 + " 25%"),
        (40, 40, "█" * 20 + " 100%"),
        (99, 10, "█" * 20 + " 100%"),
        (-3, 10, "░" * 20 + " 0%"),
        (None, None, "░" * 20 + " 0%"),
    ],
)
def test_progress_bar(done: int | None, total: int | None, bar: str) -> None:
    assert progress_bar(done, total) == bar


def test_counts_and_plurals() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_count(None) == "0"
    assert plural(1, "message") == "1 message"
    assert plural(2000, "channel") == "2,000 channels"
    assert plural(0, "reply", "replies") == "0 replies"


def test_times_in_the_viewers_zone() -> None:
    assert format_time(NOW, "Europe/Paris") == "Tue 3 Mar, 15:05 CET"
    assert format_time(NOW, "America/New_York", with_year=True) == "Tue 3 Mar 2026, 09:05 EST"
    assert format_time(NOW.replace(tzinfo=None), "UTC") == "Tue 3 Mar, 14:05 UTC"
    assert format_time(NOW, "No/Such_Zone") == "Tue 3 Mar, 14:05 UTC"
    assert format_time(None, "UTC") == "never"
    assert zone("../../etc/passwd") == UTC
    assert relative(NOW + timedelta(hours=3, minutes=10), NOW) == "in 3 h 10 min"
    assert relative(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative(NOW, NOW) == "now"
    assert eta_text(None, NOW) == "estimating…"
    assert eta_text(300, NOW, "Europe/Paris") == "about 5 min (around 15:10 CET)"


def test_escaping_and_mentions() -> None:
    assert escape_mrkdwn("<!channel> & co") == "&lt;!channel&gt; &amp; co"
    assert user_mention("U0ADMIN0001") == "<@U0ADMIN0001>"
    assert user_mention("<!here>") == "&lt;!here&gt;"
    assert user_mention(None) == "someone"
    assert channel_label("C0123ABCD", "eng") == "#eng"
    assert channel_label("C0123ABCD", None) == "<#C0123ABCD>"
    assert channel_label("<bad>", None) == "&lt;bad&gt;"
    assert code("a`b") == "`aˋb`"


def test_join_limited_says_how_many_are_left() -> None:
    items = [f"#c{i}" for i in range(100)]
    text = join_limited(items, max_chars=40)
    assert text.endswith("more") and len(text) <= 40
    assert join_limited(items[:3], max_chars=100) == "#c0, #c1, #c2"
    assert join_limited(items, max_chars=1000, max_items=2) == "#c0, #c1 and 98 more"
    assert join_limited(["x" * 50], max_chars=10) == "and 1 more"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=400))
def test_text_cutters_respect_their_limit(text: str, limit: int) -> None:
    assert len(truncate(text, limit)) <= limit
    cut = mrkdwn_text(text, limit)
    assert len(cut) <= limit
    assert "<" not in cut and ">" not in cut
    if limit:
        assert 1 <= len(plain_text(text, limit)) <= limit


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=60), max_size=80),
    st.integers(min_value=10, max_value=500),
)
def test_join_limited_and_pack_lines_respect_their_limit(items: list[str], limit: int) -> None:
    assert len(join_limited(items, max_chars=limit)) <= limit
    for chunk in pack_lines(items, max_chars=limit):
        assert len(chunk) <= limit


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab<>&;#@`\n *_~", max_size=500), st.integers(min_value=5, max_value=300))
def test_clip_mrkdwn_never_leaves_half_an_entity_or_an_open_code_block(
    text: str, limit: int
) -> None:
    rendered = escape_mrkdwn(text).replace("&lt;", "<#C1>", 3)
    clipped = clip_mrkdwn(rendered, limit)
    assert len(clipped) <= limit
    if clipped != rendered:
        assert clipped.count("```") % 2 == 0 or len(clipped) == limit
        tail = clipped[clipped.rfind("&") :] if "&" in clipped else ""
        assert not tail or ";" in tail
