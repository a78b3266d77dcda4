"""The schedule and run-now modals: golden renderings, limits, and the submission parsers."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from blocks import ids
from blocks.modals import (
    ModalContext,
    RunFormInput,
    ScheduleFormInput,
    cron_block_id,
    parse_run_submission,
    parse_schedule_submission,
    run_modal,
    schedule_modal,
)
from blocks.models import CronPreset
from tests.blocks.samples import PAUSED_ALL, SCHEDULE, huge_schedule
from tests.blocks.slack_limits import assert_golden, check_view
from tests.support.modal_states import run_state, schedule_state

CTX = ModalContext(team_id="T0TEAM0001", user_id="U0ADMIN0001", channel_id="C0000GENERAL")


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


# --- rendering -------------------------------------------------------------------------------------


def test_schedule_modal_create_golden() -> None:
    view = schedule_modal(None, default_tz="America/New_York", context=CTX)
    check_view(view)
    assert_golden("schedule_modal_create", view)
    cron = block(view, ids.SCHEDULE_CRON_BLOCK)
    assert cron["label"]["text"] == "Cron expression"
    assert "initial_value" not in cron["element"]
    assert block(view, ids.SCHEDULE_TZ_BLOCK)["element"]["initial_value"] == "America/New_York"
    assert block(view, ids.SCHEDULE_DAYS_BLOCK)["element"]["initial_value"] == "7"
    assert block(view, ids.SCHEDULE_DAYS_BLOCK)["label"]["text"] == "Days to backfill"
    assert block(view, ids.SCHEDULE_SCOPE_BLOCK)["label"]["text"] == "Channels"
    assert json.loads(view["private_metadata"])["editing"] is False


def test_schedule_modal_edit_golden() -> None:
    view = schedule_modal(SCHEDULE, default_tz="UTC", context=CTX)
    check_view(view)
    assert_golden("schedule_modal_edit", view)
    assert block(view, ids.SCHEDULE_CRON_BLOCK)["element"]["initial_value"] == "0 2 * * *"
    assert block(view, ids.SCHEDULE_TZ_BLOCK)["element"]["initial_value"] == "Europe/Paris"
    scope = block(view, ids.SCHEDULE_SCOPE_BLOCK)["element"]
    assert scope["initial_option"]["value"] == ids.SCOPE_CHOSEN
    channels = block(view, ids.SCHEDULE_CHANNELS_BLOCK)["element"]
    assert channels["initial_conversations"] == ["C0000GENERAL", "C0000ENG0001"]
    assert channels["filter"] == {"include": ["public", "private"], "exclude_bot_users": True}
    preset = block(view, ids.SCHEDULE_PRESET_BLOCK)["accessory"]
    assert preset["initial_option"]["value"] == "0 2 * * *"
    meta = ModalContext.from_metadata(view["private_metadata"])
    assert meta == replace(CTX, editing=True, schedule_id=1)


def test_schedule_modal_preset_applied_changes_the_cron_block_id() -> None:
    view = schedule_modal(
        SCHEDULE, default_tz="UTC", cron_value="0 6 * * 1-5", context=replace(CTX, cron_revision=3)
    )
    check_view(view)
    cron = block(view, cron_block_id(3))
    assert cron["block_id"] == "schedule_modal.cron.r3"
    assert cron["element"]["initial_value"] == "0 6 * * 1-5"
    assert ModalContext.from_metadata(view["private_metadata"]).cron_revision == 3
    # The parser finds the renamed block and reports where the cron lives.
    parsed = parse_schedule_submission(
        schedule_state(cron="0 6 * * 1-5", cron_block="schedule_modal.cron.r3")
    )
    assert isinstance(parsed, ScheduleFormInput)
    assert parsed.cron_block_id == "schedule_modal.cron.r3"
    errors = parse_schedule_submission(schedule_state(cron="", cron_block="schedule_modal.cron.r3"))
    assert errors == {"schedule_modal.cron.r3": "Enter a cron expression, or pick a preset."}


def test_schedule_modal_paused_all_channels() -> None:
    view = schedule_modal(PAUSED_ALL, default_tz="UTC")
    check_view(view)
    assert (
        block(view, ids.SCHEDULE_SCOPE_BLOCK)["element"]["initial_option"]["value"] == ids.SCOPE_ALL
    )
    assert "initial_conversations" not in block(view, ids.SCHEDULE_CHANNELS_BLOCK)["element"]


def test_schedule_modal_huge_and_odd_input_stays_within_limits() -> None:
    presets = [CronPreset("p" * 500 + str(i), f"{i % 60} * * * *") for i in range(300)]
    presets.append(CronPreset("too long value", "1 " * 200))
    ctx = ModalContext(team_id="T" * 5000, user_id="<bad>", channel_id="C1", cron_revision=10**9)
    view = schedule_modal(
        huge_schedule(1000),
        default_tz="Bad Zone!",
        presets=presets,
        context=ctx,
        cron_value="x" * 5000,
    )
    check_view(view)
    assert (
        len(block(view, ids.SCHEDULE_PRESET_BLOCK)["accessory"]["options"]) == 60
    )  # unique crons only
    tz = block(view, ids.SCHEDULE_TZ_BLOCK)["element"]["initial_value"]
    assert tz == "America/Argentina/ComodRivadavia"
    assert len(view["private_metadata"]) < 300
    empty = schedule_modal(None, default_tz=None, presets=[])
    check_view(empty)
    assert block(empty, ids.SCHEDULE_TZ_BLOCK)["element"]["initial_value"] == "UTC"


def test_run_modal_golden() -> None:
    view = run_modal(default_days=7, context=CTX)
    check_view(view)
    assert_golden("run_modal", view)
    assert view["callback_id"] == ids.RUN_MODAL
    assert block(view, ids.RUN_DAYS_BLOCK)["element"]["initial_value"] == "7"
    check_view(run_modal(default_days=10_000))


def test_modal_context_round_trip_and_garbage() -> None:
    assert ModalContext.from_metadata(CTX.to_metadata()) == CTX
    for garbage in (
        None,
        "",
        "not json",
        "[]",
        '{"rev": "x", "editing": 1, "team": 5}',
        '{"rev": -5}',
        42,
    ):
        assert isinstance(ModalContext.from_metadata(garbage), ModalContext)
    assert ModalContext.from_metadata('{"rev": -5}').cron_revision == 0


# --- submissions -------------------------------------------------------------------------------------


def test_parse_schedule_submission_accepts_a_good_form() -> None:
    parsed = parse_schedule_submission(schedule_state(cron="  0  2 * * *  ", days="30"))
    assert parsed == ScheduleFormInput(
        cron="0 2 * * *", days=30, tz="Europe/Paris", include_all_channels=True, channel_ids=()
    )
    chosen = parse_schedule_submission(
        schedule_state(
            scope="chosen", channels=["C0000GENERAL", "C0000GENERAL", "G0PRIVATE01", 7, "bad"]
        )
    )
    assert isinstance(chosen, ScheduleFormInput)
    assert chosen.include_all_channels is False
    assert chosen.channel_ids == ("C0000GENERAL", "G0PRIVATE01")


def test_parse_schedule_submission_reports_each_bad_field_under_its_block() -> None:
    errors = parse_schedule_submission(
        schedule_state(cron=None, days="0", tz="Europe Paris", scope="chosen", channels=[])
    )
    assert set(errors) == {
        ids.SCHEDULE_CRON_BLOCK,
        ids.SCHEDULE_DAYS_BLOCK,
        ids.SCHEDULE_TZ_BLOCK,
        ids.SCHEDULE_CHANNELS_BLOCK,
    }
    assert errors[ids.SCHEDULE_DAYS_BLOCK] == "Enter a whole number of days from 1 to 365."
    for days in ("366", "1.5", "-3", "", None, "٣", "1e3"):
        assert ids.SCHEDULE_DAYS_BLOCK in parse_schedule_submission(schedule_state(days=days))  # type: ignore[operator]
    picked_but_all = parse_schedule_submission(
        schedule_state(scope="all", channels=["C0000GENERAL"])
    )
    assert set(picked_but_all) == {ids.SCHEDULE_SCOPE_BLOCK}  # type: ignore[arg-type]
    assert parse_schedule_submission(None) == {
        ids.SCHEDULE_CRON_BLOCK: "Enter a cron expression, or pick a preset.",
        ids.SCHEDULE_DAYS_BLOCK: "Enter a whole number of days from 1 to 365.",
        ids.SCHEDULE_TZ_BLOCK: "Enter a time zone such as Europe/Paris or UTC.",
    }


def test_parse_run_submission() -> None:
    assert parse_run_submission(run_state()) == RunFormInput(
        days=3, include_all_channels=True, channel_ids=()
    )
    chosen = parse_run_submission(run_state(scope="chosen", channels=["C0000GENERAL"]))
    assert chosen == RunFormInput(days=3, include_all_channels=False, channel_ids=("C0000GENERAL",))
    assert set(parse_run_submission(run_state(days="x", scope="chosen"))) == {  # type: ignore[arg-type]
        ids.RUN_DAYS_BLOCK,
        ids.RUN_CHANNELS_BLOCK,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=30), children, max_size=4)
    ),
    max_leaves=20,
)
id_keys = st.sampled_from(
    [
        ids.SCHEDULE_CRON_BLOCK,
        "schedule_modal.cron.r2",
        ids.SCHEDULE_DAYS_BLOCK,
        ids.SCHEDULE_TZ_BLOCK,
        ids.SCHEDULE_SCOPE_BLOCK,
        ids.SCHEDULE_CHANNELS_BLOCK,
        ids.RUN_DAYS_BLOCK,
        ids.RUN_SCOPE_BLOCK,
        ids.RUN_CHANNELS_BLOCK,
    ]
) | st.text(max_size=20)
action_keys = st.sampled_from(
    [
        ids.SCHEDULE_CRON_ACTION,
        ids.SCHEDULE_DAYS_ACTION,
        ids.SCHEDULE_TZ_ACTION,
        ids.SCHEDULE_SCOPE_ACTION,
        ids.SCHEDULE_CHANNELS_ACTION,
        ids.RUN_DAYS_ACTION,
        ids.RUN_SCOPE_ACTION,
        ids.RUN_CHANNELS_ACTION,
    ]
) | st.text(max_size=20)
element_values = st.fixed_dictionaries(
    {},
    optional={
        # Wrong types too: numbers, booleans, lists, objects and null where Slack sends text.
        "value": st.none() | st.text(max_size=300) | st.integers() | json_values,
        "selected_option": st.none()
        | st.fixed_dictionaries({"value": st.sampled_from(["all", "chosen"]) | json_values})
        | json_values,
        "selected_options": json_values,
        "selected_conversations": st.lists(
            st.text(max_size=12)
            | st.integers()
            | st.from_regex(r"C[A-Z0-9]{8}", fullmatch=True)
            | json_values,
            max_size=120,
        )
        | json_values,
    },
)
states = st.dictionaries(
    id_keys,
    st.dictionaries(action_keys, element_values | json_values, max_size=3) | json_values,
    max_size=9,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(states, json_values))
def test_parse_submissions_never_raise(values: Any) -> None:
    for parse, kind in (
        (parse_schedule_submission, ScheduleFormInput),
        (parse_run_submission, RunFormInput),
    ):
        result = parse(values)
        assert isinstance(result, (kind, dict))
        if isinstance(result, dict):
            assert result and all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in result.items()
            )
            assert all(len(v) <= 2000 for v in result.values())


@settings(max_examples=100, deadline=None)
@given(
    cron=st.text(max_size=300),
    days=st.text(max_size=8),
    tz=st.text(max_size=80),
    scope=st.sampled_from(["all", "chosen", None]),
    channels=st.lists(st.from_regex(r"[CG][A-Z0-9]{8}", fullmatch=True), max_size=5),
)
def test_parse_schedule_submission_accepted_forms_are_sane(
    cron: str, days: str, tz: str, scope: Any, channels: list[str]
) -> None:
    result = parse_schedule_submission(
        schedule_state(cron=cron, days=days, tz=tz, scope=scope, channels=channels)
    )
    if isinstance(result, ScheduleFormInput):
        assert result.cron and len(result.cron) <= 200 and 1 <= result.days <= 365 and result.tz
        assert result.include_all_channels == (not result.channel_ids)


def test_parse_submissions_cap_the_chosen_channels() -> None:
    """One cap (`blocks.limits.MAX_CHANNELS`) for the forms as for the command and the schedule."""
    from blocks.limits import MAX_CHANNELS

    at_cap = [f"C{i:08d}" for i in range(MAX_CHANNELS)]
    over = [f"C{i:08d}" for i in range(50_000)]
    parsed = parse_run_submission(run_state(scope="chosen", channels=at_cap))
    assert isinstance(parsed, RunFormInput) and len(parsed.channel_ids) == MAX_CHANNELS
    for parse, state, block_id in (
        (
            parse_run_submission,
            run_state(scope="chosen", channels=at_cap + ["C99999999"]),
            ids.RUN_CHANNELS_BLOCK,
        ),
        (parse_run_submission, run_state(scope="chosen", channels=over), ids.RUN_CHANNELS_BLOCK),
        (
            parse_schedule_submission,
            schedule_state(scope="chosen", channels=over),
            ids.SCHEDULE_CHANNELS_BLOCK,
        ),
    ):
        errors = parse(state)
        assert isinstance(errors, dict)
        assert f"at most {MAX_CHANNELS}" in errors[block_id]
