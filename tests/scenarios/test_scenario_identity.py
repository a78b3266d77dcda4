"""Who may act, and on which workspace (issue 10, findings 4 and 7): an admin of another
organisation carrying our `team_id` (a Slack Connect user), enterprise payloads without a
`team_id`, a `team: null` action, guests, deactivated accounts, bots and user ids Slack does not
know are all refused, with a clear message for commands, and change nothing."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from blocks import ids
from fakeslack.outgoing import form_headers, interaction_body, json_headers
from tests.scenarios.harness import OTHER_TEAM, Scenario, Seen
from tests.scenarios.test_scenario_home import schedule_values

FOREIGN_ADMIN = "U0FOREIGNAD"
NOT_A_MEMBER = "cannot act in this workspace"
NO_WORKSPACE = "did not say which workspace"
CHANGING_COMMANDS = (
    'schedule "5 5 * * *" tz=UTC',
    "pause",
    "resume",
    "delete",
    "run days=1",
    "cancel",
)


def add_person(s: Scenario, user_id: str, **changes: Any) -> str:
    """A copy of the primary owner (an admin in every respect) with `changes` applied."""
    admin = s.fake.workspace.users[s.admin]
    s.fake.workspace.add_user({**admin, "id": user_id, "name": user_id.lower(), **changes})
    return user_id


async def schedule_and_home(s: Scenario) -> dict[str, Any]:
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    return await s.open_home(s.admin)


async def assert_refused_everywhere(
    s: Scenario, user: str, home: dict[str, Any], refusal: str
) -> None:
    """Every changing command, Home button and modal submission by `user` changes nothing."""
    before = await s.snapshot()
    for text in CHANGING_COMMANDS:
        seen = await s.command(text, user)
        assert seen.status == 200, text
        assert refusal in seen.reply_text(), (text, seen.reply_text())
        assert "Nothing was changed" in seen.reply_text(), text
        assert await s.snapshot() == before, text
    for action_id in (
        ids.HOME_SCHEDULE_PAUSE,
        ids.HOME_SCHEDULE_DELETE,
        ids.HOME_RUN_NOW,
        ids.HOME_SCHEDULE_EDIT,
    ):
        seen = await refused_click(s, user, action_id, home)
        assert seen.status == 200, action_id
        assert not seen.opened and not seen.published, action_id
        assert await s.snapshot() == before, action_id
    modal = s.fake.modal_stack(s.admin)[-1]
    seen = await s.submit(user, modal, schedule_values(cron="* * * * *"), settle=False)
    assert seen.status == 200
    await s.settle()
    assert await s.snapshot() == before


async def refused_click(s: Scenario, user: str, action_id: str, home: dict[str, Any]) -> Seen:
    """A click expected to be refused: nothing follows its empty acknowledgement, so only wait
    for quiet (the harness would otherwise wait for an answer that never comes)."""
    marks = s._marks()
    seen = await s.click(user, action_id, surface=home, settle=False)
    await s.settle()
    return s._seen_since(marks, seen.status, seen.ack, seen.ack_ms)


async def test_admin_of_another_organisation_with_our_team_id_changes_nothing(
    scenario: Scenario,
) -> None:
    """A Slack Connect admin of another organisation: our `team_id` on the request, theirs in
    `users.info`. Not an admin here, not a member here."""
    s = scenario
    add_person(s, FOREIGN_ADMIN, team_id=OTHER_TEAM)
    home = await schedule_and_home(s)
    await s.command("schedule", s.admin)  # a schedule modal to forge a submission with
    await assert_refused_everywhere(s, FOREIGN_ADMIN, home, NOT_A_MEMBER)
    # Paused by our admin: the foreign admin cannot resume it either.
    await s.command("pause", s.admin)
    paused = await s.snapshot()
    seen = await s.command("resume", FOREIGN_ADMIN)
    assert NOT_A_MEMBER in seen.reply_text()
    assert await s.snapshot() == paused
    # Our own admin still can.
    seen = await s.command("resume", s.admin)
    assert "Schedule resumed" in seen.reply_text()


async def test_grid_user_whose_home_team_lists_ours_is_an_admin_here(scenario: Scenario) -> None:
    """Enterprise Grid: `users.info` names the user's home workspace in `team_id` and every
    workspace of the org they belong to in `enterprise_user.teams`."""
    s = scenario
    user = add_person(
        s,
        "W0GRIDADMIN",
        team_id=OTHER_TEAM,
        enterprise_user={
            "id": "W0GRIDADMIN",
            "enterprise_id": "E0GRID",
            "enterprise_name": "Grid",
            "is_admin": False,
            "is_owner": False,
            "teams": [OTHER_TEAM, s.team_id],
        },
    )
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    seen = await s.command("pause", user)
    assert "Schedule paused" in seen.reply_text()


def enterprise_command_body(s: Scenario, text: str, user: str, *, team_id: str | None) -> str:
    """A slash command from an org-wide install: `enterprise_id`, `is_enterprise_install`, and
    `team_id` only when given."""
    fields = {
        "token": "deprecated",
        "team_domain": "fake",
        "enterprise_id": "E0GRID",
        "enterprise_name": "Grid",
        "channel_id": "C0SCENARIO",
        "channel_name": "general",
        "user_id": user,
        "user_name": "someone",
        "command": "/backfill",
        "text": text,
        "api_app_id": "A0FAKE",
        "is_enterprise_install": "true",
        "response_url": s.fake.new_response_url(user, "C0SCENARIO"),
        "trigger_id": s.fake.new_trigger_id(user),
    }
    if team_id is not None:
        fields["team_id"] = team_id
    return urlencode(fields)


async def test_enterprise_command_without_team_id_is_refused(scenario: Scenario) -> None:
    s = scenario
    await schedule_and_home(s)
    before = await s.snapshot()
    for text in ("pause", "resume", "delete", 'schedule "5 5 * * *" tz=UTC', "run days=1"):
        body = enterprise_command_body(s, text, s.admin, team_id=None)
        seen = await s.post(body, form_headers(body, s.fake.signing_secret))
        assert seen.status == 200, text
        assert NO_WORKSPACE in seen.ack_text and "Nothing was changed" in seen.ack_text, text
        assert seen.nothing_reached_slack(), text
        assert await s.snapshot() == before, text
    # The same org-wide install naming our workspace acts on it.
    body = enterprise_command_body(s, "pause", s.admin, team_id=s.team_id)
    seen = await s.post(
        body, form_headers(body, s.fake.signing_secret), expect_after_empty_ack=True
    )
    assert "Schedule paused" in seen.reply_text()


def team_null_action(
    s: Scenario,
    user: str,
    action_id: str,
    home: dict[str, Any],
    *,
    user_team: str | None,
    view_team: str | None,
) -> str:
    """`block_actions` from an org-wide install: `team` null; the workspace, if any, is in
    `user.team_id` or `view.team_id`."""
    view = {k: v for k, v in home.items() if k not in ("team_id", "app_installed_team_id")}
    if view_team is not None:
        view["team_id"] = view_team
    person: dict[str, Any] = {"id": user, "username": user, "name": user}
    if user_team is not None:
        person["team_id"] = user_team
    payload = {
        "type": "block_actions",
        "team": None,
        "enterprise": {"id": "E0GRID", "name": "Grid"},
        "is_enterprise_install": True,
        "user": person,
        "api_app_id": s.fake.workspace.app_id,
        "token": "deprecated",
        "trigger_id": s.fake.new_trigger_id(user),
        "container": {"type": "view", "view_id": view.get("id")},
        "view": view,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return interaction_body(payload)


async def test_action_with_team_null_is_refused_or_resolved(scenario: Scenario) -> None:
    s = scenario
    home = await schedule_and_home(s)
    before = await s.snapshot()
    for action_id in (ids.HOME_SCHEDULE_PAUSE, ids.HOME_SCHEDULE_DELETE):
        body = team_null_action(s, s.admin, action_id, home, user_team=None, view_team=None)
        seen = await s.post(body, form_headers(body, s.fake.signing_secret))
        assert seen.status == 200 and seen.nothing_reached_slack(), action_id
        assert await s.snapshot() == before, action_id
        body = team_null_action(s, s.admin, action_id, home, user_team=None, view_team=OTHER_TEAM)
        seen = await s.post(body, form_headers(body, s.fake.signing_secret))
        assert seen.status == 200 and seen.nothing_reached_slack(), action_id
        assert await s.snapshot() == before, action_id
    # `user.team_id` names our workspace: the click acts on it.
    body = team_null_action(
        s, s.admin, ids.HOME_SCHEDULE_PAUSE, home, user_team=s.team_id, view_team=None
    )
    seen = await s.post(
        body, form_headers(body, s.fake.signing_secret), expect_after_empty_ack=True
    )
    [row] = await s.schedules()
    assert not row["is_active"]


async def test_guests_deactivated_accounts_and_bots_cannot_change_anything(
    scenario: Scenario,
) -> None:
    """Each with every admin flag set, so only the new rules refuse them."""
    s = scenario
    home = await schedule_and_home(s)
    await s.command("schedule", s.admin)
    guest = add_person(s, "U0GUESTADM1", is_restricted=True)
    single = add_person(s, "U0ULTRAADM1", is_ultra_restricted=True)
    for user in (guest, single):
        before = await s.snapshot()
        seen = await s.command("pause", user)
        assert "Only workspace admins" in seen.reply_text()
        seen = await s.command("run days=1", user)
        assert "Only workspace admins can start a backfill" in seen.reply_text()
        await refused_click(s, user, ids.HOME_SCHEDULE_DELETE, home)
        assert await s.snapshot() == before, user
    deleted = add_person(s, "U0DELETEDA1", deleted=True)
    bot = add_person(s, "U0BOTADMIN1", is_bot=True)
    await assert_refused_everywhere(s, deleted, home, "deactivated")
    await assert_refused_everywhere(s, bot, home, "bot")
    # The generated workspace's own deactivated member and bot user cannot start runs.
    users = s.fake.workspace.users.values()
    plain_deleted = next(u["id"] for u in users if u.get("deleted"))
    plain_bot = next(
        u["id"]
        for u in users
        if u.get("is_bot") and u["id"] != "USLACKBOT" and u["id"] != s.fake.workspace.bot_user_id
    )
    for user in (plain_deleted, plain_bot):
        seen = await s.command("run days=1", user)
        assert "Nothing was changed" in seen.reply_text(), user
        assert await s.runs() == []


async def test_user_slack_does_not_know_gets_a_refusal_not_a_500(scenario: Scenario) -> None:
    s = scenario
    home = await schedule_and_home(s)
    before = await s.snapshot()
    for text in ("status", "pause", "run days=1", "help"):
        seen = await s.command(text, "U0NOSUCHUSR")
        assert seen.status == 200, text
        assert "Slack does not know" in seen.reply_text(), (text, seen.reply_text())
    seen = await refused_click(s, "U0NOSUCHUSR", ids.HOME_SCHEDULE_PAUSE, home)
    assert seen.status == 200 and seen.nothing_reached_slack()
    seen = await s.home_opened("U0NOSUCHUSR", answered=False)
    assert seen.status == 200 and not seen.published
    # `user_not_visible`: the same.
    user = add_person(s, "U0INVISIBLE")
    s.fake.faults.api_error("user_not_visible", method="users.info")
    seen = await s.command("pause", user)
    assert seen.status == 200 and "Slack does not know" in seen.reply_text()
    assert await s.snapshot() == before


async def test_deactivated_users_home_is_never_published_nor_refreshed(
    scenario: Scenario,
) -> None:
    s = scenario
    deleted = add_person(s, "U0DELETEDA2", deleted=True)
    seen = await s.home_opened(deleted, answered=False)
    assert seen.status == 200 and not seen.published
    s.slow_history(0.3)
    await s.command("run days=20", s.admin)
    await s.wait_running()
    # Refreshes go to recent viewers while the run makes progress: the admin's, not theirs.
    await s.open_home(s.admin)
    await s.eventually(
        lambda: len(s.fake.calls_of("views.publish")) >= 3,
        timeout=30,
        what="Home refreshes during the run",
    )
    s.fast_again()
    await s.idle()
    published_to = {str(c.args.get("user_id")) for c in s.fake.calls_of("views.publish")}
    assert deleted not in published_to


async def test_event_body_without_team_is_acknowledged_and_ignored(scenario: Scenario) -> None:
    """An `app_home_opened` with no team anywhere: 200, nothing published."""
    s = scenario
    body = json.dumps(
        {
            "token": "deprecated",
            "api_app_id": "A0FAKE",
            "type": "event_callback",
            "event": {
                "type": "app_home_opened",
                "user": s.admin,
                "tab": "home",
                "channel": "D0SCENARIO",
                "event_ts": f"{time.time():.6f}",
            },
            "event_id": f"Ev{time.time_ns()}",
            "event_time": int(time.time()),
        }
    )
    seen: Seen = await s.post(body, json_headers(body, s.fake.signing_secret))
    assert seen.status == 200 and not seen.published


async def test_members_of_this_workspace_still_run_and_admins_still_change(
    scenario: Scenario,
) -> None:
    s = scenario
    home = await schedule_and_home(s)
    seen = await s.command("run days=1", s.member)
    assert "started" in seen.reply_text()
    await s.idle()
    seen = await s.click(s.admin, ids.HOME_SCHEDULE_PAUSE, surface=home)
    [row] = await s.schedules()
    assert not row["is_active"]
    seen = await s.command("run", s.member)
    assert [v["callback_id"] for v in seen.opened] == [ids.RUN_MODAL]
