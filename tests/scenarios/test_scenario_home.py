"""App Home and the two modals: the tab published on app_home_opened, every Home button, the
schedule modal's preset menu, and both modal submissions (saved/started, or inline errors on
the right block with nothing stored)."""

from __future__ import annotations

import json
from typing import Any

from blocks import ids
from tests.scenarios.harness import Scenario, action_ids, block_text, find_element
from tests.support.modal_states import run_state, schedule_state


def schedule_values(cron: str = "0 5 * * *", days: str = "4", **values: Any) -> dict[str, Any]:
    """The schedule modal's values, on these scenarios' defaults."""
    return schedule_state(cron=cron, days=days, **values)


def run_values(days: str = "20", **values: Any) -> dict[str, Any]:
    """The run modal's values, on these scenarios' defaults."""
    return run_state(days=days, **values)


# --- the Home tab --------------------------------------------------------------------------------


async def test_home_shows_schedule_run_in_progress_with_cancel_and_recent_runs(
    scenario: Scenario,
) -> None:
    s = scenario
    home = await s.open_home(s.admin)
    assert action_ids(home["blocks"]) >= {
        ids.HOME_SCHEDULE_CREATE,
        ids.HOME_RUN_NOW,
        ids.HOME_REFRESH,
    }
    assert "No runs yet" in block_text(home["blocks"])

    await s.command('schedule "0 2 * * *" days=5 tz=UTC', s.admin)
    await s.command("run days=1 channels=#general", s.admin)
    await s.wait_run_status(1, "success")
    s.slow_history(0.4)
    await s.command("run days=20", s.admin)
    running = await s.wait_running()

    home = await s.open_home(s.admin)
    text = block_text(home["blocks"])
    assert "0 2 * * *" in text and "Active" in text  # the schedule
    assert f"Run #{running['job_run_id']} in progress" in text  # the run in progress…
    cancel = find_element(home["blocks"], ids.HOME_CANCEL_RUN)
    assert cancel is not None and cancel[1]["value"] == str(running["job_run_id"])  # …with Cancel
    assert "#1" in text and "Recent runs" in text  # recent runs
    assert action_ids(home["blocks"]) >= {
        ids.HOME_SCHEDULE_EDIT,
        ids.HOME_SCHEDULE_PAUSE,
        ids.HOME_SCHEDULE_DELETE,
    }

    member_home = await s.open_home(s.member)
    shown = action_ids(member_home["blocks"])
    assert "0 2 * * *" in block_text(member_home["blocks"])
    assert not shown & {
        ids.HOME_SCHEDULE_CREATE,
        ids.HOME_SCHEDULE_EDIT,
        ids.HOME_SCHEDULE_PAUSE,
        ids.HOME_SCHEDULE_RESUME,
        ids.HOME_SCHEDULE_DELETE,
    }, "members get a read-only Home"
    assert ids.HOME_CANCEL_RUN not in shown, "not their run"
    s.fast_again()
    await s.wait_run_status(int(running["job_run_id"]), "success")


async def test_home_buttons_drive_the_schedule(scenario: Scenario) -> None:
    s = scenario
    home = await s.open_home(s.admin)
    seen = await s.click(s.admin, ids.HOME_SCHEDULE_CREATE, surface=home)
    [modal] = seen.opened
    assert modal["callback_id"] == ids.SCHEDULE_MODAL and modal["title"]["text"] == "New schedule"

    seen = await s.submit(s.admin, s.fake.modal_stack(s.admin)[-1], schedule_values())
    assert seen.status == 200 and seen.ack == ""  # valid: the modal closes
    [row] = await s.schedules()
    assert (row["cron_expression"], row["days_to_backfill"], row["timezone"]) == (
        "0 5 * * *",
        4,
        "Europe/Paris",
    )
    assert row["include_all_channels"] and row["created_by"] == s.admin
    assert seen.published  # the Home tab shows the new schedule
    home = s.fake.home_view(s.admin)
    assert home is not None and "0 5 * * *" in block_text(home["blocks"])

    seen = await s.click(s.admin, ids.HOME_SCHEDULE_EDIT, surface=home)
    [modal] = seen.opened
    assert modal["title"]["text"] == "Edit schedule"
    assert "0 5 * * *" in json.dumps(modal["blocks"]) and "Europe/Paris" in json.dumps(
        modal["blocks"]
    )

    seen = await s.click(s.admin, ids.HOME_SCHEDULE_PAUSE, surface=home)
    [row] = await s.schedules()
    assert not row["is_active"] and row["next_run_at"] is None
    home = seen.published[-1]
    assert ids.HOME_SCHEDULE_RESUME in action_ids(home["blocks"])

    seen = await s.click(s.admin, ids.HOME_SCHEDULE_RESUME, surface=home)
    [row] = await s.schedules()
    assert row["is_active"] and row["next_run_at"] is not None
    home = seen.published[-1]
    assert ids.HOME_SCHEDULE_PAUSE in action_ids(home["blocks"])

    seen = await s.click(s.admin, ids.HOME_SCHEDULE_DELETE, surface=home)
    assert await s.schedules() == []
    assert ids.HOME_SCHEDULE_CREATE in action_ids(seen.published[-1]["blocks"])


