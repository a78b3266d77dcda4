"""Whatever the data, every builder renders a surface Slack accepts (hypothesis over the models)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks.dm import (
    run_failure_blocks,
    run_failure_text,
    run_progress_blocks,
    run_progress_text,
    run_summary_blocks,
    run_summary_text,
)
from blocks.home import home_view
from blocks.modals import schedule_modal
from blocks.replies import history_reply, list_reply, run_in_progress_reply, status_reply
from db.records import Progress, Run, Schedule, SkippedChannel, SlackCalls, Totals
from tests.blocks.slack_limits import check_message, check_view

NOW = datetime(2026, 3, 3, 14, 5, tzinfo=UTC)
texts = st.text(max_size=300)
ids_ = st.one_of(st.from_regex(r"[CGU][A-Z0-9]{8}", fullmatch=True), st.text(max_size=20))
times = st.none() | st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC) | st.none(),
)
counts = st.integers(min_value=-(10**6), max_value=10**15)
zones = st.sampled_from(
    ["UTC", "Europe/Paris", "Asia/Kathmandu", "Bad/Zone", "", "Pacific/Chatham"]
)
skipped = st.lists(st.builds(SkippedChannel, ids_, st.none() | texts, texts), max_size=60)
runs = st.builds(
    Run,
    job_run_id=st.integers(min_value=0, max_value=10**12),
    workspace_id=ids_,
    job_type=st.sampled_from(["manual", "scheduled"]) | texts,
    status=st.sampled_from(["running", "success", "failed", "cancelled"]) | texts,
    messages_collected=counts,
    channels_processed=counts,
    started_at=times,
    completed_at=times,
    error_message=st.none() | st.text(max_size=6000),
    triggered_by=st.none() | ids_,
    channels_skipped=skipped.map(tuple),
    days=st.none() | st.integers(min_value=-5, max_value=10**6),
    slack_calls=st.lists(
        st.builds(
            SlackCalls,
            texts,
            counts,
            st.floats(allow_nan=True, allow_infinity=True),
            counts,
            st.booleans(),
        ),
        max_size=30,
    ).map(tuple),
)
schedules = st.builds(
    Schedule,
    schedule_id=st.integers(min_value=0, max_value=10**9),
    workspace_id=ids_,
    cron_expression=texts,
    timezone=texts | zones,
    days_to_backfill=st.integers(min_value=-5, max_value=10**6),
    include_all_channels=st.booleans(),
    channel_ids=st.lists(ids_, max_size=120).map(tuple),
    is_active=st.booleans(),
    next_run_at=times,
    last_run_at=times,
    created_by=st.none() | ids_,
)
progresses = st.builds(
    Progress,
    channels_done=counts,
    channels_total=counts,
    messages_stored=counts,
    current_channel=st.none() | texts,
    calls=counts,
    rate_limit_waits=counts,
    eta_s=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    started_at=times,
    job_run_id=st.none() | st.integers(min_value=0, max_value=10**9),
)
common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(
    st.none() | schedules,
    st.none() | runs,
    st.none() | progresses,
    st.lists(runs, max_size=25),
    st.booleans(),
    st.booleans(),
    zones,
)
def test_home_view_always_fits(schedule, running, progress, recent, is_admin, can_run, tz) -> None:  # type: ignore[no-untyped-def]
    view = home_view(
        schedule,
        running,
        progress,
        recent,
        Totals(messages_stored=10**12, channels=5, last_success_at=NOW),
        is_admin=is_admin,
        members_can_run=can_run,
        viewer_tz=tz,
        now=NOW,
    )
    check_view(view)


@common
@given(st.none() | schedules, zones)
def test_schedule_modal_and_list_always_fit(schedule, tz) -> None:  # type: ignore[no-untyped-def]
    check_view(schedule_modal(schedule, default_tz=tz))
    reply = list_reply(schedule, viewer_tz=tz, now=NOW)
    check_message(reply.blocks, reply.text)


@common
@given(runs, progresses, st.lists(runs, max_size=120), texts, st.booleans(), zones)
def test_messages_always_fit(run, progress, many, action, retry, tz) -> None:  # type: ignore[no-untyped-def]
    check_message(run_summary_blocks(run, now=NOW, viewer_tz=tz), run_summary_text(run, now=NOW))
    check_message(
        run_failure_blocks(run, action_taken=action, retry_allowed=retry),
        run_failure_text(run, action_taken=action),
    )
    check_message(run_progress_blocks(progress, now=NOW), run_progress_text(progress, now=NOW))
    for reply in (
        status_reply(run, progress, many, viewer_tz=tz, now=NOW, can_cancel=retry),
        history_reply(many, 100, viewer_tz=tz, now=NOW),
        run_in_progress_reply(run, viewer_tz=tz, now=NOW),
    ):
        check_message(reply.blocks, reply.text)
