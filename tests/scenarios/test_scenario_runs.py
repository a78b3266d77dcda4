"""Manual runs end to end: `/backfill run …`, the per-workspace lock, status and history, every
Cancel (command, status reply, DM, Home), Retry from the failure DM, and who may do which, on
SQLite and PostgreSQL. Assertions on what Slack received and on `backfill_job_runs`."""

from __future__ import annotations

import json

from blocks import ids
from tests.scenarios.harness import Scenario, action_ids, block_text, find_element


async def start_slow_run(s: Scenario, user: str, text: str = "run days=20") -> dict[str, object]:
    s.slow_history(0.5)  # every history page: the run lasts well past the test's clicks
    seen = await s.command(text, user)
    assert "started" in seen.reply_text(), seen.reply_text()
    return await s.wait_running()


async def test_run_command_stores_a_row_replies_then_dms_the_summary(scenario: Scenario) -> None:
    s = scenario
    general = s.channels["general"]
    seen = await s.command(f"run days=20 channels=<#{general}|general>,#random", s.admin)
    assert seen.status == 200 and seen.ack == ""
    reply = seen.reply_text()
    assert "Run #1 started: backfilling the last 20 days of" in reply
    assert "#general" in reply and "#random" in reply
    # The notification fallback text names both channels too, the mentioned one by its name.
    plain = [body.get("text", "") for body in seen.responses if "started" in body.get("text", "")]
    assert plain and "#general" in plain[0] and "#random" in plain[0] and general not in plain[0]
    [row] = await s.runs()
    assert row["workspace_id"] == s.team_id
    assert row["job_type"] == "manual" and row["schedule_id"] is None
    assert row["triggered_by"] == s.admin
    assert row["status"] in ("running", "success")

    done = await s.wait_run_status(1, "success")
    assert done["messages_collected"] > 0
    assert done["channels_processed"] == 2
    assert done["completed_at"] is not None and done["error_message"] is None
    summary = await s.dm_with(s.admin, "Backfill finished: run #1")
    assert f"{done['messages_collected']}" in summary["text"]
    # The progress DM (with Cancel) was posted first, then closed without its Cancel button.
    posted = [c for c in s.fake.calls_of("chat.postMessage") if c.args.get("channel") == s.admin]
    assert len(posted) >= 2
    await s.idle()  # the progress DM is closed in the background, paced like its updates
    assert all(ids.DM_CANCEL_RUN not in action_ids(m.get("blocks")) for m in s.dm_messages(s.admin))
    assert "No run in progress" in (await s.command("status", s.admin)).reply_text()


async def test_run_command_bad_arguments_are_refused_and_store_nothing(scenario: Scenario) -> None:
    s = scenario
    for text, accepted in (
        ("run days=0", "days=N"),
        ("run days=366", "days=N"),
        ("run days=x", "days=N"),
        ("run channels=#nowhere", "#nowhere"),
        ("run please", "run"),
    ):
        seen = await s.command(text, s.admin)
        assert accepted in seen.reply_text(), (text, seen.reply_text())
    assert await s.runs() == []


async def test_second_run_while_one_runs_is_refused_naming_it(scenario: Scenario) -> None:
    s = scenario
    first = await start_slow_run(s, s.admin)
    for user in (s.admin, s.member):
        seen = await s.command("run days=1", user)
        refusal = seen.reply_text()
        assert "already running" in refusal and f"run #{first['job_run_id']}" in refusal, refusal
        assert f"<@{s.admin}>" in refusal
    assert len(await s.runs()) == 1  # a refused request creates no row

    status = await s.command("status", s.admin)
    assert f"Run #{first['job_run_id']} in progress" in status.reply_text()
    [reply] = status.responses
    assert find_element(reply["blocks"], ids.REPLY_CANCEL_RUN) is not None
    seen = await s.command("cancel", s.admin)
    assert f"Cancelling run #{first['job_run_id']}" in seen.reply_text()
    row = await s.wait_run_status(int(first["job_run_id"]), "cancelled")  # type: ignore[arg-type]
    assert row["completed_at"] is not None
    await s.dm_with(s.admin, f"run #{first['job_run_id']}")
    s.fast_again()
    await s.idle()


