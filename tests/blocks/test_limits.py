"""The one module of domain limits and patterns: its checks, and the layers that state its numbers."""

from __future__ import annotations

import pytest

from blocks.limits import (
    DEFAULT_DAYS,
    MAX_DAYS,
    MIN_DAYS,
    REDACTED,
    check_days,
    check_timezone,
    clamp_days,
    is_channel_id,
    is_conversation_id,
    is_typed_channel_id,
    is_user_id,
    looks_like_timezone,
    redact_tokens,
)


def test_check_days_accepts_the_range_only() -> None:
    assert check_days(MIN_DAYS) == MIN_DAYS and check_days(MAX_DAYS) == MAX_DAYS
    for refused in (MIN_DAYS - 1, MAX_DAYS + 1, -5, True, False, "3", 3.0, None):
        assert check_days(refused) is None


def test_clamp_days_brings_any_int_into_the_range() -> None:
    assert clamp_days(0) == MIN_DAYS and clamp_days(10**9) == MAX_DAYS and clamp_days(30) == 30
    assert clamp_days("30") == DEFAULT_DAYS and clamp_days(None) == DEFAULT_DAYS


@pytest.mark.parametrize(
    ("value", "conversation", "channel", "typed"),
    [
        ("C0123ABCD", True, True, True),
        ("G0123ABCD", True, True, True),
        ("D0123ABCD", True, False, False),
        ("CAB", True, True, False),  # too short to be typed as an id
        ("CGENERAL", True, True, False),  # no digit: a channel name in capitals
        ("c0123abcd", False, False, False),
        ("U0123ABCD", False, False, False),
        ("C0123ABCD\n", False, False, False),
        ("", False, False, False),
        (None, False, False, False),
    ],
)
def test_channel_id_shapes(value: object, conversation: bool, channel: bool, typed: bool) -> None:
    assert is_conversation_id(value) is conversation
    assert is_channel_id(value) is channel
    assert is_typed_channel_id(value) is typed


def test_user_id_shape() -> None:
    assert is_user_id("U0123ABCD") and is_user_id("W0123ABCD")
    assert not any(is_user_id(v) for v in ("C0123ABCD", "u0123", "U", "<@U0123>", None))


def test_time_zone_checks() -> None:
    assert looks_like_timezone("Europe/Paris") and looks_like_timezone("Etc/GMT+3")
    assert not looks_like_timezone("Europe Paris") and not looks_like_timezone("x" * 65)
    zone = check_timezone("Europe/Paris")
    assert zone is not None and str(zone) == "Europe/Paris"
    assert check_timezone("UTC") is not None
    for refused in ("europe/paris", "Mars/Olympus", "localtime", "../etc/passwd", ""):
        assert check_timezone(refused) is None


def test_redact_tokens_cuts_every_slack_token_shape() -> None:
    text = "bot xoxb-1-2-abc user xoxp-9 app xapp-1-A-2-zz refresh xoxe.xoxp-1-x ok"
    redacted = redact_tokens(text)
    assert "xox" not in redacted.replace(REDACTED, "") and "xapp" not in redacted
    assert redacted.startswith("bot ") and redacted.endswith(" ok")
