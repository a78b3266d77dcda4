"""Direct messages about a run: its progress (updated in place), its summary, its failure.

Each `*_blocks` builder has a `*_text` twin: the notification fallback for `chat.postMessage`'s
`text`. Pure: plain data and `now` in; imports only `blocks.*` and `slack_sdk.models`. Whatever the
data (hundreds of skipped channels, a 50,000-character error), a message stays within Slack's limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
)

from blocks import ids
from blocks.elements import (
    MAX_FALLBACK_TEXT,
    MAX_MESSAGE_BLOCKS,
    button_text,
    cancel_run_button,
    context,
    fields_section,
    header,
    section,
)
from blocks.lines import (
    run_trigger,
    skipped_groups,
    slack_calls_detail,
    slack_calls_summary,
    status_emoji,
)
from blocks.progress import eta_text, progress_bar
from blocks.text import (
    channel_label,
    format_count,
    mrkdwn_text,
    one_line,
    pack_lines,
    plural,
    truncate,
)
from blocks.times import duration_between, format_duration, format_time
from db.records import Progress, Run

ERROR_SHOWN_CHARS = 1500
TITLES = {
    "success": "Backfill finished",
    "cancelled": "Backfill cancelled",
    "failed": "Backfill failed",
    "running": "Backfill running",
}


def _dicts(blocks: list[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks[:MAX_MESSAGE_BLOCKS]]


# --- summary -----------------------------------------------------------------------------------------


def run_summary_blocks(
    run: Run, *, now: datetime, viewer_tz: str | None = "UTC"
) -> list[dict[str, Any]]:
    """A finished (or cancelled) run: counts (with the stored messages it removed because Slack no
    longer had them, when it pruned), duration, channels skipped grouped by reason."""
    title = f"{TITLES.get(run.status, 'Backfill ended')}: run #{run.job_run_id}"
    blocks: list[Block] = [header(title)]
    took = duration_between(run.started_at, run.completed_at or now)
    window = f"last {plural(run.days, 'day')}" if run.days else "as scheduled"
    counts = [f"*Messages stored*\n{format_count(run.messages_collected)}"]
    if run.messages_removed is not None:
        counts.append(f"*Removed (deleted in Slack)*\n{format_count(run.messages_removed)}")
    blocks.append(
        fields_section(
            [
                *counts,
                f"*Channels processed*\n{format_count(run.channels_processed)}",
                f"*Channels skipped*\n{format_count(len(run.channels_skipped))}",
                f"*Duration*\n{format_duration(took)}",
                f"*Window*\n{window}",
                f"*Started*\n{format_time(run.started_at, viewer_tz)} · {run_trigger(run)}",
            ]
        )
    )
    blocks += _slack_calls_blocks(run)
    if run.channels_skipped:
        lines = [f"*Skipped channels ({format_count(len(run.channels_skipped))})*"]
        lines += skipped_groups(run.channels_skipped, max_groups=8, per_group_chars=300)
        blocks += [section(chunk) for chunk in pack_lines(lines, max_chars=2900)]
    if run.status == "cancelled":
        blocks.append(context("The run was cancelled; what it stored before stopping is kept."))
    if run.error_message:
        blocks.append(context(f"Note: {mrkdwn_text(one_line(run.error_message), 500)}"))
    return _dicts(blocks)


def _slack_calls_blocks(run: Run) -> list[Block]:
    """What the run asked of Slack, per method, and how long it waited for Slack's limits."""
    if not run.slack_calls:
        return []
    summary = slack_calls_summary(run.slack_calls)
    return [section(f"*Slack*: {summary}"), context(slack_calls_detail(run.slack_calls))]


def run_summary_text(run: Run, *, now: datetime) -> str:
    took = duration_between(run.started_at, run.completed_at or now)
    text = (
        f"{TITLES.get(run.status, 'Backfill ended')}: run #{run.job_run_id} stored "
        f"{plural(run.messages_collected, 'message')} from {plural(run.channels_processed, 'channel')} "
        f"in {format_duration(took)}"
    )
    if run.messages_removed:
        text += f"; removed {plural(run.messages_removed, 'message')} deleted in Slack"
    if run.channels_skipped:
        text += f"; {plural(len(run.channels_skipped), 'channel')} skipped"
    return truncate(text + ".", MAX_FALLBACK_TEXT)


# --- failure -----------------------------------------------------------------------------------------


