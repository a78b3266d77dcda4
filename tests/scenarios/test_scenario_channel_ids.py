"""Channels named by id that Slack does not know (or the app cannot see) are refused at the command
and at both modal submissions, with the ids named and what is accepted: no run row, no schedule,
and no `conversations.info` per id (one `conversations.list` walk at most). A command naming more
channels than the cap is refused before any Slack call. Forged modal state of the wrong types is an
inline error, never a 500. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from blocks import ids
from blocks.limits import MAX_CHANNELS
from tests.scenarios.harness import Scenario
from tests.scenarios.test_scenario_home import run_values, schedule_values


def made_up(n: int) -> list[str]:
    return [f"C0MADEUP{i:04d}" for i in range(n)]


def slack_lookups(s: Scenario) -> tuple[int, int]:
    """(conversations.info calls, conversations.list calls) that reached fakeslack."""
    return len(s.fake.calls_of("conversations.info")), len(s.fake.calls_of("conversations.list"))


async def test_run_command_with_made_up_ids_is_refused_naming_them(scenario: Scenario) -> None:
    s = scenario
    fake = made_up(40)
    general = s.channels["general"]
    seen = await s.command(f"run days=1 channels={','.join([general, *fake])}", s.member)
    reply = seen.reply_text()
    assert "No channel found for" in reply and fake[0] in reply, reply
    assert "and 3" in reply and "more" in reply, reply  # a few named, then "and N more"
    assert general not in reply.split("Accepted")[0]
    assert "Nothing was changed" in reply and "Accepted" in reply, reply
    assert await s.runs() == []
    info, listed = slack_lookups(s)
    assert info == 0, "a conversations.info call per id"
    assert 1 <= listed <= 2  # one walk of the channel list (a second only for a stale cache)


async def test_run_command_naming_a_thousand_channels_is_refused_before_any_lookup(
    scenario: Scenario,
) -> None:
    s = scenario
    seen = await s.command(f"run days=1 channels={','.join(made_up(1000))}", s.member)
    reply = seen.reply_text()
    assert "Too many channels (1000)" in reply and f"at most {MAX_CHANNELS}" in reply, reply
    assert await s.runs() == []
    assert slack_lookups(s) == (0, 0)
    # The admin's own run is not blocked by anything.
    seen = await s.command("run days=1", s.admin)
    assert "started" in seen.reply_text(), seen.reply_text()
    await s.wait_run_status(1, "success")


async def test_run_command_with_real_ids_still_starts(scenario: Scenario) -> None:
    s = scenario
    general = s.channels["general"]
    seen = await s.command(f"run days=2 channels={general},#random", s.admin)
    assert "started" in seen.reply_text(), seen.reply_text()
    assert "#general" in seen.reply_text() and "#random" in seen.reply_text()
    row = await s.wait_run_status(1, "success")
    assert row["channels_processed"] == 2
    assert s.fake.calls_of("conversations.info") == []


async def test_schedule_command_with_made_up_ids_stores_nothing(scenario: Scenario) -> None:
    s = scenario
    general = s.channels["general"]
    seen = await s.command(
        f'schedule "0 2 * * *" channels={general},{",".join(made_up(12))}', s.admin
    )
    reply = seen.reply_text()
    assert "No channel found for" in reply and "C0MADEUP0000" in reply, reply
    assert await s.schedules() == []
    assert s.fake.calls_of("conversations.info") == []
    seen = await s.command(f'schedule "0 2 * * *" channels={",".join(made_up(1000))}', s.admin)
    assert f"at most {MAX_CHANNELS}" in seen.reply_text(), seen.reply_text()
    assert await s.schedules() == []
    # Real ids are still stored.
    seen = await s.command(f'schedule "0 2 * * *" channels={general}', s.admin)
    [row] = await s.schedules()
    assert row["channel_ids"] == [general] or row["channel_ids"] == f'["{general}"]'


async def test_forged_modal_submissions_with_made_up_ids_are_refused_inline(
    scenario: Scenario,
) -> None:
    s = scenario
    general = s.channels["general"]
    run_modal = (await s.command("run", s.member)).opened[0]
    schedule_modal = (await s.command("schedule", s.admin)).opened[0]
    fake = made_up(9)

    seen = await s.submit(
        s.member, run_modal, run_values(days="1", scope=ids.SCOPE_CHOSEN, channels=[general, *fake])
    )
    assert seen.status == 200 and seen.ack["response_action"] == "errors", seen.ack
    error = seen.ack["errors"][ids.RUN_CHANNELS_BLOCK]
    assert "No channel found for" in error and fake[0] in error and "more" in error, error
    assert "public channels" in error  # what is accepted

    seen = await s.submit(
        s.admin, schedule_modal, schedule_values(scope=ids.SCOPE_CHOSEN, channels=[*fake, general])
    )
    assert seen.status == 200 and seen.ack["response_action"] == "errors", seen.ack
    error = seen.ack["errors"][ids.SCHEDULE_CHANNELS_BLOCK]
    assert "No channel found for" in error and fake[0] in error, error

    for modal, values, block, user in (
        (
            run_modal,
            run_values(days="1", scope=ids.SCOPE_CHOSEN, channels=made_up(1000)),
            ids.RUN_CHANNELS_BLOCK,
            s.member,
        ),
        (
            schedule_modal,
            schedule_values(scope=ids.SCOPE_CHOSEN, channels=made_up(1000)),
            ids.SCHEDULE_CHANNELS_BLOCK,
            s.admin,
        ),
    ):
        seen = await s.submit(user, modal, values)
        assert seen.ack["response_action"] == "errors", seen.ack
        assert f"at most {MAX_CHANNELS}" in seen.ack["errors"][block]

    assert await s.runs() == [] and await s.schedules() == []
    assert s.fake.calls_of("conversations.info") == []

    # The same forms with real channels go through.
    seen = await s.submit(
        s.admin, schedule_modal, schedule_values(scope=ids.SCOPE_CHOSEN, channels=[general])
    )
    assert seen.ack == "", seen.ack
    await s.eventually(s.schedules, what="the schedule row")


async def test_modal_lookup_that_cannot_finish_in_time_acks_then_follows_up(
    scenario: Scenario,
) -> None:
    """Slack waits 3 s for a modal's acknowledgement: a slow channel list means ack (the form
    closes) and a DM that says the form was refused and why."""
    s = scenario
    run_modal = (await s.command("run", s.member)).opened[0]
    s.fake.faults.slow(2.5, method="conversations.list")
    seen = await s.submit(
        s.member, run_modal, run_values(days="1", scope=ids.SCOPE_CHOSEN, channels=made_up(3))
    )
    assert seen.status == 200 and seen.ack == "", seen.ack
    dm = await s.dm_with(s.member, "No channel found for")
    assert "C0MADEUP0000" in dm["text"] and "not started" in dm["text"], dm["text"]
    s.fast_again()
    assert await s.runs() == []


WRONG_TYPES: list[Any] = [
    {ids.RUN_DAYS_BLOCK: {ids.RUN_DAYS_ACTION: {"type": "number_input", "value": 5}}},
    {
        ids.RUN_DAYS_BLOCK: {ids.RUN_DAYS_ACTION: {"value": ["1"]}},
        ids.RUN_SCOPE_BLOCK: {ids.RUN_SCOPE_ACTION: {"selected_option": "chosen"}},
        ids.RUN_CHANNELS_BLOCK: {ids.RUN_CHANNELS_ACTION: {"selected_conversations": "C1"}},
    },
    {ids.RUN_DAYS_BLOCK: {ids.RUN_DAYS_ACTION: None}},
    {ids.RUN_DAYS_BLOCK: [1, 2]},
    {
        ids.RUN_DAYS_BLOCK: {ids.RUN_DAYS_ACTION: {"value": {"n": 3}}},
        ids.RUN_SCOPE_BLOCK: {ids.RUN_SCOPE_ACTION: {"selected_option": {"value": ["chosen"]}}},
        ids.RUN_CHANNELS_BLOCK: {
            ids.RUN_CHANNELS_ACTION: {"selected_conversations": {"a": 1}, "selected_options": 7}
        },
    },
    [],
    None,
    "values",
    7,
]


async def test_forged_modal_state_of_wrong_types_is_an_inline_error(scenario: Scenario) -> None:
    """Never a 500: an inline error in the form, or the request refused as malformed (400)."""
    s = scenario
    run_modal = (await s.command("run", s.member)).opened[0]
    schedule_modal = (await s.command("schedule", s.admin)).opened[0]
    answered_inline = 0
    for values in WRONG_TYPES:
        for user, modal in ((s.member, run_modal), (s.admin, schedule_modal)):
            seen = await s.submit(user, modal, values)
            assert seen.status in (200, 400), (values, seen.status)
            if seen.status == 200:
                assert isinstance(seen.ack, dict), (values, user, seen)
                assert seen.ack["response_action"] == "errors", (values, seen.ack)
                answered_inline += 1
    # The state itself of the wrong type (not `{"values": …}`).
    for state in ([], [1], "x", 3):
        for user, modal in ((s.member, run_modal), (s.admin, schedule_modal)):
            seen = await _submit_state(s, user, modal, state)
            assert seen.status in (200, 400), (state, seen.status)
            if seen.status == 200:
                assert seen.ack["response_action"] == "errors", (state, seen.ack)
                answered_inline += 1
    assert answered_inline  # some reach the form's parser, whatever the front refuses
    assert await s.runs() == [] and await s.schedules() == []


async def _submit_state(s: Scenario, user: str, modal: dict[str, Any], state: Any) -> Any:
    """A view_submission whose `view.state` itself is `state`."""
    from fakeslack.outgoing import form_headers, interaction_body

    payload = {
        "type": "view_submission",
        "team": {"id": s.team_id, "domain": "fake"},
        "user": {"id": user, "username": user, "name": user, "team_id": s.team_id},
        "api_app_id": s.fake.workspace.app_id,
        "token": "deprecated",
        "trigger_id": s.fake.new_trigger_id(user),
        "view": {**modal, "state": state},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    body = interaction_body(payload)
    return await s.post(body, form_headers(body, s.fake.signing_secret))


async def test_a_run_carrying_unknown_ids_skips_them_with_one_list_walk(scenario: Scenario) -> None:
    """A run whose stored ids are partly unknown (a schedule stored before ids were checked, a
    retried old run, a channel deleted since) is set up with one list walk and ends on its own."""
    s = scenario
    general = s.channels["general"]
    run = await s.rt.deps.runs.start_manual(
        s.team_id, s.admin, days=1, channel_ids=[*made_up(1000), general]
    )
    row = await s.wait_run_status(run.job_run_id, "success")
    assert row["channels_processed"] == 1
    assert s.fake.calls_of("conversations.info") == []
    assert len(s.fake.calls_of("conversations.list")) <= 2
    assert {c.args.get("channel") for c in s.fake.calls_of("conversations.history")} == {general}
    seen = await s.command("run days=1", s.admin)  # the slot is free again
    assert "started" in seen.reply_text(), seen.reply_text()
    await s.idle()
