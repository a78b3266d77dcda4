"""The app serves the workspace its bot token belongs to: requests correctly signed but for another
`team_id` (slash command, event, button, view submission) are refused, commands with a clear
message, and change nothing in the database."""

from __future__ import annotations

from blocks import ids
from tests.scenarios.harness import OTHER_TEAM, Scenario
from tests.scenarios.test_scenario_home import run_values, schedule_values

WRONG_WORKSPACE = "This app serves another Slack workspace"


async def test_requests_for_another_workspace_are_refused_and_change_nothing(
    scenario: Scenario,
) -> None:
    s = scenario
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    home = await s.open_home(s.admin)
    seen = await s.command("schedule", s.admin)
    [schedule_modal] = seen.opened
    seen = await s.command("run", s.admin)
    [run_modal] = seen.opened
    before = await s.snapshot()

    for text in (
        'schedule "5 5 * * *"',
        "schedule",
        "run",
        "run days=2",
        "pause",
        "delete",
        "cancel",
        "status",
        "help",
    ):
        seen = await s.command(text, s.admin, team_id=OTHER_TEAM)
        assert seen.status == 200
        assert seen.ack["response_type"] == "ephemeral"
        assert WRONG_WORKSPACE in seen.ack_text, text
        assert "Nothing was changed" in seen.ack_text
        assert seen.nothing_reached_slack(), text

    publishes = len(s.fake.calls_of("views.publish"))
    seen = await s.home_opened(s.admin, team_id=OTHER_TEAM)
    assert seen.status == 200 and not seen.published
    assert len(s.fake.calls_of("views.publish")) == publishes

    for action_id in (
        ids.HOME_SCHEDULE_PAUSE,
        ids.HOME_SCHEDULE_DELETE,
        ids.HOME_RUN_NOW,
        ids.HOME_SCHEDULE_EDIT,
        ids.HOME_REFRESH,
    ):
        seen = await s.click(s.admin, action_id, surface=home, team_id=OTHER_TEAM)
        assert seen.status == 200 and seen.nothing_reached_slack(), action_id
    seen = await s.click_retry(s.admin, 1, team_id=OTHER_TEAM)
    assert seen.status == 200 and seen.nothing_reached_slack()

    seen = await s.submit(
        s.admin, schedule_modal, schedule_values(cron="* * * * *"), team_id=OTHER_TEAM
    )
    assert seen.status == 200 and seen.nothing_reached_slack()
    seen = await s.submit(s.admin, run_modal, run_values(), team_id=OTHER_TEAM)
    assert seen.status == 200 and seen.nothing_reached_slack()
    assert await s.snapshot() == before

    # The same requests for the right workspace still work.
    seen = await s.command("pause", s.admin)
    assert "Schedule paused" in seen.reply_text()


async def test_request_from_another_team_carrying_a_view_of_ours_is_refused(
    scenario: Scenario,
) -> None:
    """`team.id` says another workspace while the view inside names ours (Bolt's team id prefers
    the view's `app_installed_team_id`): still refused, nothing changes."""
    s = scenario
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    home = await s.open_home(s.admin)
    seen = await s.command("schedule", s.admin)
    [schedule_modal] = seen.opened
    before = await s.snapshot()
    for action_id in (ids.HOME_SCHEDULE_PAUSE, ids.HOME_SCHEDULE_DELETE):
        seen = await s.click(
            s.admin, action_id, surface=home, team_id=OTHER_TEAM, keep_view_team=True
        )
        assert seen.status == 200 and seen.nothing_reached_slack(), action_id
    seen = await s.submit(
        s.admin,
        schedule_modal,
        schedule_values(cron="* * * * *"),
        team_id=OTHER_TEAM,
        keep_view_team=True,
    )
    assert seen.status == 200 and seen.nothing_reached_slack()
    assert await s.snapshot() == before