async def test_home_run_now_refresh_and_cancel(ui: Scenario) -> None:
    s = ui
    home = await s.open_home(s.admin)
    seen = await s.click(s.admin, ids.HOME_RUN_NOW, surface=home)
    [modal] = seen.opened
    assert modal["callback_id"] == ids.RUN_MODAL

    s.slow_history(0.4)
    seen = await s.submit(s.admin, s.fake.modal_stack(s.admin)[-1], run_values())
    assert seen.status == 200 and seen.ack == ""
    [row] = await s.runs()
    assert (
        row["status"] == "running"
        and row["triggered_by"] == s.admin
        and row["job_type"] == "manual"
    )

    seen = await s.click(s.admin, ids.HOME_REFRESH, surface=home)
    # The run's own throttled refresh may publish too: the newest view is what the admin sees.
    home = seen.published[-1]
    assert find_element(home["blocks"], ids.HOME_CANCEL_RUN) is not None
    seen = await s.click(s.admin, ids.HOME_CANCEL_RUN, surface=home)
    assert seen.published
    await s.wait_run_status(int(row["job_run_id"]), "cancelled")


# --- the schedule modal ----------------------------------------------------------------------------


async def test_schedule_modal_preset_fills_the_cron_then_errors_land_on_the_right_block(
    ui: Scenario,
) -> None:
    s = ui
    seen = await s.command("schedule", s.admin)
    [modal] = seen.opened
    seen = await s.click(
        s.admin,
        ids.SCHEDULE_PRESET_ACTION,
        surface=modal,
        selected={
            "value": "0 6 * * 1-5",
            "text": {"type": "plain_text", "text": "Weekdays at 06:00"},
        },
    )
    [updated] = seen.updated
    assert updated["id"] == modal["id"]
    cron_block = f"{ids.SCHEDULE_CRON_BLOCK}.r1"
    blocks = {b.get("block_id"): b for b in updated["blocks"]}
    assert blocks[cron_block]["element"]["initial_value"] == "0 6 * * 1-5"
    assert json.loads(updated["private_metadata"])["rev"] == 1
    current = s.fake.modal_stack(s.admin)[-1]
    assert current["hash"] != modal["hash"]  # fakeslack holds the updated view

    cases = [
        (schedule_values(cron="0 6 * * 8", cron_block=cron_block), cron_block),
        (schedule_values(cron="", cron_block=cron_block), cron_block),
        (schedule_values(tz="Not/AZone", cron_block=cron_block), ids.SCHEDULE_TZ_BLOCK),
        (schedule_values(tz="bad zone!", cron_block=cron_block), ids.SCHEDULE_TZ_BLOCK),
        (schedule_values(days="0", cron_block=cron_block), ids.SCHEDULE_DAYS_BLOCK),
        (schedule_values(days="1.5", cron_block=cron_block), ids.SCHEDULE_DAYS_BLOCK),
        (
            schedule_values(scope=ids.SCOPE_CHOSEN, cron_block=cron_block),
            ids.SCHEDULE_CHANNELS_BLOCK,
        ),
        (
            schedule_values(channels=[s.channels["general"]], cron_block=cron_block),
            ids.SCHEDULE_SCOPE_BLOCK,
        ),
    ]
    for values, block in cases:
        seen = await s.submit(s.admin, current, values)
        assert seen.status == 200
        assert seen.ack["response_action"] == "errors", values
        assert block in seen.ack["errors"], (block, seen.ack)
        assert await s.schedules() == []

    general = s.channels["general"]
    seen = await s.submit(
        s.admin,
        current,
        schedule_values(
            cron="0 6 * * 1-5", cron_block=cron_block, scope=ids.SCOPE_CHOSEN, channels=[general]
        ),
    )
    assert seen.ack == ""
    [row] = await s.schedules()
    assert row["cron_expression"] == "0 6 * * 1-5"
    assert not row["include_all_channels"] and general in str(row["channel_ids"])


async def test_schedule_modal_edit_replaces_the_row(scenario: Scenario) -> None:
    s = scenario
    await s.command('schedule "0 2 * * *" days=3 tz=UTC', s.admin)
    [before] = await s.schedules()
    seen = await s.command("schedule", s.admin)
    [modal] = seen.opened
    seen = await s.submit(
        s.admin, modal, schedule_values(cron="45 23 * * 6", days="30", tz="America/Sao_Paulo")
    )
    assert seen.ack == ""
    [after] = await s.schedules()
    assert after["schedule_id"] == before["schedule_id"] or after["schedule_id"] > 0
    assert (after["cron_expression"], after["days_to_backfill"], after["timezone"]) == (
        "45 23 * * 6",
        30,
        "America/Sao_Paulo",
    )


# --- the run modal -----------------------------------------------------------------------------------


async def test_run_modal_submission_starts_or_refuses_inline(scenario: Scenario) -> None:
    s = scenario
    seen = await s.command("run", s.member)
    [modal] = seen.opened
    for values, block in (
        (run_values(days="0"), ids.RUN_DAYS_BLOCK),
        (run_values(days="abc"), ids.RUN_DAYS_BLOCK),
        (run_values(scope=ids.SCOPE_CHOSEN), ids.RUN_CHANNELS_BLOCK),
    ):
        seen = await s.submit(s.member, modal, values)
        assert seen.ack["response_action"] == "errors" and block in seen.ack["errors"]
    assert await s.runs() == []

    general = s.channels["general"]
    s.slow_history(0.4)
    seen = await s.submit(
        s.member, modal, run_values(days="6", scope=ids.SCOPE_CHOSEN, channels=[general])
    )
    assert seen.ack == ""
    [row] = await s.runs()
    assert row["triggered_by"] == s.member and row["job_type"] == "manual"

    # A second submission while it runs: refused in the form, naming the run; no new row.
    seen = await s.submit(s.admin, modal, run_values())
    assert seen.ack["response_action"] == "errors"
    assert f"run #{row['job_run_id']}" in seen.ack["errors"][ids.RUN_DAYS_BLOCK]
    assert len(await s.runs()) == 1
    s.fast_again()
    done = await s.wait_run_status(int(row["job_run_id"]), "success")
    assert done["channels_processed"] == 1
    await s.dm_with(s.member, f"run #{row['job_run_id']}")
