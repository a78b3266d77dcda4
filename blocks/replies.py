"""Ephemeral replies to `/backfill` and to buttons: status, list, history, confirmations, refusals
and errors. Each builder returns a `Reply` (fallback `text` plus `blocks`), ready for
`ack(**reply.as_kwargs())` or `respond(**reply.as_kwargs())`.

Pure: plain data and `now` in; imports only `blocks.*` and `slack_sdk.models`. Every reply stays
within a message's limits (≤ 50 blocks, section text ≤ 3000, total text under the undocumented
`msg_blocks_too_long` ceiling). One module (~470 lines) because every reply shares the `Reply`
type, the limits check and the wording of refusals; split by reply it would scatter one voice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
)

from blocks import ids
from blocks.cron_words import describe_cron
from blocks.elements import (
    MAX_FALLBACK_TEXT,
    MAX_MESSAGE_BLOCKS,
    MESSAGE_TEXT_BUDGET,
    cancel_run_button,
    context,
    section,
)
from blocks.help import USAGE_BY_COMMAND, usage_blocks, usage_text
from blocks.lines import (
    channels_summary,
    cron_words,
    mirror_line,
    run_compact_line,
    run_line,
    run_plain_line,
    run_trigger,
)
from blocks.models import ChannelRef
from blocks.progress import eta_text, progress_bar
from blocks.text import (
    app_text,
    channel_label,
    channel_plain,
    escape_mrkdwn,
    escape_text,
    format_count,
    join_limited,
    mrkdwn_text,
    one_line,
    pack_lines,
    plural,
    truncate,
    user_mention,
    user_plain,
)
from blocks.times import format_time, relative
from db.records import MirrorStatus, Progress, Run, Schedule

STATUS_RECENT_RUNS = 5


@dataclass(frozen=True, slots=True)
class Reply:
    """A message: `text` is the notification fallback, `blocks` what people see."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self, response_type: str = "ephemeral") -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks, "response_type": response_type}


def _reply(text: str, blocks: Sequence[Block]) -> Reply:
    return Reply(
        text=truncate(text, MAX_FALLBACK_TEXT),
        blocks=[b.to_dict() for b in list(blocks)[:MAX_MESSAGE_BLOCKS]],
    )


def _simple(emoji: str, mrkdwn: str, plain: str, *notes: str) -> Reply:
    blocks: list[Block] = [section(f"{emoji} {mrkdwn}")]
    if notes:
        blocks.append(context(*notes))
    return _reply(plain, blocks)


# --- help and errors ------------------------------------------------------------------------------


def help_reply(topic: str | None = None) -> Reply:
    """Usage; with a topic (`/backfill help run`), that sub-command's form first."""
    blocks = usage_blocks()
    text = usage_text()
    if topic in USAGE_BY_COMMAND:
        line = USAGE_BY_COMMAND[topic]
        blocks = [section(f"`{escape_mrkdwn(line)}`").to_dict(), *blocks]
        text = f"{line}\n{text}"
    return Reply(text=truncate(text, MAX_FALLBACK_TEXT), blocks=blocks)


def parse_error_reply(message: str, usage_line: str) -> Reply:
    """A command the parser refused: what was wrong, then the accepted form."""
    shown = mrkdwn_text(message, 1500)
    form = mrkdwn_text(one_line(usage_line).replace("`", "'"), 300)
    blocks: list[Block] = [
        section(f":warning: {shown}"),
        context(f"Accepted: `{form}`", "`/backfill help` lists every command."),
    ]
    return _reply(f"{shown}\nAccepted: {escape_text(one_line(usage_line))}", blocks)


def error_reply(message: str, usage_line: str | None = None) -> Reply:
    """A refusal worded by the scheduler (a run already running "by <@U…>", a schedule that is
    not paused, …): mentions of user and channel ids render, everything else is escaped. With a
    `usage_line`, the message may quote the user and is escaped throughout."""
    if usage_line:
        return parse_error_reply(message, usage_line)
    shown = app_text(message, 2000)
    return _simple(":warning:", shown, shown)


def invalid_schedule_reply(message: str) -> Reply:
    """`validate_schedule` refused the cron or the time zone given to `/backfill schedule "…"`."""
    return parse_error_reply(
        f"{message} Nothing was saved.",
        USAGE_BY_COMMAND["schedule"],
    )


def unknown_channels_reply(names: Sequence[str], usage_line: str) -> Reply:
    """Channel names the handler could not resolve (or the bot cannot see)."""
    shown = join_limited([channel_label(None, n, 80) for n in names], max_chars=1200, max_items=30)
    message_plain = f"No channel found for {shown}. Nothing was changed."
    blocks: list[Block] = [
        section(f":warning: No channel found for {shown}. Nothing was changed."),
        context(
            f"Accepted: `{mrkdwn_text(one_line(usage_line).replace('`', chr(39)), 300)}`",
            "Mention channels with `#`, so Slack fills in the right one.",
        ),
    ]
    return _reply(f"{message_plain}\nAccepted: {escape_text(one_line(usage_line))}", blocks)


