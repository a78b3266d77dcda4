"""The App Home view: golden renderings, who sees which buttons, and Slack's limits on huge data."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from blocks import ids
from blocks.home import home_view
from db.records import Progress, Run, Totals
from tests.blocks.samples import (
    FAILED,
    NOW,
    PAUSED_ALL,
    PROGRESS,
    RUNNING,
    SCHEDULE,
    SUCCESS,
    TOTALS,
    VIEWER_TZ,
    huge_schedule,
    many_runs,
)
from tests.blocks.slack_limits import assert_golden, check_view
from tests.support.block_trees import nodes


def action_ids(view: dict[str, Any]) -> set[str]:
    return {
        node["action_id"]
        for node in nodes(view["blocks"])
        if isinstance(node, dict) and "action_id" in node
    }


def admin_view(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "schedule": SCHEDULE,
        "running": RUNNING,
        "progress": PROGRESS,
        "recent_runs": [SUCCESS, FAILED],
        "totals": TOTALS,
        "is_admin": True,
        "members_can_run": True,
        "viewer_tz": VIEWER_TZ,
        "now": NOW,
    }
    args.update(overrides)
    return home_view(**args)


def test_home_view_admin_golden() -> None:
    view = admin_view()
    check_view(view)
    assert_golden("home_admin_running", view)


def test_home_view_member_golden_is_read_only() -> None:
    view = admin_view(is_admin=False, running=None, progress=None, members_can_run=False)
    check_view(view)
    assert_golden("home_member_idle", view)
    assert action_ids(view) == {ids.HOME_REFRESH}
    assert "You are a workspace admin" not in json.dumps(view)


def test_home_view_admin_without_schedule_golden() -> None:
    view = home_view(None, None, None, [], None, is_admin=True, viewer_tz="UTC", now=NOW)
    check_view(view)
    assert_golden("home_admin_empty", view)
    assert {ids.HOME_SCHEDULE_CREATE, ids.HOME_RUN_NOW} <= action_ids(view)


def test_home_view_admin_buttons_follow_the_schedule_state() -> None:
    active = action_ids(admin_view(running=None, progress=None))
    assert {
        ids.HOME_SCHEDULE_EDIT,
        ids.HOME_SCHEDULE_PAUSE,
        ids.HOME_SCHEDULE_DELETE,
        ids.HOME_RUN_NOW,
    } <= active
    assert ids.HOME_SCHEDULE_RESUME not in active
    paused = admin_view(schedule=PAUSED_ALL, running=None, progress=None)
    check_view(paused)
    assert ids.HOME_SCHEDULE_RESUME in action_ids(paused)
    assert ids.HOME_SCHEDULE_PAUSE not in action_ids(paused)
    assert "Paused" in json.dumps(paused) and "all channels" in json.dumps(paused)


def test_home_view_delete_has_a_confirm_dialog() -> None:
    view = admin_view()
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    delete = next(b for b in buttons if b["action_id"] == ids.HOME_SCHEDULE_DELETE)
    assert delete["confirm"]["confirm"]["text"] == "Delete"
    cancel = next(b for b in buttons if b["action_id"] == ids.HOME_CANCEL_RUN)
    assert cancel["value"] == "12" and "confirm" in cancel


def test_home_view_members_can_run_shows_run_now_to_members() -> None:
    can = admin_view(is_admin=False, running=None, progress=None, members_can_run=True)
    cannot = admin_view(is_admin=False, running=None, progress=None, members_can_run=False)
    assert ids.HOME_RUN_NOW in action_ids(can)
    assert ids.HOME_RUN_NOW not in action_ids(cannot)
    assert "Only workspace admins can start runs" in json.dumps(cannot)


def test_home_view_member_cancels_only_their_own_run() -> None:
    own = admin_view(is_admin=False, viewer_id=RUNNING.triggered_by)
    other = admin_view(is_admin=False, viewer_id="U0SOMEONE01")
    assert ids.HOME_CANCEL_RUN in action_ids(own)
    assert ids.HOME_CANCEL_RUN not in action_ids(other)
    assert ids.HOME_RUN_NOW not in action_ids(own)  # one run at a time


def test_home_view_shows_next_run_in_the_viewers_time_zone() -> None:
    paris = json.dumps(admin_view(viewer_tz="Europe/Paris"))
    tokyo = json.dumps(admin_view(viewer_tz="Asia/Tokyo"))
    assert "Wed 4 Mar 2026, 02:00 CET" in paris
    assert "Wed 4 Mar 2026, 10:00 JST" in tokyo


def test_home_view_progress_bar_and_eta() -> None:
    text = json.dumps(admin_view(), ensure_ascii=False)
    assert "██████░░░░░░░░░░░░░░ 30%" in text
    assert "12 of 40 channels" in text and "about 10 min 10 s" in text
    assert "Now reading #general" in text


def test_home_view_huge_data_stays_within_limits() -> None:
    runs = many_runs(400)
    progress = Progress(
        channels_done=10**9,
        channels_total=3,
        messages_stored=10**12,
        current_channel="x" * 5000,
        calls=10**9,
        rate_limit_waits=10**6,
        eta_s=float("inf"),
        started_at=NOW,
        job_run_id=10**9,
    )
    running = replace(RUNNING, job_run_id=10**9, triggered_by="<script>" * 100)
    view = home_view(
        huge_schedule(800),
        running,
        progress,
        runs,
        Totals(messages_stored=10**15, channels=10**6, last_success_at=NOW),
        is_admin=True,
        viewer_tz="Not/AZone",
        now=NOW,
    )
    check_view(view)
    text = json.dumps(view)
    assert "and 390 older runs" in text
    assert "more" in text  # channel list ends in "and N more"
    assert "<script>" not in text


@pytest.mark.parametrize("is_admin", [True, False])
def test_home_view_handles_odd_runs(is_admin: bool) -> None:
    odd = [
        Run(job_run_id=1, workspace_id="T1", job_type="weird", status="exploded", started_at=NOW),
        Run(
            job_run_id=2,
            workspace_id="T1",
            job_type="manual",
            status="running",
            started_at=NOW.replace(tzinfo=None),
        ),
        Run(
            job_run_id=3,
            workspace_id="T1",
            job_type="manual",
            status="failed",
            started_at=NOW,
            error_message="\n\n`boom`\n" * 2000,
        ),
    ]
    view = home_view(None, None, None, odd, None, is_admin=is_admin, viewer_tz=None, now=None)
    check_view(view)


def test_home_view_keeps_the_legacy_call_working() -> None:
    view = home_view(is_admin=True)
    check_view(view)
    assert "workspace admin" in json.dumps(view["blocks"])


def test_home_view_says_first_when_the_workspace_must_reinstall_the_app() -> None:
    view = home_view(
        None,
        None,
        None,
        [],
        None,
        is_admin=True,
        viewer_tz="UTC",
        now=NOW,
        reinstall="invalid_auth",
    )
    check_view(view)
    assert_golden("home_admin_reinstall", view)
    first = view["blocks"][1]["text"]["text"]
    assert "must be reinstalled" in first and "`invalid_auth`" in first
    hostile = home_view(
        None, None, None, [], None, is_admin=False, now=NOW, reinstall="`<!channel>`" * 500
    )
    check_view(hostile)
    assert "<!channel>" not in json.dumps(hostile)
