"""How a run ends, in words: `decide_outcome` for every kind of ending (pure, table-tested)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.records import Run
from scheduler.backfill.progress import RunResult
from scheduler.outcomes import decide_outcome

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def run(job_type: str = "scheduled", attempt: int = 0) -> Run:
    return Run(
        job_run_id=7,
        workspace_id="T1",
        schedule_id=1 if job_type == "scheduled" else None,
        job_type=job_type,
        status="running",
        messages_collected=0,
        channels_processed=0,
        error_message=None,
        triggered_by="U1",
        started_at=NOW,
        completed_at=None,
        days=7,
        channels_skipped=(),
        attempt=attempt,
    )


def decide(row: Run, result: RunResult, cancel_requested: bool = False):  # type: ignore[no-untyped-def]
    return decide_outcome(
        row, result, cancel_requested=cancel_requested, retries=2, backoff=(60, 300), now=NOW
    )


@pytest.mark.parametrize("job_type", ["scheduled", "manual"])
def test_outcome_success_and_cancel(job_type: str) -> None:
    done = decide(run(job_type), RunResult())
    assert (done.status, done.error_message, done.action, done.retry_at, done.pause_reason) == (
        "success",
        None,
        "",
        None,
        None,
    )
    assert decide(run(job_type), RunResult(cancelled=True)).status == "cancelled"
    # A cancel asked for from another process counts even when the engine finished the page.
    assert decide(run(job_type), RunResult(), cancel_requested=True).status == "cancelled"


def test_outcome_permanent_failure_of_a_schedule_pauses_it_and_never_retries() -> None:
    out = decide(run(), RunResult(error="invalid_auth", error_kind="permanent"))
    assert out.status == "failed" and out.retry_at is None
    assert "Reinstall the app" in (out.error_message or "")
    assert out.pause_reason == out.error_message and "/backfill resume" in out.action


def test_outcome_permanent_failure_of_a_manual_run_pauses_nothing() -> None:
    out = decide(run("manual"), RunResult(error="weird_refusal", error_kind="permanent"))
    assert out.pause_reason is None and out.retry_at is None
    assert out.error_message == "Slack refused the app's request (weird_refusal)."
    assert out.action == "Not retried: this needs a fix first."


@pytest.mark.parametrize(("attempt", "delay"), [(0, 60), (1, 300)])
def test_outcome_transient_failure_of_a_schedule_retries_with_backoff(
    attempt: int, delay: int
) -> None:
    out = decide(run(attempt=attempt), RunResult(error="http_503", error_kind="transient"))
    assert out.status == "failed" and out.pause_reason is None
    assert out.retry_at == NOW + timedelta(seconds=delay)
    assert f"retry {attempt + 1} of 2" in out.action and "usually temporary" in (
        out.error_message or ""
    )


def test_outcome_retries_run_out() -> None:
    out = decide(run(attempt=2), RunResult(error="http_503", error_kind="transient"))
    assert out.retry_at is None and "No more automatic retries (2 made)" in out.action


def test_outcome_manual_runs_are_not_retried_and_internal_errors_point_at_the_log() -> None:
    out = decide(run("manual"), RunResult(error="OperationalError", error_kind="internal"))
    assert out.retry_at is None and out.action == "Not retried automatically."
    assert out.error_message == (
        "The app hit an internal error (OperationalError); the details are in its log."
    )
