"""Members: read-only everywhere; manual runs only while MEMBERS_CAN_RUN=true; the schedule is out
of reach by every path, including payloads forged with an admin's action ids, view id and
private_metadata."""

from __future__ import annotations

import json
from pathlib import Path

from blocks import ids
from tests.scenarios.harness import Scenario, action_ids, start_scenario
from tests.scenarios.test_scenario_home import run_values, schedule_values

ADMIN_HOME_ACTIONS = (
    ids.HOME_SCHEDULE_CREATE,
    ids.HOME_SCHEDULE_EDIT,
    ids.HOME_SCHEDULE_PAUSE,
    ids.HOME_SCHEDULE_RESUME,
    ids.HOME_SCHEDULE_DELETE,
)


async def test_member_forging_admin_home_buttons_changes_nothing(scenario: Scenario) -> None:
    s = scenario
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    admin_home = await s.open_home(s.admin)
    before = await s.snapshot()
    for action_id in ADMIN_HOME_ACTIONS:
        seen = await s.click(s.member, action_id, surface=admin_home)
        assert seen.status == 200
        assert not seen.opened, f"{action_id} opened a modal for a member"
        assert await s.snapshot() == before, action_id
        # The member sees their own read-only Home again, without the admin's buttons.
        [home] = seen.published
        assert not action_ids(home["blocks"]) & set(ADMIN_HOME_ACTIONS)
    await s.command("pause", s.admin)
    paused = await s.snapshot()
    seen = await s.click(s.member, ids.HOME_SCHEDULE_RESUME, surface=admin_home)
    assert await s.snapshot() == paused


async def test_member_forging_the_admins_schedule_modal_changes_nothing(
    scenario: Scenario,
) -> None:
    s = scenario
    await s.command('schedule "0 2 * * *" days=4 tz=UTC', s.admin)
    seen = await s.command("schedule", s.admin)
    [admin_modal] = seen.opened
    before = await s.snapshot()

    # Submitting the admin's own view (its id, hash and private_metadata) as the member.
    seen = await s.submit(s.member, admin_modal, schedule_values(cron="* * * * *", days="365"))
    assert seen.status == 200
    assert seen.ack["response_action"] == "errors"
    assert any("Only workspace admins" in m for m in seen.ack["errors"].values())
    assert await s.snapshot() == before

    # And a preset pick forged on it: no views.update for a member.
    seen = await s.click(
        s.member,
        ids.SCHEDULE_PRESET_ACTION,
        surface=admin_modal,
        selected={"value": "0 * * * *", "text": {"type": "plain_text", "text": "Every hour"}},
    )
    assert not seen.updated
    assert json.loads(s.fake.modal_stack(s.admin)[-1]["private_metadata"])["rev"] == 0
    assert await s.snapshot() == before

    # The admin can still submit it.
    seen = await s.submit(s.admin, admin_modal, schedule_values(cron="0 3 * * *"))
    assert seen.ack == ""
    assert (await s.schedules())[0]["cron_expression"] == "0 3 * * *"


async def test_member_read_only_views(ui: Scenario) -> None:
    s = ui
    await s.command('schedule "0 2 * * *" tz=UTC', s.admin)
    for text in ("status", "list", "history 3"):
        seen = await s.command(text, s.member)
        assert seen.status == 200 and "Only workspace admins" not in seen.reply_text(), text
        assert all(r["response_type"] == "ephemeral" for r in seen.responses)
    home = await s.open_home(s.member)
    assert "admins change them" in json.dumps(home["blocks"])  # says who can do more
    assert ids.HOME_RUN_NOW in action_ids(home["blocks"])  # MEMBERS_CAN_RUN defaults to true


async def test_members_cannot_run_when_members_can_run_is_false(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/backfill.db"
    async with start_scenario(url, tmp_path, MEMBERS_CAN_RUN="false") as s:
        for text in ("run", "run days=3", "run days=3 channels=#general"):
            seen = await s.command(text, s.member)
            assert "Only workspace admins can start a backfill" in seen.ack_text, text
            assert not seen.opened
        home = await s.open_home(s.member)
        assert ids.HOME_RUN_NOW not in action_ids(home["blocks"])

        admin_home = await s.open_home(s.admin)
        seen = await s.click(s.member, ids.HOME_RUN_NOW, surface=admin_home)  # forged
        assert not seen.opened
        seen = await s.command("run", s.admin)
        [admin_run_modal] = seen.opened
        seen = await s.submit(s.member, admin_run_modal, run_values())  # forged
        assert seen.ack["response_action"] == "errors"
        assert (
            "Only workspace admins can start a backfill" in seen.ack["errors"][ids.RUN_DAYS_BLOCK]
        )
        seen = await s.click_retry(s.member, 1)  # forged
        assert "Only workspace admins can start a backfill" in seen.reply_text()
        assert await s.runs() == []

        # Admins still can, and a member's cancel of it is refused.
        s.slow_history(0.4)
        seen = await s.command("run days=2", s.admin)
        assert "Run #1 started" in seen.reply_text()
        assert "only an admin can cancel" in (await s.command("cancel", s.member)).reply_text()
        assert (await s.run_row(1))["cancel_requested_by"] is None  # type: ignore[index]
        await s.command("cancel", s.admin)
        await s.wait_run_status(1, "cancelled")