# --- refusals ---------------------------------------------------------------------------------------


def admin_only_reply(action: str = "change the schedule") -> Reply:
    """`Only workspace admins can change the schedule.`"""
    what = one_line(action) or "do that"
    return _simple(
        ":lock:",
        f"Only workspace admins can {mrkdwn_text(what, 200)}.",
        f"Only workspace admins can {mrkdwn_text(what, 200)}.",
        "`/backfill status` and `/backfill list` are open to everyone.",
    )


def members_cannot_run_reply() -> Reply:
    """A manual run refused: to members while `MEMBERS_CAN_RUN=false`, and always to guests (a
    guest reads a few channels; a run reads them all)."""
    text = (
        "Only workspace admins can start a backfill in this workspace (and full members, "
        "when the app allows them). Nothing was changed."
    )
    return _simple(":lock:", text, text)


def run_in_progress_reply(
    running: Run, *, viewer_tz: str | None, now: datetime | None = None
) -> Reply:
    """The per-workspace lock: `A run is already in progress: run #12 started by @x at …`."""
    by = f" by {user_mention(running.triggered_by)}" if running.triggered_by else " by the schedule"
    when = format_time(running.started_at, viewer_tz)
    since = (
        f" ({relative(running.started_at, now)})" if now is not None and running.started_at else ""
    )
    by_plain = (
        f" by {user_plain(running.triggered_by)}" if running.triggered_by else " by the schedule"
    )
    return _simple(
        ":hourglass_flowing_sand:",
        f"A run is already in progress: run #{running.job_run_id} started{by} at {when}{since}.",
        f"A run is already in progress: run #{running.job_run_id} started{by_plain} at {when}.",
        "One run at a time per workspace. `/backfill status` shows its progress; "
        "`/backfill cancel` stops it.",
    )


def cancel_not_allowed_reply(running: Run) -> Reply:
    return _simple(
        ":lock:",
        f"Run #{running.job_run_id} was started {_by_whom(running)}: only workspace admins "
        "and the person who started a run can cancel it.",
        f"Run #{running.job_run_id}: only workspace admins and the person who started it can cancel it.",
    )


def no_schedule_reply(*, is_admin: bool = True) -> Reply:
    hint = (
        'Create one with `/backfill schedule` or `/backfill schedule "0 2 * * *"`.'
        if is_admin
        else "A workspace admin can create one."
    )
    return _simple(
        ":calendar:", f"There is no schedule yet. {hint}", f"There is no schedule yet. {hint}"
    )


def nothing_to_cancel_reply() -> Reply:
    return _simple(":information_source:", "No run is in progress.", "No run is in progress.")


def wrong_workspace_reply() -> Reply:
    """A request signed for another team than the bot token's: refused, nothing changed."""
    text = "This app serves another Slack workspace, so it cannot act here. Nothing was changed."
    return _simple(":no_entry:", text, text)


def not_installed_reply() -> Reply:
    """A request for a workspace the app is not installed on (never, or uninstalled since):
    refused, nothing changed."""
    text = (
        "The app is not installed on this workspace (or was uninstalled), so it cannot act "
        "here. Nothing was changed."
    )
    return _simple(":no_entry:", text, text, "A workspace admin can install it again.")


def no_workspace_reply() -> Reply:
    """A request that names no workspace at all (an org-wide install's payload without a team):
    refused, nothing changed."""
    text = (
        "Slack did not say which workspace this request is for, so the app cannot act on "
        "it. Nothing was changed."
    )
    return _simple(":no_entry:", text, text, "Use `/backfill` from inside the workspace it serves.")


# Why an account may not use the app, by its standing (`scheduler.people`'s names for them).
NOT_A_MEMBER_REASONS = {
    "stranger": "Your account belongs to another Slack workspace or organisation",
    "deactivated": "This account is deactivated",
    "bot": "This is a bot user",
    "unknown": "Slack does not know this account (or does not show it to the app)",
}


def not_a_member_reply(standing: str) -> Reply:
    """A request from someone who is not a person of this workspace: refused, nothing changed."""
    reason = NOT_A_MEMBER_REASONS.get(standing, NOT_A_MEMBER_REASONS["unknown"])
    text = f"{reason}, so it cannot act in this workspace. Nothing was changed."
    return _simple(
        ":no_entry:",
        text,
        text,
        "The app serves the members of this workspace; a workspace admin can help if this is "
        "wrong.",
    )


# --- confirmations ----------------------------------------------------------------------------------


