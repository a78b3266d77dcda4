"""The one-line renderings of a run (home, `/backfill status` and `history`, notification
fallbacks), of a schedule's cron and channels, and of skipped channels grouped by reason, shared
by the Home tab, the command replies and the DMs.

Pure: imports the standard library, `blocks.models`, `blocks.text` and `blocks.times` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from blocks.cron_words import describe_cron
from blocks.text import (
    channel_label,
    code,
    format_count,
    join_limited,
    mrkdwn_text,
    one_line,
    plural,
    truncate,
    user_mention,
)
from blocks.times import duration_between, format_duration, format_time
from db.records import Run, Schedule, SkippedChannel

STATUS_EMOJI = {
    "running": ":hourglass_flowing_sand:",
    "success": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
}
STATUS_WORD = {
    "running": "running",
    "success": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


def status_emoji(status: str) -> str:
    return STATUS_EMOJI.get(status, ":grey_question:")


def run_trigger(run: Run) -> str:
    """`manual, by <@U1>` or `scheduled`."""
    if run.job_type == "manual" or run.triggered_by:
        return f"manual, by {user_mention(run.triggered_by)}"
    return "scheduled"


def run_duration(run: Run, now: datetime | None) -> float | None:
    """How long the run took, or has been running (None when unknown)."""
    end = run.completed_at
    if end is None and run.status == "running":
        end = now
    return duration_between(run.started_at, end)


def run_line(run: Run, *, tz_name: str | None, now: datetime | None, error_limit: int = 300) -> str:
    """Two or three mrkdwn lines for one run (home, `/backfill status`)."""
    status = STATUS_WORD.get(run.status, mrkdwn_text(run.status, 20))
    head = (
        f"{status_emoji(run.status)} *Run #{run.job_run_id}* {status} · {run_trigger(run)} · "
        f"started {format_time(run.started_at, tz_name)}"
    )
    facts = [plural(run.messages_collected, "message"), plural(run.channels_processed, "channel")]
    took = run_duration(run, now)
    if took is not None:
        facts.append(
            ("running for " if run.status == "running" else "took ") + format_duration(took)
        )
    if run.channels_skipped:
        facts.append(f"{format_count(len(run.channels_skipped))} skipped")
    lines = [head, " · ".join(facts)]
    if run.error_message and error_limit > 0:
        lines.append("> " + mrkdwn_text(one_line(run.error_message), error_limit))
    return "\n".join(lines)


def run_compact_line(
    run: Run, *, tz_name: str | None, now: datetime | None, error_limit: int = 80
) -> str:
    """One mrkdwn line per run (`/backfill history`, up to 100 lines)."""
    took = run_duration(run, now)
    parts = [
        f"{status_emoji(run.status)} *#{run.job_run_id}*",
        format_time(run.started_at, tz_name),
        "manual" if run.job_type == "manual" else "scheduled",
        f"{format_count(run.messages_collected)} msgs",
        f"{format_count(run.channels_processed)} ch",
    ]
    if took is not None:
        parts.append(format_duration(took))
    if run.error_message and error_limit > 0:
        parts.append(
            "_" + mrkdwn_text(one_line(run.error_message).replace("_", " "), error_limit) + "_"
        )
    return " · ".join(parts)


def run_plain_line(run: Run, *, tz_name: str | None, now: datetime | None) -> str:
    """One plain-text line per run (notification fallbacks)."""
    took = run_duration(run, now)
    text = (
        f"Run #{run.job_run_id} {STATUS_WORD.get(run.status, run.status)}: "
        f"{plural(run.messages_collected, 'message')}, {plural(run.channels_processed, 'channel')}"
    )
    if took is not None:
        text += f", {format_duration(took)}"
    text += f", started {format_time(run.started_at, tz_name)}"
    return truncate(one_line(text), 300)


def channels_summary(schedule: Schedule, *, max_chars: int = 600, max_items: int = 20) -> str:
    """`all channels`, or `#a, #b and 12 more` (mrkdwn)."""
    if schedule.include_all_channels or not schedule.channel_ids:
        return "all channels"
    labels = [channel_label(c, None, 80) for c in schedule.channel_ids]
    return join_limited(labels, max_chars=max_chars, max_items=max_items)


def cron_words(schedule: Schedule, limit: int = 300) -> str:
    """The cron in words (bold) with the expression itself in code: `*At 02:00 AM* (`0 2 * * *`)`."""
    words = one_line(describe_cron(schedule.cron_expression))
    words = words[:1].upper() + words[1:] if words else ""
    expr = code(schedule.cron_expression, 120)
    return f"*{mrkdwn_text(words.replace('*', '∗'), limit)}* ({expr})" if words else expr


def skipped_groups(
    skipped: Sequence[SkippedChannel],
    *,
    max_groups: int = 8,
    per_group_chars: int = 300,
) -> list[str]:
    """Skipped channels grouped by reason, biggest group first: `• archived (200): #a, #b and 198 more`."""
    groups: dict[str, list[str]] = {}
    for entry in skipped:
        try:
            channel_id, name, reason = entry[0], entry[1], entry[2]
        except (IndexError, TypeError):
            continue
        key = one_line(str(reason or "unknown reason"))[:120] or "unknown reason"
        groups.setdefault(key, []).append(channel_label(str(channel_id or ""), name or None, 80))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [
        f"• {mrkdwn_text(reason, 120)} ({format_count(len(labels))}): "
        + join_limited(labels, max_chars=per_group_chars, max_items=25)
        for reason, labels in ordered[:max_groups]
    ]
    rest = ordered[max_groups:]
    if rest:
        hidden = sum(len(labels) for _, labels in rest)
        lines.append(
            f"• and {plural(hidden, 'channel')} skipped for {plural(len(rest), 'other reason')}"
        )
    return lines