async def test_member_runs_and_cancels_only_their_own(scenario: Scenario) -> None:
    s = scenario
    run = await start_slow_run(s, s.member)
    assert run["triggered_by"] == s.member and run["job_type"] == "manual"

    # Another member sees no Cancel and is refused by every Cancel path.
    status = await s.command("status", s.member2)
    assert "in progress" in status.reply_text()
    assert ids.REPLY_CANCEL_RUN not in action_ids(status.responses[0]["blocks"])
    seen = await s.command("cancel", s.member2)
    assert "only an admin can cancel a run someone else started" in seen.reply_text()
    member_home = await s.open_home(s.member)
    assert ids.HOME_CANCEL_RUN in action_ids(member_home["blocks"])
    forged = await s.click(s.member2, ids.HOME_CANCEL_RUN, surface=member_home)
    assert forged.status == 200
    other_home = s.fake.home_view(s.member2)
    assert other_home is not None and ids.HOME_CANCEL_RUN not in action_ids(other_home["blocks"])
    dm = await s.dm_with(s.member, "in progress")
    forged = await s.click(s.member2, ids.DM_CANCEL_RUN, container="message", message=dm)
    assert "only an admin can cancel" in forged.reply_text()
    row = await s.run_row(int(run["job_run_id"]))  # type: ignore[arg-type]
    assert row is not None and row["status"] == "running" and row["cancel_requested_by"] is None

    # Its starter can: from the status reply's Cancel button.
    status = await s.command("status", s.member)
    [reply] = status.responses
    seen = await s.click(
        s.member,
        ids.REPLY_CANCEL_RUN,
        container="message",
        message={"ts": "1.1", "blocks": reply["blocks"]},
        ephemeral=True,
    )
    assert f"Cancelling run #{run['job_run_id']}" in seen.reply_text()
    await s.wait_run_status(int(run["job_run_id"]), "cancelled")  # type: ignore[arg-type]
    summary = await s.dm_with(s.member, "cancelled")
    assert f"#{run['job_run_id']}" in summary["text"]
    s.fast_again()
    await s.idle()


async def test_admin_cancels_a_members_run_from_home(
    scenario: Scenario,
) -> None:
    """Admins may cancel anybody's run: here from the Home tab's Cancel."""
    s = scenario
    run = await start_slow_run(s, s.member)
    home = await s.open_home(s.admin)
    found = find_element(home["blocks"], ids.HOME_CANCEL_RUN)
    assert found is not None and found[1]["value"] == str(run["job_run_id"])
    seen = await s.click(s.admin, ids.HOME_CANCEL_RUN, surface=home)
    assert seen.status == 200 and seen.published
    row = await s.wait_run_status(int(run["job_run_id"]), "cancelled")  # type: ignore[arg-type]
    assert row["cancel_requested_by"] == s.admin
    s.fast_again()
    await s.idle()


async def test_dm_cancel_button_stops_the_run(scenario: Scenario) -> None:
    s = scenario
    run = await start_slow_run(s, s.admin)
    dm = await s.dm_with(s.admin, "in progress")
    assert find_element(dm["blocks"], ids.DM_CANCEL_RUN) is not None
    seen = await s.click(s.admin, ids.DM_CANCEL_RUN, container="message", message=dm)
    assert f"Cancelling run #{run['job_run_id']}" in seen.reply_text()
    assert all(r.get("replace_original") is False for r in seen.responses)
    await s.wait_run_status(int(run["job_run_id"]), "cancelled")  # type: ignore[arg-type]
    s.fast_again()
    await s.idle()