def run_failure_blocks(
    run: Run, *, action_taken: str, retry_allowed: bool, viewer_tz: str | None = "UTC"
) -> list[dict[str, Any]]:
    """A failed run: the error in plain words (long ones cut), what the app did about it
    (`action_taken`, e.g. "Retrying in 5 min." or "The schedule is paused."), and "Retry now"."""
    error = run.error_message or "The run stopped without an error message."
    shown = mrkdwn_text(error.strip(), ERROR_SHOWN_CHARS)
    took = duration_between(run.started_at, run.completed_at)
    facts = [
        (
            f"{status_emoji('failed')} Run #{run.job_run_id} ({run_trigger(run)}) failed after "
            f"{format_duration(took) if took is not None else 'an unknown time'}, "
            f"having stored {plural(run.messages_collected, 'message')} from {plural(run.channels_processed, 'channel')}."
        ),
        f"Started {format_time(run.started_at, viewer_tz)}.",
    ]
    blocks: list[Block] = [
        header(f"Backfill failed: run #{run.job_run_id}"),
        section("\n".join(facts)),
        section(f"*What went wrong*\n```{shown.replace('```', 'ˋˋˋ')}```"),
        section(
            f"*What happens next*\n{mrkdwn_text(one_line(action_taken) or 'Nothing more.', 1000)}"
        ),
    ]
    blocks += _slack_calls_blocks(run)  # a failure on a slow Slack shows it here
    if len(error) > ERROR_SHOWN_CHARS:
        blocks.append(
            context(
                f"The error was cut: {format_count(len(error))} characters in all, kept on the run."
            )
        )
    if retry_allowed:
        blocks.append(
            ActionsBlock(
                block_id=ids.DM_RUN_ACTIONS_BLOCK,
                elements=[
                    ButtonElement(
                        text=button_text("Retry now"),
                        action_id=ids.DM_RETRY_RUN,
                        value=str(run.job_run_id),
                        style="primary",
                    )
                ],
            )
        )
    return _dicts(blocks)


def run_failure_text(run: Run, *, action_taken: str, retry_allowed: bool = False) -> str:
    error = one_line(run.error_message or "no error message")
    # The error can quote Slack or a channel name: escaped as in the blocks.
    said = f"{mrkdwn_text(error, 500)} {mrkdwn_text(one_line(action_taken), 1000)}"
    text = f"Backfill run #{run.job_run_id} failed: {said}"
    if retry_allowed:
        text += " You can retry it now."
    return truncate(text.strip(), MAX_FALLBACK_TEXT)


# --- progress ------------------------------------------------------------------------------------------


def run_progress_blocks(
    progress: Progress, *, now: datetime, viewer_tz: str | None = "UTC", can_cancel: bool = True
) -> list[dict[str, Any]]:
    """The run in progress (the DM is updated in place): bar, counts, ETA, and Cancel."""
    run_label = f"run #{progress.job_run_id}" if progress.job_run_id is not None else "run"
    lines = [
        f"{status_emoji('running')} *Backfill {run_label} in progress*",
        f"`{progress_bar(progress.channels_done, progress.channels_total)}`",
        (
            f"{format_count(progress.channels_done)} of {plural(progress.channels_total, 'channel')} · "
            f"{plural(progress.messages_stored, 'message')} stored"
        ),
    ]
    if progress.current_channel:
        lines.append(f"Now reading {channel_label(None, progress.current_channel, 80)}")
    lines.append(f"Time left: {eta_text(progress.eta_s, now, viewer_tz)}")
    elapsed = duration_between(progress.started_at, now)
    notes = [
        f"{plural(progress.calls, 'Slack call')}",
        f"{plural(progress.rate_limit_waits, 'rate-limit wait')}",
    ]
    if elapsed is not None:
        notes.insert(0, f"running for {format_duration(elapsed)}")
    blocks: list[Block] = [section("\n".join(lines)), context(" · ".join(notes))]
    if can_cancel and progress.job_run_id is not None:
        blocks.append(
            ActionsBlock(
                block_id=ids.DM_RUN_ACTIONS_BLOCK,
                elements=[cancel_run_button(ids.DM_CANCEL_RUN, progress.job_run_id)],
            )
        )
    return _dicts(blocks)


def run_progress_text(progress: Progress, *, now: datetime, viewer_tz: str | None = "UTC") -> str:
    return truncate(
        f"Backfill in progress: {format_count(progress.channels_done)} of "
        f"{plural(progress.channels_total, 'channel')}, {plural(progress.messages_stored, 'message')} stored, "
        f"time left {eta_text(progress.eta_s, now, viewer_tz)}.",
        MAX_FALLBACK_TEXT,
    )