def schedule_saved_reply(
    schedule: Schedule, *, created: bool, viewer_tz: str | None, now: datetime
) -> Reply:
    verb = "created" if created else "updated"
    body = _schedule_text(schedule, viewer_tz=viewer_tz, now=now)
    blocks: list[Block] = [section(f":white_check_mark: *Schedule {verb}.*\n{body}")]
    blocks.append(context("`/backfill pause` pauses it · `/backfill list` shows it"))
    plain = f"Schedule {verb}: {_schedule_plain(schedule, viewer_tz=viewer_tz)}"
    return _reply(plain, blocks)


def schedule_paused_reply(*, already: bool = False) -> Reply:
    text = (
        "The schedule is already paused."
        if already
        else "Schedule paused: no scheduled runs until it is resumed."
    )
    return _simple(":double_vertical_bar:", text, text, "`/backfill resume` starts it again.")


def schedule_resumed_reply(
    schedule: Schedule, *, viewer_tz: str | None, now: datetime, already: bool = False
) -> Reply:
    head = "The schedule is already active." if already else "Schedule resumed."
    nxt = _next_run(schedule, viewer_tz=viewer_tz, now=now)
    return _simple(":arrow_forward:", f"{head} Next run: {nxt}.", f"{head} Next run: {nxt}.")


def schedule_deleted_reply() -> Reply:
    text = "Schedule deleted. Stored messages and past runs are kept."
    return _simple(
        ":wastebasket:", text, text, 'Create a new one with `/backfill schedule "<cron>"`.'
    )


def run_started_reply(
    job_run_id: int, *, days: int, channels: Sequence[ChannelRef] | None = None
) -> Reply:
    """`channels` None or empty means all channels."""
    if channels:
        labels = [channel_label(c.id, c.name) for c in channels]
        scope = join_limited(labels, max_chars=1500, max_items=40)
        scope_plain = join_limited(
            [channel_plain(c.id, c.name) for c in channels], max_chars=500, max_items=40
        )
    else:
        scope = scope_plain = "all channels"
    mrkdwn = f"Run #{job_run_id} started: backfilling the last {plural(days, 'day')} of {scope}."
    plain = (
        f"Run #{job_run_id} started: backfilling the last {plural(days, 'day')} of {scope_plain}."
    )
    return _simple(
        ":rocket:",
        mrkdwn,
        plain,
        "You get a direct message when it ends. `/backfill status` shows its progress.",
    )


def cancel_requested_reply(job_run_id: int) -> Reply:
    text = f"Cancelling run #{job_run_id}: it stops after the current page. What it stored is kept."
    return _simple(":octagonal_sign:", text, text)


# --- status, list, history ----------------------------------------------------------------------------


def status_reply(
    running: Run | None,
    progress: Progress | None,
    recent_runs: Sequence[Run],
    *,
    viewer_tz: str | None,
    now: datetime,
    can_cancel: bool = False,
    mirror: MirrorStatus | None = None,
) -> Reply:
    """`/backfill status`: the run in progress with its progress, then the last runs (newest
    first), then the live mirror's state."""
    blocks: list[Block] = []
    plain: list[str] = []
    if running is None:
        blocks.append(section(":zzz: *No run in progress.*"))
        plain.append("No run in progress.")
    else:
        head = (
            f":hourglass_flowing_sand: *Run #{running.job_run_id} in progress* · {run_trigger(running)} · "
            f"started {format_time(running.started_at, viewer_tz)} ({relative(running.started_at, now)})"
        )
        lines = [head]
        if progress is not None:
            lines += _progress_lines(progress, viewer_tz=viewer_tz, now=now)
            plain.append(
                f"Run #{running.job_run_id} in progress: {format_count(progress.channels_done)} of "
                f"{plural(progress.channels_total, 'channel')}, {plural(progress.messages_stored, 'message')} stored."
            )
        else:
            plain.append(f"Run #{running.job_run_id} in progress.")
        blocks.append(section("\n".join(lines)))
        if can_cancel:
            blocks.append(
                ActionsBlock(
                    block_id=ids.REPLY_RUN_ACTIONS_BLOCK,
                    elements=[cancel_run_button(ids.REPLY_CANCEL_RUN, running.job_run_id)],
                )
            )
    finished = [r for r in recent_runs if running is None or r.job_run_id != running.job_run_id]
    if finished:
        shown = finished[:STATUS_RECENT_RUNS]
        blocks.append(section("*Last runs*"))
        for run in shown:
            blocks.append(section(run_line(run, tz_name=viewer_tz, now=now, error_limit=200)))
        plain += [run_plain_line(r, tz_name=viewer_tz, now=now) for r in shown]
        if len(finished) > len(shown):
            blocks.append(
                context(
                    f"`/backfill history` shows more ({format_count(len(finished))} in all here)."
                )
            )
    if mirror is not None:
        blocks.append(section(mirror_line(mirror, tz_name=viewer_tz, now=now)))
        plain.append(mirror_line(mirror, tz_name=viewer_tz, now=now, plain=True))
    return _reply("\n".join(plain), blocks)


