"""`/backfill` sub-commands over signed HTTP, as an admin and as a member: what Slack shows the
user (ack, response_url posts, views) and what lands in `backfill_schedules`."""

from __future__ import annotations

import json

import pytest

from blocks import ids
from tests.scenarios.harness import Scenario


def _channel_ids(row: dict[str, object]) -> list[str]:
    value = row["channel_ids"]
    return json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]


# --- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "help", "help schedule"])
async def test_help_is_ephemeral_usage_for_everyone(ui: Scenario, text: str) -> None:
    for user in (ui.admin, ui.member):
        seen = await ui.command(text, user)
        assert seen.status == 200
        assert seen.ack["response_type"] == "ephemeral"
        assert "/backfill schedule" in seen.ack_text
        assert seen.nothing_reached_slack()
    assert await ui.snapshot() == ([], [])


async def test_unknown_subcommand_names_it_and_lists_commands(ui: Scenario) -> None:
    seen = await ui.command("frobnicate", ui.member)
    assert "`frobnicate` is not a /backfill command" in seen.ack_text
    assert "/backfill status" in seen.ack_text


# --- schedule "<cron>" ------------------------------------------------------------------------------


async def test_schedule_command_creates_then_replaces_the_row(scenario: Scenario) -> None:
    s = scenario
    general, random_ = s.channels["general"], s.channels["random"]
    seen = await s.command(
        f'schedule "0 2 * * *" days=3 channels=<#{general}|general>,#random tz=Europe/Paris',
        s.admin,
    )
    assert seen.status == 200 and seen.ack == ""
    assert "Schedule created" in seen.reply_text()
    assert all(r["response_type"] == "ephemeral" for r in seen.responses)
    assert seen.published, "the admin's Home tab is refreshed after a change"
    [row] = await s.schedules()
    assert row["workspace_id"] == s.team_id
    assert row["cron_expression"] == "0 2 * * *"
    assert row["timezone"] == "Europe/Paris"
    assert row["days_to_backfill"] == 3
    assert not row["include_all_channels"]
    assert _channel_ids(row) == [general, random_]
    assert row["is_active"] and row["next_run_at"] is not None
    assert row["created_by"] == s.admin

    seen = await s.command('schedule "30 6 * * 1-5"', s.admin)
    assert "Schedule updated" in seen.reply_text()
    [replaced] = await s.schedules()  # one schedule per workspace
    assert replaced["cron_expression"] == "30 6 * * 1-5"
    assert replaced["days_to_backfill"] == 7  # the default
    assert replaced["include_all_channels"] and _channel_ids(replaced) == []
    admin_tz = s.fake.workspace.users[s.admin]["tz"]
    assert replaced["timezone"] == admin_tz  # the admin's own Slack time zone


BAD_SCHEDULE_COMMANDS = [
    ('schedule "61 2 * * *"', "5 fields"),
    ('schedule "0 2 * *"', "5 fields"),
    ('schedule "0 2 * * *" tz=Mars/Olympus_Mons', "IANA time zone"),
    ('schedule "0 2 * * *" days=0', "days=N"),
    ('schedule "0 2 * * *" days=400', "days=N"),
    ('schedule "0 2 * * *" days=abc', "days=N"),
    ("schedule 0 2 * * *", "schedule"),
    ('schedule "0 2 * * *" colour=blue', "schedule"),
]


async def test_schedule_command_bad_argument_is_an_ephemeral_error_and_stores_nothing(
    scenario: Scenario,
) -> None:
    s = scenario
    for text, accepted in BAD_SCHEDULE_COMMANDS:  # with no schedule, then over an existing one
        seen = await s.command(text, s.admin)
        assert seen.status == 200 and accepted in seen.ack_text, (text, seen.ack_text)
        assert await s.schedules() == []
    await s.command('schedule "0 4 * * *" days=2', s.admin)
    before = await s.schedules()
    for text, accepted in BAD_SCHEDULE_COMMANDS:
        seen = await s.command(text, s.admin)
        assert seen.status == 200
        assert seen.ack["response_type"] == "ephemeral"
        assert accepted in seen.ack_text, (text, seen.ack_text)
        assert "Accepted:" in seen.ack_text  # says what is accepted
        assert seen.nothing_reached_slack()
        assert await s.schedules() == before, text


async def test_schedule_command_unknown_channel_name_stores_nothing(scenario: Scenario) -> None:
    s = scenario
    seen = await s.command('schedule "0 2 * * *" channels=#no-such-channel', s.admin)
    assert "No channel found for #no-such-channel" in seen.reply_text()
    assert await s.schedules() == []


# --- schedule (modal) -------------------------------------------------------------------------------


