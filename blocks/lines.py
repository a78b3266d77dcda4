"""The one-line renderings of a run (home, `/backfill status` and `history`, notification
fallbacks), of a schedule's cron and channels, and of skipped channels grouped by reason, shared
by the Home tab, the command replies and the DMs.

Also what a run asked of Slack (calls per method, time waited for Slack's limits), so an admin can
tell a slow Slack from a slow app.

Pure: imports the standard library, `db.records`, `blocks.text` and `blocks.times` only.
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
from blocks.times import duration_between, format_duration, format_time, relative
from db.records import MirrorStatus, Run, Schedule, SkippedChannel, SlackCalls

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
    if run.slack_calls:
        parts.append(slack_calls_compact(run.slack_calls))
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


# --- what a run asked of Slack -------------------------------------------------------------------


def waited_text(seconds: float) -> str:
    """Time waited for Slack's limits: tenths below ten seconds (they are the common case)."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    return format_duration(seconds)


def slack_calls_total(calls: Sequence[SlackCalls]) -> tuple[int, float]:
    """(calls made, seconds waited for Slack's limits) over every method."""
    return sum(c.calls for c in calls), sum(c.waited_s for c in calls)


def slack_calls_summary(calls: Sequence[SlackCalls]) -> str:
    """`79 Slack calls, 2.5 s waiting for Slack's limits`: the run DM's field (mrkdwn)."""
    total, waited = slack_calls_total(calls)
    return f"{plural(total, 'Slack call')}, {waited_text(waited)} waiting for Slack's limits"


def slack_calls_detail(calls: Sequence[SlackCalls], *, max_methods: int = 8) -> str:
    """Per method, busiest first: `conversations.history 40 (waited 1.2 s) · users.list 1`, and
    which methods a 429 switched to even spacing (mrkdwn)."""
    parts = []
    for c in calls[:max_methods]:
        notes = [f"waited {waited_text(c.waited_s)}"] if c.waited_s >= 0.05 else []
        if c.rate_limited:
            notes.append(f"429 ×{format_count(c.rate_limited)}")
        part = f"`{mrkdwn_text(c.method, 60)}` {format_count(c.calls)}"
        parts.append(part + (f" ({', '.join(notes)})" if notes else ""))
    if len(calls) > max_methods:
        parts.append(f"and {plural(len(calls) - max_methods, 'other method')}")
    text = " · ".join(parts)
    spaced = [c.method for c in calls if c.spaced]
    if spaced:
        names = ", ".join(mrkdwn_text(m, 60) for m in spaced[:max_methods])
        text += f"\nSlack answered 429 to {names}: evenly spaced for the rest of the run."
    return text


def slack_calls_compact(calls: Sequence[SlackCalls], *, max_methods: int = 4) -> str:
    """`79 calls (history 40, replies 38, users.list 1), waited 2.5 s` for one line of
    `/backfill history` (method names without `conversations.`); empty before any figures."""
    if not calls:
        return ""
    total, waited = slack_calls_total(calls)
    per_method = [
        f"{mrkdwn_text(c.method.removeprefix('conversations.'), 40)} {format_count(c.calls)}"
        for c in calls[:max_methods]
    ]
    if len(calls) > max_methods:
        per_method.append("…")
    text = f"{format_count(total)} calls ({', '.join(per_method)})"
    return text + (f", waited {waited_text(waited)}" if waited >= 0.05 else "")


# --- the live mirror --------------------------------------------------------------------------------


def mirror_line(
    status: MirrorStatus, *, tz_name: str | None, now: datetime | None, plain: bool = False
) -> str:
    """The live mirror in one line (mrkdwn, or `plain` for a notification's text): off, or
    events applied today, the newest, and how far behind Slack it is (events waiting)."""
    head = "Live mirror:" if plain else ":satellite_antenna: *Live mirror:*"
    if not status.live:
        return f"{head} off (LIVE_SYNC=false): the copy changes only when a run reads Slack"
    parts = [f"{head} on", f"{plural(status.applied_today, 'event')} applied today"]
    if status.last_event_at is not None:
        newest = format_time(status.last_event_at, tz_name)
        parts.append(
            f"newest {newest}" + (f" ({relative(status.last_event_at, now)})" if now else "")
        )
    if status.backlog:
        behind = f"{plural(status.backlog, 'event')} waiting"
        if status.oldest_waiting_at is not None and now is not None:
            behind += (
                f", {format_duration((now - status.oldest_waiting_at).total_seconds())} behind"
            )
        parts.append(behind)
    else:
        parts.append("up to date")
    return " · ".join(parts)
