"""`/backfill purge` end to end over signed HTTP, on SQLite and PostgreSQL: an admin's confirmed
purge removes this workspace's messages, checkpoints, runs, schedule (row and APScheduler job)
and Chroma collection, and nothing of another workspace; members are refused (command and forged
button) and nothing changes; Cancel changes nothing; a second press is harmless; a running run
refuses it; and the app works afterwards (status, Home, a new run stores the history again)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from blocks import ids
from db.records import MessageRecord
from scheduler.schedules import job_id
from tests.scenarios.harness import OTHER_TEAM, Scenario, action_ids, find_element
from tests.scenarios.test_scenario_runs import start_slow_run

TABLES = ("messages", "channel_checkpoints", "backfill_job_runs", "backfill_schedules")


async def counts(s: Scenario, team: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in (*TABLES, "message_tombstones", "workspaces"):
        [row] = await s.rows(f"SELECT count(*) AS n FROM {table} WHERE workspace_id = :w", w=team)
        found[table] = int(row["n"])
    found["documents"] = await s.rt.vectors.count(team)
    return found


async def seed_other_workspace(s: Scenario) -> None:
    """Rows and a document of another workspace, written as its own app would have."""
    async with s.rt.sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO workspaces (workspace_id, name, created_at) "
                "VALUES (:w, 'other', CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
        await session.execute(
            text(
                "INSERT INTO messages (workspace_id, channel_id, ts, user_id, user_name, text, "
                "channel_name, stored_at) VALUES (:w, 'C0OTHER', '1700000000.000100', 'U0OTHER', "
                "'other', 'a message of another workspace', 'other', CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
        await session.execute(
            text(
                "INSERT INTO channel_checkpoints (workspace_id, channel_id, channel_name, "
                "updated_at) VALUES (:w, 'C0OTHER', 'other', CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
        await session.execute(
            text(
                "INSERT INTO backfill_schedules (workspace_id, cron_expression, timezone, "
                "days_to_backfill, include_all_channels, channel_ids, is_active, created_by, "
                "created_at, updated_at) VALUES (:w, '0 3 * * *', 'UTC', 7, true, '[]', false, "
                "'U0OTHER', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
        await session.execute(
            text(
                "INSERT INTO backfill_job_runs (workspace_id, job_type, status, triggered_by, "
                "started_at) VALUES (:w, 'manual', 'success', 'U0OTHER', CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
        await session.execute(
            text(
                "INSERT INTO message_tombstones (workspace_id, channel_id, ts, reason, "
                "removed_at) VALUES (:w, 'C0OTHER', '1600000000.000100', 'deleted', "
                "CURRENT_TIMESTAMP)"
            ),
            {"w": OTHER_TEAM},
        )
    await s.rt.vectors.upsert(
        [
            MessageRecord(
                workspace_id=OTHER_TEAM,
                channel_id="C0OTHER",
                channel_name="other",
                ts="1700000000.000100",
                thread_ts=None,
                user_id="U0OTHER",
                user_name="other",
                text="a message of another workspace",
            )
        ]
    )


async def stored_copy(s: Scenario) -> dict[str, int]:
    """A schedule and a finished run of this workspace: messages, checkpoints, documents."""
    seen = await s.command('schedule "0 2 * * *"', s.admin)
    assert "Schedule created" in seen.reply_text(), seen.reply_text()
    seen = await s.command("run days=20", s.admin)
    assert "started" in seen.reply_text(), seen.reply_text()
    await s.wait_run_status(1, "success")
    await s.idle()
    before = await counts(s, s.team_id)
    assert before["messages"] > 0 and before["documents"] == before["messages"]
    assert before["channel_checkpoints"] > 0
    assert before["backfill_job_runs"] == 1 and before["backfill_schedules"] == 1
    return before


def confirmation_of(seen: Any) -> dict[str, Any]:
    [reply] = [r for r in seen.responses if ids.PURGE_CONFIRM in action_ids(r.get("blocks"))]
    return {"ts": "1.1", "blocks": reply["blocks"]}


async def press(s: Scenario, user: str, action_id: str, message: dict[str, Any]) -> Any:
    return await s.click(user, action_id, container="message", message=message, ephemeral=True)


async def test_admin_purge_removes_this_workspace_only_and_the_app_carries_on(
    scenario: Scenario,
) -> None:
    s = scenario
    await seed_other_workspace(s)
    other_before = await counts(s, OTHER_TEAM)
    before = await stored_copy(s)
    scheduler = s.rt.deps.schedules._scheduler
    assert scheduler.get_job(job_id(s.team_id)) is not None

    seen = await s.command("purge", s.admin)
    assert seen.status == 200 and seen.ack == ""  # answered after the acknowledgement
    reply = seen.reply_text()
    assert f"*{before['messages']:,} stored messages*" in reply, reply
    assert f"{before['documents']:,} documents" in reply and "*1 run*" in reply
    assert "*the schedule*" in reply
    message = confirmation_of(seen)
    _block, button = find_element(message["blocks"], ids.PURGE_CONFIRM) or ("", {})
    assert button["style"] == "danger" and button["confirm"]["style"] == "danger"
    assert await counts(s, s.team_id) == before  # asking changes nothing

    done = await press(s, s.admin, ids.PURGE_CONFIRM, message)
    assert done.status == 200 and done.ack == ""
    [result] = done.responses
    assert result["replace_original"] is True
    assert ids.PURGE_CONFIRM not in action_ids(result["blocks"])
    assert f"Purged. Removed {before['messages']:,} stored messages" in result["text"]
    assert "1 run and the schedule" in result["text"]
    after = await counts(s, s.team_id)
    assert {k: after[k] for k in (*TABLES, "documents")} == dict.fromkeys((*TABLES, "documents"), 0)
    assert after["workspaces"] == 1  # the workspace is still served
    assert scheduler.get_job(job_id(s.team_id)) is None
    assert await counts(s, OTHER_TEAM) == other_before
    assert done.published  # the admin's Home tab shows the empty copy

    # A second press of the same button: nothing left, nothing changes, the result stays.
    again = await press(s, s.admin, ids.PURGE_CONFIRM, message)
    [second] = again.responses
    assert second["replace_original"] is False and "Nothing left to purge" in second["text"]
    assert await counts(s, s.team_id) == after
    assert await counts(s, OTHER_TEAM) == other_before
    nothing = await s.command("purge", s.admin)
    assert "Nothing left to purge" in nothing.reply_text()
    assert ids.PURGE_CONFIRM not in action_ids(nothing.responses[0]["blocks"])

    # The app carries on: status, list, Home, and a new run stores the history again (the
    # checkpoints went too, so it does not start at the old high-water mark).
    assert "No run in progress" in (await s.command("status", s.admin)).reply_text()
    assert "There is no schedule yet" in (await s.command("list", s.admin)).reply_text()
    home = await s.open_home(s.admin)
    assert ids.HOME_SCHEDULE_CREATE in action_ids(home["blocks"])
    seen = await s.command("run days=20", s.admin)
    assert "started" in seen.reply_text(), seen.reply_text()
    [run] = [r for r in await s.runs() if r["workspace_id"] == s.team_id]
    row = await s.wait_run_status(int(run["job_run_id"]), "success")
    assert row["messages_collected"] == before["messages"]
    await s.idle()
    again_stored = await counts(s, s.team_id)
    assert again_stored["messages"] == before["messages"] == again_stored["documents"]


async def test_members_are_refused_and_cancel_changes_nothing(scenario: Scenario) -> None:
    s = scenario
    await seed_other_workspace(s)
    before = await stored_copy(s)
    other_before = await counts(s, OTHER_TEAM)
    snapshot = await s.snapshot()

    refused = await s.command("purge", s.member)
    assert "Only workspace admins can purge the stored copy" in refused.ack_text
    assert not refused.responses  # refused in the acknowledgement, nothing after it

    # A member replays the admin's confirmation (or forges the button): asked again, refused.
    message = confirmation_of(await s.command("purge", s.admin))
    forged = await press(s, s.member, ids.PURGE_CONFIRM, message)
    assert forged.status == 200
    assert "Only workspace admins can purge the stored copy" in forged.reply_text()
    assert all(r["replace_original"] is False for r in forged.responses)
    forged = await s.click(s.member2, ids.PURGE_CONFIRM, container="message", value="purge")
    assert "Only workspace admins" in forged.reply_text()
    assert await counts(s, s.team_id) == before and await s.snapshot() == snapshot

    cancelled = await press(s, s.admin, ids.PURGE_CANCEL, message)
    [answer] = cancelled.responses
    assert answer["replace_original"] is True and "Purge cancelled" in answer["text"]
    assert ids.PURGE_CONFIRM not in action_ids(answer["blocks"])
    assert await counts(s, s.team_id) == before and await s.snapshot() == snapshot
    assert await counts(s, OTHER_TEAM) == other_before
    assert s.rt.deps.schedules._scheduler.get_job(job_id(s.team_id)) is not None


async def test_purge_is_refused_while_a_run_is_running(scenario: Scenario) -> None:
    s = scenario
    seen = await s.command('schedule "0 2 * * *"', s.admin)
    assert "Schedule created" in seen.reply_text()
    run = await start_slow_run(s, s.admin)
    reply = (await s.command("purge", s.admin)).reply_text()
    assert f"Run #{run['job_run_id']} is running" in reply and "/backfill cancel" in reply
    assert ids.PURGE_CONFIRM not in reply

    # A press from an older confirmation meanwhile: refused, the confirmation stays.
    message = {"ts": "1.1", "blocks": []}
    pressed = await s.click(
        s.admin, ids.PURGE_CONFIRM, container="message", message=message, value="purge"
    )
    [refusal] = pressed.responses
    assert refusal["replace_original"] is False
    assert f"Run #{run['job_run_id']} is running" in refusal["text"]
    row = await s.run_row(int(run["job_run_id"]))  # type: ignore[arg-type]
    assert row is not None and row["status"] == "running"
    assert len(await s.schedules()) == 1

    await s.command("cancel", s.admin)
    await s.wait_run_status(int(run["job_run_id"]), "cancelled")  # type: ignore[arg-type]
    s.fast_again()
    await s.idle()
    done = await s.click(
        s.admin, ids.PURGE_CONFIRM, container="message", message=message, value="purge"
    )
    assert "Purged." in done.reply_text()
    assert await s.runs() == [] and await s.schedules() == []