def list_reply(
    schedule: Schedule | None, *, viewer_tz: str | None, now: datetime, is_admin: bool = True
) -> Reply:
    """`/backfill list`: the schedule, its cron in words and the next fire time."""
    if schedule is None:
        return no_schedule_reply(is_admin=is_admin)
    body = _schedule_text(schedule, viewer_tz=viewer_tz, now=now)
    blocks: list[Block] = [section(f":calendar: *Schedule*\n{body}")]
    if is_admin:
        blocks.append(
            context("`/backfill schedule` edits it · `/backfill pause` · `/backfill delete`")
        )
    return _reply(f"Schedule: {_schedule_plain(schedule, viewer_tz=viewer_tz)}", blocks)


def history_reply(runs: Sequence[Run], n: int, *, viewer_tz: str | None, now: datetime) -> Reply:
    """`/backfill history N`: one line per run, newest first, packed into few sections."""
    shown = list(runs[: max(0, n)])
    if not shown:
        return _simple(":open_file_folder:", "No runs yet.", "No runs yet.")
    title = f":open_file_folder: *Last {plural(len(shown), 'run')}* (times in {mrkdwn_text(viewer_tz or 'UTC', 64)})"
    lines = [run_compact_line(r, tz_name=viewer_tz, now=now, error_limit=80) for r in shown]
    budget = MESSAGE_TEXT_BUDGET - len(title) - 200
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    blocks: list[Block] = [section(title)]
    blocks += [section(chunk) for chunk in pack_lines(kept, max_chars=2900)]
    if len(kept) < len(shown):
        blocks.append(context(f"and {plural(len(shown) - len(kept), 'older run')} not shown"))
    plain = "\n".join(run_plain_line(r, tz_name=viewer_tz, now=now) for r in shown[:10])
    return _reply(f"Last {plural(len(shown), 'run')}:\n{plain}", blocks)


# --- shared pieces -------------------------------------------------------------------------------------


def _by_whom(run: Run) -> str:
    return f"by {user_mention(run.triggered_by)}" if run.triggered_by else "by the schedule"


def _progress_lines(progress: Progress, *, viewer_tz: str | None, now: datetime) -> list[str]:
    lines = [
        f"`{progress_bar(progress.channels_done, progress.channels_total)}`",
        (
            f"{format_count(progress.channels_done)} of {plural(progress.channels_total, 'channel')} · "
            f"{plural(progress.messages_stored, 'message')} stored · {plural(progress.calls, 'Slack call')} · "
            f"{plural(progress.rate_limit_waits, 'rate-limit wait')}"
        ),
    ]
    if progress.current_channel:
        lines.append(f"Now reading {channel_label(None, progress.current_channel, 80)}")
    lines.append(f"Time left: {eta_text(progress.eta_s, now, viewer_tz)}")
    return lines


def _next_run(schedule: Schedule, *, viewer_tz: str | None, now: datetime) -> str:
    if not schedule.is_active:
        return "none while paused"
    if schedule.next_run_at is None:
        return "not planned yet"
    return f"{format_time(schedule.next_run_at, viewer_tz, with_year=True)} ({relative(schedule.next_run_at, now)})"


def _schedule_text(schedule: Schedule, *, viewer_tz: str | None, now: datetime) -> str:
    state = "active" if schedule.is_active else "paused"
    return "\n".join(
        [
            f"{cron_words(schedule)}, time zone {mrkdwn_text(schedule.timezone or 'UTC', 64)} · {state}",
            f"*Next run:* {_next_run(schedule, viewer_tz=viewer_tz, now=now)}",
            (
                f"*Backfills:* the last {plural(schedule.days_to_backfill, 'day')} of "
                f"{channels_summary(schedule, max_chars=1500, max_items=40)}"
            ),
        ]
    )


def _schedule_plain(schedule: Schedule, *, viewer_tz: str | None) -> str:
    words = one_line(describe_cron(schedule.cron_expression))
    nxt = (
        format_time(schedule.next_run_at, viewer_tz, with_year=True)
        if schedule.is_active and schedule.next_run_at
        else ("paused" if not schedule.is_active else "not planned yet")
    )
    scope = (
        "all channels"
        if schedule.include_all_channels or not schedule.channel_ids
        else plural(len(schedule.channel_ids), "channel")
    )
    return mrkdwn_text(
        f"{words} ({one_line(schedule.cron_expression)}, {schedule.timezone}), last {plural(schedule.days_to_backfill, 'day')} of {scope}; next run: {nxt}",
        1000,
    )
