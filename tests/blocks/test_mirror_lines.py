"""The live mirror's state in App Home and `/backfill status` (issue 13, point 5): on or off,
events applied today, the newest, the backlog; within Slack's limits, escaped, golden."""

from __future__ import annotations

import json
from datetime import timedelta

from blocks.home import home_view
from blocks.replies import status_reply
from db.records import MirrorStatus
from tests.blocks.samples import NOW, RUNNING, SCHEDULE, SUCCESS, TOTALS, VIEWER_TZ
from tests.blocks.slack_limits import assert_golden, check_message, check_view

CAUGHT_UP = MirrorStatus(applied_today=1234, last_event_at=NOW - timedelta(minutes=2))
BEHIND = MirrorStatus(
    backlog=57,
    oldest_waiting_at=NOW - timedelta(seconds=95),
    applied_today=10**9,
    last_event_at=NOW - timedelta(seconds=100),
)
OFF = MirrorStatus(live=False)


def test_home_shows_the_mirror_golden() -> None:
    view = home_view(
        SCHEDULE, None, None, [SUCCESS], TOTALS, is_admin=True, viewer_tz=VIEWER_TZ, now=NOW,
        mirror=CAUGHT_UP,
    )  # fmt: skip
    check_view(view)
    assert_golden("home_mirror", view)
    text = json.dumps(view, ensure_ascii=False)
    assert "*Live mirror:* on · 1,234 events applied today" in text and "up to date" in text


def test_status_shows_how_far_behind_the_mirror_is() -> None:
    reply = status_reply(RUNNING, None, [SUCCESS], viewer_tz=VIEWER_TZ, now=NOW, mirror=BEHIND)
    check_message(reply.blocks, reply.text)
    assert "57 events waiting, 1 min 35 s behind" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "Live mirror: on · 1,000,000,000 events applied today" in reply.text
    assert ":satellite_antenna:" not in reply.text  # the fallback text is plain


def test_the_mirror_switched_off_says_so_and_no_mirror_shows_nothing() -> None:
    off = status_reply(None, None, [], viewer_tz="UTC", now=NOW, mirror=OFF)
    assert "off (LIVE_SYNC=false)" in off.text
    assert "Live mirror" not in status_reply(None, None, [], viewer_tz="UTC", now=NOW).text
    view = home_view(is_admin=False, now=NOW, mirror=OFF)
    check_view(view)
    assert "the copy changes only when a run reads Slack" in json.dumps(view)
