"""DMs about a run: summary, failure and progress, with goldens and huge inputs."""

from __future__ import annotations

import json
from dataclasses import replace

from blocks import ids
from blocks.dm import (
    run_failure_blocks,
    run_failure_text,
    run_progress_blocks,
    run_progress_text,
    run_summary_blocks,
    run_summary_text,
)
from db.records import Progress, Run
from tests.blocks.samples import FAILED, LONG_ERROR, NOW, PROGRESS, SUCCESS, many_skipped
from tests.blocks.slack_limits import assert_golden, check_message
from tests.scenarios.harness import block_text


def test_run_summary_golden() -> None:
    blocks = run_summary_blocks(SUCCESS, now=NOW, viewer_tz="Europe/Paris")
    check_message(blocks, run_summary_text(SUCCESS, now=NOW))
    assert_golden("dm_run_summary", blocks)
    text = json.dumps(blocks)
    assert "12,345" in text and "3 min 12 s" in text and "archived" in text
    assert run_summary_text(SUCCESS, now=NOW) == (
        "Backfill finished: run #11 stored 12,345 messages from 42 channels in 3 min 12 s; "
        "removed 37 messages deleted in Slack; 2 channels skipped."
    )


def test_run_summary_says_how_many_messages_were_removed() -> None:
    def removed_field(run: Run) -> list[str]:
        blocks = run_summary_blocks(run, now=NOW)
        check_message(blocks, run_summary_text(run, now=NOW))
        fields = [f["text"] for b in blocks for f in b.get("fields", [])]
        return [f for f in fields if f.startswith("*Removed")]

    assert removed_field(SUCCESS) == ["*Removed (deleted in Slack)*\n37"]
    one = replace(SUCCESS, messages_removed=1)
    assert "removed 1 message deleted in Slack;" in run_summary_text(one, now=NOW)
    # Pruned and found nothing gone: said in the blocks, not in the notification text.
    none_gone = replace(SUCCESS, messages_removed=0)
    assert removed_field(none_gone) == ["*Removed (deleted in Slack)*\n0"]
    assert "removed" not in run_summary_text(none_gone, now=NOW)
    # A run that did not prune (PRUNE_DELETED=false, or from before) says nothing about it.
    not_pruned = replace(SUCCESS, messages_removed=None)
    assert removed_field(not_pruned) == []
    assert "removed" not in run_summary_text(not_pruned, now=NOW)
    huge = replace(SUCCESS, messages_removed=1_234_567)
    assert removed_field(huge) == ["*Removed (deleted in Slack)*\n1,234,567"]


def test_run_summary_with_hundreds_of_skipped_channels() -> None:
    run = replace(SUCCESS, channels_skipped=many_skipped(900, reasons=40), error_message=LONG_ERROR)
    blocks = run_summary_blocks(run, now=NOW)
    check_message(blocks, run_summary_text(run, now=NOW))
    text = json.dumps(blocks)
    assert "Skipped channels (900)" in text
    assert "skipped for 32 other reasons" in text
    assert "more" in text
    one_reason = replace(SUCCESS, channels_skipped=many_skipped(600, reasons=1))
    check_message(run_summary_blocks(one_reason, now=NOW))
    assert "and 5" in json.dumps(run_summary_blocks(one_reason, now=NOW))


def test_run_summary_cancelled_and_odd_triples() -> None:
    run = Run(
        job_run_id=5,
        workspace_id="T0000000001",
        started_at=NOW,
        job_type="manual",
        status="cancelled",
        triggered_by="U0MEMBER001",
        channels_skipped=(("C1", None, "archived"), ("", "", ""), ("C2",), None),  # type: ignore[arg-type]
    )
    blocks = run_summary_blocks(run, now=NOW)
    check_message(blocks, run_summary_text(run, now=NOW))
    assert "cancelled" in json.dumps(blocks)


def test_run_failure_golden() -> None:
    blocks = run_failure_blocks(
        FAILED, action_taken="Retrying in 5 min (attempt 2 of 3).", retry_allowed=True
    )
    check_message(
        blocks, run_failure_text(FAILED, action_taken="Retrying in 5 min (attempt 2 of 3).")
    )
    assert_golden("dm_run_failure", blocks)
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [(ids.DM_RETRY_RUN, "10")]


def test_run_failure_with_a_huge_error_and_no_retry() -> None:
    run = replace(FAILED, error_message="```" + LONG_ERROR + "<!everyone>")
    blocks = run_failure_blocks(
        run, action_taken="The schedule is paused. " * 500, retry_allowed=False
    )
    text = run_failure_text(run, action_taken="The schedule is paused.")
    check_message(blocks, text)
    rendered = json.dumps(blocks)
    assert ids.DM_RETRY_RUN not in rendered
    assert "The error was cut" in rendered and "<!everyone>" not in rendered
    assert len(text) <= 3000
    check_message(
        run_failure_blocks(
            replace(FAILED, error_message=None, started_at=None),
            action_taken="",
            retry_allowed=True,
        )
    )


def test_run_progress_golden() -> None:
    blocks = run_progress_blocks(PROGRESS, now=NOW, viewer_tz="Europe/Paris")
    check_message(blocks, run_progress_text(PROGRESS, now=NOW))
    assert_golden("dm_run_progress", blocks)
    rendered = json.dumps(blocks, ensure_ascii=False)
    assert "██████░░░░░░░░░░░░░░ 30%" in rendered and ids.DM_CANCEL_RUN in rendered
    assert run_progress_text(PROGRESS, now=NOW) == (
        "Backfill in progress: 12 of 40 channels, 3,456 messages stored, time left about 10 min 10 s (around 14:15 UTC)."
    )


def test_run_progress_before_any_estimate_and_with_odd_numbers() -> None:
    start = Progress(channels_done=0, channels_total=0, messages_stored=0)
    blocks = run_progress_blocks(start, now=NOW)
    check_message(blocks, run_progress_text(start, now=NOW))
    assert "estimating" in json.dumps(blocks)
    odd = Progress(
        channels_done=-5,
        channels_total=-1,
        messages_stored=-3,
        current_channel="#" + "x" * 9000,
        calls=-1,
        rate_limit_waits=10**12,
        eta_s=float("nan"),
        started_at=NOW.replace(tzinfo=None),
        job_run_id=7,
    )
    check_message(run_progress_blocks(odd, now=NOW), run_progress_text(odd, now=NOW))
    check_message(run_progress_blocks(replace(odd, eta_s=1e300), now=NOW))


def test_run_dms_show_what_the_run_asked_of_slack() -> None:
    """Calls per method, time waited for Slack's limits, 429s and a learned even spacing: in the
    summary and the failure DM; a run from before the figures existed shows none."""
    shown = block_text(run_summary_blocks(SUCCESS, now=NOW))
    assert "124 Slack calls, 1 min 12 s waiting for Slack's limits" in shown
    assert (
        "`conversations.history` 64 · `conversations.replies` 58 (waited 1 min 12 s, 429 ×1)"
        in shown
    )
    assert "Slack answered 429 to conversations.replies: evenly spaced" in shown
    failed = replace(FAILED, slack_calls=SUCCESS.slack_calls)
    assert "124 Slack calls" in block_text(
        run_failure_blocks(failed, action_taken="Retrying in 5 min.", retry_allowed=True)
    )
    assert "Slack calls" not in block_text(
        run_summary_blocks(replace(SUCCESS, slack_calls=()), now=NOW)
    )
