"""Ephemeral replies: goldens for the common ones, limits for every one, huge histories."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from blocks import ids
from blocks.help import USAGE_BY_COMMAND
from blocks.models import ChannelRef
from blocks.replies import (
    Reply,
    admin_only_reply,
    cancel_not_allowed_reply,
    cancel_requested_reply,
    error_reply,
    help_reply,
    history_reply,
    invalid_schedule_reply,
    list_reply,
    members_cannot_run_reply,
    no_schedule_reply,
    not_installed_reply,
    nothing_to_cancel_reply,
    parse_error_reply,
    run_in_progress_reply,
    run_started_reply,
    schedule_deleted_reply,
    schedule_paused_reply,
    schedule_resumed_reply,
    schedule_saved_reply,
    status_reply,
    unknown_channels_reply,
    wrong_workspace_reply,
)
from tests.blocks.samples import (
    FAILED,
    LONG_ERROR,
    NOW,
    PAUSED_ALL,
    PROGRESS,
    RUNNING,
    SCHEDULE,
    SUCCESS,
    VIEWER_TZ,
    huge_schedule,
    many_channels,
    many_runs,
)
from tests.blocks.slack_limits import assert_golden, check_message


def check(reply: Reply) -> Reply:
    assert isinstance(reply, Reply)
    check_message(reply.blocks, reply.text)
    kwargs = reply.as_kwargs()
    assert kwargs["response_type"] == "ephemeral" and kwargs["blocks"] == reply.blocks
    return reply


def test_status_reply_golden() -> None:
    reply = check(
        status_reply(
            RUNNING,
            PROGRESS,
            [RUNNING, SUCCESS, FAILED],
            viewer_tz=VIEWER_TZ,
            now=NOW,
            can_cancel=True,
        )
    )
    assert_golden("reply_status", reply.blocks)
    text = json.dumps(reply.blocks, ensure_ascii=False)
    assert "██████░░░░░░░░░░░░░░ 30%" in text and ids.REPLY_CANCEL_RUN in text
    assert text.count("Run #12") == 1  # the running run is not repeated among the last runs
    assert "Run #12 in progress" in reply.text


def test_status_reply_idle_and_without_cancel() -> None:
    idle = check(status_reply(None, None, [], viewer_tz="UTC", now=NOW))
    assert "No run in progress" in idle.text
    member = check(
        status_reply(RUNNING, None, many_runs(200), viewer_tz="UTC", now=NOW, can_cancel=False)
    )
    assert ids.REPLY_CANCEL_RUN not in json.dumps(member.blocks)


def test_list_reply_golden() -> None:
    reply = check(list_reply(SCHEDULE, viewer_tz=VIEWER_TZ, now=NOW))
    assert_golden("reply_list", reply.blocks)
    assert "At 02:00 (0 2 * * *" in reply.text and "Wed 4 Mar 2026, 02:00 CET" in reply.text
    assert "in 10 h 55 min" in json.dumps(reply.blocks)
    assert "There is no schedule yet" in check(list_reply(None, viewer_tz="UTC", now=NOW)).text
    assert "none while paused" in json.dumps(
        check(list_reply(PAUSED_ALL, viewer_tz="UTC", now=NOW)).blocks
    )
    check(list_reply(huge_schedule(2000), viewer_tz="UTC", now=NOW, is_admin=False))


def test_history_reply_golden_and_huge() -> None:
    reply = check(history_reply([SUCCESS, FAILED], 10, viewer_tz=VIEWER_TZ, now=NOW))
    assert_golden("reply_history", reply.blocks)
    big = check(history_reply(many_runs(500), 100, viewer_tz=VIEWER_TZ, now=NOW))
    text = json.dumps(big.blocks)
    assert "Last 100 runs" in text
    assert check(history_reply([], 10, viewer_tz="UTC", now=NOW)).text == "No runs yet."
    assert "Last 3 runs" in check(history_reply(many_runs(50), 3, viewer_tz="UTC", now=NOW)).text


def test_parse_error_reply_golden() -> None:
    reply = check(
        parse_error_reply(
            "`days` must be a whole number of days from 1 to 365; got `abc`.",
            USAGE_BY_COMMAND["run"],
        )
    )
    assert_golden("reply_parse_error", reply.blocks)
    assert "Accepted: /backfill run [days=N] [channels=#a,#b]" in reply.text
    hostile = check(parse_error_reply("<!channel> & <@U123> " + LONG_ERROR, "`" * 5000))
    assert "<!channel>" not in json.dumps(hostile.blocks)


def test_refusals_and_confirmations_fit() -> None:
    replies = [
        admin_only_reply(),
        admin_only_reply("x" * 10_000),
        members_cannot_run_reply(),
        run_in_progress_reply(RUNNING, viewer_tz=VIEWER_TZ, now=NOW),
        run_in_progress_reply(replace(RUNNING, triggered_by=None), viewer_tz="UTC"),
        cancel_not_allowed_reply(RUNNING),
        no_schedule_reply(),
        no_schedule_reply(is_admin=False),
        nothing_to_cancel_reply(),
        wrong_workspace_reply(),
        not_installed_reply(),
        error_reply("bad"),
        error_reply(LONG_ERROR, USAGE_BY_COMMAND["schedule"]),
        invalid_schedule_reply(
            "`61 2 * * *` is not a valid cron expression: minute 61 is out of range."
        ),
        unknown_channels_reply(["nope", "gone"], USAGE_BY_COMMAND["run"]),
        unknown_channels_reply([f"c{i}" * 40 for i in range(500)], USAGE_BY_COMMAND["run"]),
        schedule_saved_reply(SCHEDULE, created=True, viewer_tz=VIEWER_TZ, now=NOW),
        schedule_saved_reply(huge_schedule(900), created=False, viewer_tz="UTC", now=NOW),
        schedule_paused_reply(),
        schedule_paused_reply(already=True),
        schedule_resumed_reply(SCHEDULE, viewer_tz=VIEWER_TZ, now=NOW),
        schedule_deleted_reply(),
        run_started_reply(12, days=7),
        run_started_reply(13, days=365, channels=many_channels(700)),
        run_started_reply(14, days=1, channels=[ChannelRef("C0000GENERAL", None)]),
        cancel_requested_reply(12),
        help_reply(),
        help_reply("schedule"),
    ]
    for reply in replies:
        check(reply)


def test_run_in_progress_reply_names_the_run_and_who_started_it() -> None:
    reply = run_in_progress_reply(RUNNING, viewer_tz=VIEWER_TZ, now=NOW)
    assert reply.text == (
        "A run is already in progress: run #12 started by <@U0MEMBER001> at Tue 3 Mar, 15:00 CET."
    )
    assert_golden("reply_run_in_progress", reply.blocks)


def test_admin_only_reply_text() -> None:
    assert admin_only_reply().text == "Only workspace admins can change the schedule."


@pytest.mark.parametrize("topic", [None, "run", "unknown"])
def test_help_reply_keeps_usage(topic: str | None) -> None:
    reply = check(help_reply(topic))
    assert "/backfill schedule" in reply.text