async def test_schedule_opens_the_modal_new_then_prefilled(ui: Scenario) -> None:
    s = ui
    seen = await s.command("schedule", s.admin)
    [view] = seen.opened
    assert view["callback_id"] == ids.SCHEDULE_MODAL
    assert view["title"]["text"] == "New schedule"
    assert "Cron expression" in json.dumps(view["blocks"])

    general = s.channels["general"]
    await s.command(
        f'schedule "15 3 * * 0" days=9 channels=<#{general}|general> tz=Asia/Tokyo', s.admin
    )
    seen = await s.command("schedule", s.admin)
    [view] = seen.opened
    assert view["title"]["text"] == "Edit schedule"
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks[ids.SCHEDULE_CRON_BLOCK]["element"]["initial_value"] == "15 3 * * 0"
    assert blocks[ids.SCHEDULE_DAYS_BLOCK]["element"]["initial_value"] == "9"
    assert blocks[ids.SCHEDULE_TZ_BLOCK]["element"]["initial_value"] == "Asia/Tokyo"
    assert (
        blocks[ids.SCHEDULE_SCOPE_BLOCK]["element"]["initial_option"]["value"] == ids.SCOPE_CHOSEN
    )
    assert blocks[ids.SCHEDULE_CHANNELS_BLOCK]["element"]["initial_conversations"] == [general]
    metadata = json.loads(view["private_metadata"])
    assert metadata["editing"] is True and metadata["team"] == s.team_id


async def test_run_opens_the_run_modal_for_admin_and_member(ui: Scenario) -> None:
    for user in (ui.admin, ui.member):
        seen = await ui.command("run", user)
        [view] = seen.opened
        assert view["callback_id"] == ids.RUN_MODAL
        assert ui.fake.modal_stack(user)[-1]["callback_id"] == ids.RUN_MODAL
    assert await ui.runs() == []


# --- list, pause, resume, delete -----------------------------------------------------------------


async def test_list_pause_resume_delete(scenario: Scenario) -> None:
    s = scenario
    seen = await s.command("list", s.admin)
    assert "There is no schedule yet" in seen.reply_text()

    await s.command('schedule "0 2 * * *" tz=UTC', s.admin)
    for user in (s.admin, s.member):
        seen = await s.command("list", user)
        assert "At 02:00" in seen.reply_text() and "0 2 * * *" in seen.reply_text()
        assert "Next run" in seen.reply_text()
    assert "/backfill delete" in (await s.command("list", s.admin)).reply_text()
    assert "/backfill delete" not in (await s.command("list", s.member)).reply_text()

    seen = await s.command("pause", s.admin)
    assert "Schedule paused" in seen.reply_text()
    [row] = await s.schedules()
    assert not row["is_active"] and row["next_run_at"] is None

    seen = await s.command("pause", s.admin)  # twice: says so, changes nothing
    assert "paused" in seen.reply_text()
    assert (await s.schedules())[0]["is_active"] == row["is_active"]

    seen = await s.command("resume", s.admin)
    assert "Schedule resumed" in seen.reply_text()
    [row] = await s.schedules()
    assert row["is_active"] and row["next_run_at"] is not None

    seen = await s.command("delete", s.admin)
    assert "Schedule deleted" in seen.reply_text()
    assert await s.schedules() == []
    seen = await s.command("delete", s.admin)
    assert "schedule" in seen.reply_text().lower()
    assert await s.schedules() == []


async def test_member_cannot_change_the_schedule_by_command(scenario: Scenario) -> None:
    s = scenario
    await s.command('schedule "0 2 * * *" days=4', s.admin)
    for text in (
        'schedule "0 3 * * *"',
        "schedule",
        "pause",
        "delete",
        'schedule "0 3 * * *" days=2 channels=#general tz=UTC',
        "resume",
    ):
        if text == "resume":
            await s.command("pause", s.admin)
        before = await s.schedules()
        seen = await s.command(text, s.member)
        assert seen.status == 200
        assert "Only workspace admins can change the schedule" in seen.ack_text, text
        assert seen.ack["response_type"] == "ephemeral"
        assert not seen.opened, "no schedule modal for a member"
        assert await s.schedules() == before, text


# --- status, history ---------------------------------------------------------------------------------


async def test_status_and_history_with_no_runs(ui: Scenario) -> None:
    for user in (ui.admin, ui.member):
        assert "No run in progress" in (await ui.command("status", user)).reply_text()
        assert "No runs yet" in (await ui.command("history", user)).reply_text()


@pytest.mark.parametrize("text", ["history 0", "history 101", "history lots"])
async def test_history_bad_n_is_refused(ui: Scenario, text: str) -> None:
    seen = await ui.command(text, ui.admin)
    assert "Accepted:" in seen.ack_text and "history" in seen.ack_text


async def test_cancel_with_nothing_running(ui: Scenario) -> None:
    for user in (ui.admin, ui.member):
        seen = await ui.command("cancel", user)
        assert "no backfill running" in seen.reply_text().lower()