async def test_stale_cancel_button_does_not_cancel_a_newer_run(scenario: Scenario) -> None:
    """A Cancel button carries its run's id: clicked after that run ended, it must not stop the
    run that is going now (a status reply stays on screen long after its run finished)."""
    s = scenario
    await s.command("run days=2", s.admin)
    status = await s.command("status", s.admin, settle=True)
    stale = [r for r in status.responses if find_element(r.get("blocks"), ids.REPLY_CANCEL_RUN)]
    await s.wait_run_status(1, "success", "cancelled")
    await s.idle()
    second = await start_slow_run(s, s.admin)
    assert second["job_run_id"] == 2
    blocks = (
        stale[0]["blocks"]
        if stale
        else [
            {
                "type": "actions",
                "block_id": ids.REPLY_RUN_ACTIONS_BLOCK,
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.REPLY_CANCEL_RUN,
                        "value": "1",
                        "text": {"type": "plain_text", "text": "Cancel run"},
                    }
                ],
            }
        ]
    )
    seen = await s.click(
        s.admin,
        ids.REPLY_CANCEL_RUN,
        container="message",
        message={"ts": "1.1", "blocks": blocks},
        ephemeral=True,
    )
    assert "Cancelling run #2" not in seen.reply_text()
    assert "Run #1 has already ended" in seen.reply_text()
    row = await s.run_row(2)
    assert row is not None and row["cancel_requested_by"] is None, (
        "the Cancel of run #1 cancelled run #2"
    )
    s.fast_again()
    await s.wait_run_status(2, "success")
    await s.idle()


async def test_failed_run_dm_offers_retry_which_starts_a_new_run(scenario: Scenario) -> None:
    s = scenario
    s.fake.faults.api_error("missing_scope", count=1, method="conversations.history")
    await s.command("run days=3", s.member)
    failed = await s.wait_run_status(1, "failed")
    assert "missing_scope" in failed["error_message"]
    dm = await s.dm_with(s.member, "Retry")
    found = find_element(dm["blocks"], ids.DM_RETRY_RUN)
    assert found is not None and found[1]["value"] == "1"
    seen = await s.click(s.member, ids.DM_RETRY_RUN, container="message", message=dm)
    assert "Run #2 started: backfilling the last 3 days" in seen.reply_text()
    retried = await s.wait_run_status(2, "success")
    assert retried["job_type"] == "manual" and retried["triggered_by"] == s.member
    await s.dm_with(s.member, "Backfill finished: run #2")

    # Retrying a successful run is refused, and creates nothing.
    seen = await s.click(s.member, ids.DM_RETRY_RUN, container="message", message=dm, value="2")
    assert "finished successfully" in seen.reply_text()
    assert len(await s.runs()) == 2
    await s.idle()


async def test_status_and_history_show_the_runs(scenario: Scenario) -> None:
    s = scenario
    for days in (1, 2, 3):
        await s.command(f"run days={days} channels=#general", s.admin)
        await s.wait_run_status(days, "success")
    for user in (s.admin, s.member):
        seen = await s.command("history 2", user)
        text = seen.reply_text()
        assert "Last 2 runs" in text and "#3" in text and "#2" in text and "#1" not in text
        seen = await s.command("history", user)
        assert "Last 3 runs" in seen.reply_text()
        seen = await s.command("status", user)
        assert "No run in progress" in seen.reply_text() and "#3" in seen.reply_text()
    rows = await s.runs()
    assert [r["status"] for r in rows] == ["success"] * 3
    assert json.dumps(block_text(seen.responses[0]["blocks"]))


async def test_run_dm_and_history_show_the_calls_per_method_and_the_waits(
    scenario: Scenario,
) -> None:
    """Issue 12, point 4: an admin can tell a slow Slack from a slow app. The run's figures are
    what Slack itself received (fakeslack's record of the engine-only methods)."""
    s = scenario
    await s.command("run days=20 channels=#general,#random", s.admin)
    done = await s.wait_run_status(1, "success")
    stored = done["slack_calls"]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    figures = {f["method"]: f for f in stored}
    for method in ("conversations.history", "conversations.replies"):  # only the engine calls them
        assert figures[method]["calls"] == len(s.fake.calls_of(method)) > 0, method
        assert figures[method]["waited_s"] >= 0 and figures[method]["rate_limited"] == 0
    history_calls = figures["conversations.history"]["calls"]

    summary = block_text((await s.dm_with(s.admin, "Backfill finished: run #1"))["blocks"])
    assert f"`conversations.history` {history_calls}" in summary
    total = sum(f["calls"] for f in stored)
    assert f"{total} Slack calls" in summary and "waiting for Slack's limits" in summary

    text = (await s.command("history", s.admin)).reply_text()
    assert f"{total} calls (" in text and f"history {history_calls}" in text
