"""The App Home tab: the schedule, the run in progress, the last runs and what the store holds.

Admins get the buttons that change things (edit, pause or resume, delete, run now, cancel); members
get a read-only view, plus "Run backfill now" when `members_can_run`, and Cancel on a run they
started. Pure: plain data and `now` in, a `home` view dict out; imports only `blocks.*` and
`slack_sdk.models`. Whatever the data, the view stays within Slack's limits (≤ 100 blocks, section
text ≤ 3000, …): long lists end in "and N more".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    PlainTextObject,
)
from slack_sdk.models.views import View

from blocks import ids
from blocks.elements import (
    MAX_VIEW_BLOCKS,
    button_text,
    cancel_run_button,
    context,
    fields_section,
    header,
    section,
)
from blocks.lines import channels_summary, cron_words, mirror_line, run_line, run_trigger
from blocks.progress import eta_text, progress_bar
from blocks.search import search_button
from blocks.text import channel_label, code, format_count, mrkdwn_text, plural, user_mention
from blocks.times import duration_between, format_duration, format_time
from db.records import MirrorStatus, Progress, Run, Schedule, Totals

RECENT_RUNS = 10
ADMIN_ROLE = "You are a workspace admin: you can schedule, run and cancel backfills."
MEMBER_ROLE = "You are a member: you can see the schedule and the runs; admins change them."
INTRO = (
    "Keeps a searchable copy of this workspace's message history, thread replies included, "
    "on a schedule or on demand."
)


def reinstall_text(reason: str) -> str:
    """The warning at the top of App Home while the workspace's install is not usable."""
    return (
        f":warning: *The app must be reinstalled in this workspace.* Slack no longer accepts its "
        f"token ({code(reason, 60)}): runs cannot read anything until a workspace admin "
        "installs the app again. The stored history stays."
    )


def home_view(
    schedule: Schedule | None = None,
    running: Run | None = None,
    progress: Progress | None = None,
    recent_runs: Sequence[Run] = (),
    totals: Totals | None = None,
    *,
    is_admin: bool,
    members_can_run: bool = True,
    viewer_tz: str | None = "UTC",
    now: datetime | None = None,
    viewer_id: str | None = None,
    mirror: MirrorStatus | None = None,
    can_search: bool = False,
    reinstall: str | None = None,
) -> dict[str, Any]:
    """The Home tab for one viewer. `recent_runs` newest first (only the first 10 are shown);
    `running` is the run in progress, if any, and `progress` its latest snapshot; `viewer_id`
    lets a member cancel a run they started; `mirror` is the live mirror's state; `can_search`
    adds "Search the history" (whoever `SEARCH_ALLOWED` lets search); `reinstall` is why Slack
    no longer accepts the workspace's install (Slack's error code), if it does not. Times are
    shown in `viewer_tz`."""
    blocks: list[Block] = [
        header("Backfill"),
        section(INTRO),
        context(ADMIN_ROLE if is_admin else MEMBER_ROLE),
        DividerBlock(),
    ]
    if reinstall is not None:
        blocks.insert(1, section(reinstall_text(reinstall)))
    blocks += _schedule_blocks(schedule, is_admin=is_admin, viewer_tz=viewer_tz)
    blocks.append(DividerBlock())
    blocks += _run_blocks(
        running,
        progress,
        can_run=is_admin or members_can_run,
        can_cancel=running is not None
        and (is_admin or (viewer_id is not None and running.triggered_by == viewer_id)),
        viewer_tz=viewer_tz,
        now=now,
        default_days=schedule.days_to_backfill if schedule else None,
    )
    blocks.append(DividerBlock())
    if can_search:
        blocks.append(
            section(
                "*Search the history*\nFind stored messages by their words or by what they are "
                "about, in the channels you can read.",
                block_id=ids.HOME_SEARCH_BLOCK,
                accessory=search_button(),
            )
        )
        blocks.append(DividerBlock())
    blocks += _recent_blocks(recent_runs, viewer_tz=viewer_tz, now=now)
    blocks.append(DividerBlock())
    if mirror is not None:
        blocks.append(section(mirror_line(mirror, tz_name=viewer_tz, now=now)))
    blocks += _totals_blocks(totals, viewer_tz=viewer_tz, now=now)
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS]).to_dict()


def _schedule_blocks(
    schedule: Schedule | None, *, is_admin: bool, viewer_tz: str | None
) -> list[Block]:
    if schedule is None:
        text = "*Schedule*\nNo schedule yet. " + (
            "Create one to backfill on a timetable, or use `/backfill schedule`."
            if is_admin
            else "A workspace admin can create one."
        )
        blocks: list[Block] = [section(text, block_id=ids.HOME_SCHEDULE_BLOCK)]
        if is_admin:
            blocks.append(
                ActionsBlock(
                    block_id=ids.HOME_SCHEDULE_ACTIONS_BLOCK,
                    elements=[
                        ButtonElement(
                            text=button_text("Create schedule"),
                            action_id=ids.HOME_SCHEDULE_CREATE,
                            style="primary",
                        )
                    ],
                )
            )
        return blocks

    state = ":large_green_circle: Active" if schedule.is_active else ":double_vertical_bar: Paused"
    if schedule.is_active and schedule.next_run_at is not None:
        next_run = f"{format_time(schedule.next_run_at, viewer_tz, with_year=True)} (your time)"
    elif schedule.is_active:
        next_run = "not planned yet"
    else:
        next_run = "none while paused"
    lines = [
        "*Schedule*",
        f"{cron_words(schedule)}, time zone {mrkdwn_text(schedule.timezone or 'UTC', 64)}",
        f"*Status:* {state}",
        f"*Next run:* {next_run}",
        f"*Last run:* {format_time(schedule.last_run_at, viewer_tz, with_year=True)}",
        f"*Backfills:* the last {plural(schedule.days_to_backfill, 'day')} of {channels_summary(schedule, max_chars=1500, max_items=40)}",
    ]
    if schedule.created_by:
        lines.append(f"*Created by:* {user_mention(schedule.created_by)}")
    blocks = [section("\n".join(lines), block_id=ids.HOME_SCHEDULE_BLOCK)]
    if is_admin:
        toggle = (
            ButtonElement(text=button_text("Pause"), action_id=ids.HOME_SCHEDULE_PAUSE)
            if schedule.is_active
            else ButtonElement(
                text=button_text("Resume"), action_id=ids.HOME_SCHEDULE_RESUME, style="primary"
            )
        )
        blocks.append(
            ActionsBlock(
                block_id=ids.HOME_SCHEDULE_ACTIONS_BLOCK,
                elements=[
                    ButtonElement(
                        text=button_text("Edit schedule"), action_id=ids.HOME_SCHEDULE_EDIT
                    ),
                    toggle,
                    ButtonElement(
                        text=button_text("Delete"),
                        action_id=ids.HOME_SCHEDULE_DELETE,
                        style="danger",
                        confirm=ConfirmObject(
                            title=PlainTextObject(text="Delete the schedule?"),
                            text=PlainTextObject(
                                text="Scheduled backfills stop. Stored messages and past runs are kept."
                            ),
                            confirm=PlainTextObject(text="Delete"),
                            deny=PlainTextObject(text="Keep it"),
                            style="danger",
                        ),
                    ),
                ],
            )
        )
    return blocks


def _run_blocks(
    running: Run | None,
    progress: Progress | None,
    *,
    can_run: bool,
    can_cancel: bool,
    viewer_tz: str | None,
    now: datetime | None,
    default_days: int | None,
) -> list[Block]:
    if running is None:
        if can_run:
            text = "*Run now*\nNo run in progress. Start one to backfill the channels now."
        else:
            text = "*Run now*\nNo run in progress. Only workspace admins can start runs here."
        blocks: list[Block] = [section(text, block_id=ids.HOME_RUN_BLOCK)]
        if can_run:
            blocks.append(
                ActionsBlock(
                    block_id=ids.HOME_RUN_ACTIONS_BLOCK,
                    elements=[
                        ButtonElement(
                            text=button_text("Run backfill now"),
                            action_id=ids.HOME_RUN_NOW,
                            style="primary",
                        )
                    ],
                )
            )
        return blocks

    head = (
        f"*Run #{running.job_run_id} in progress* · {run_trigger(running)} · "
        f"started {format_time(running.started_at, viewer_tz)}"
    )
    blocks = [section(head, block_id=ids.HOME_RUN_BLOCK)]
    if progress is not None:
        blocks.append(
            section(
                progress_text(progress, viewer_tz=viewer_tz, now=now),
                block_id=ids.HOME_PROGRESS_BLOCK,
            )
        )
        blocks.append(
            context(
                f"{plural(progress.calls, 'Slack call')} · "
                f"{plural(progress.rate_limit_waits, 'rate-limit wait')}"
            )
        )
    else:
        blocks.append(
            section("`" + progress_bar(0, 0) + "`\nStarting…", block_id=ids.HOME_PROGRESS_BLOCK)
        )
    if can_cancel:
        blocks.append(
            ActionsBlock(
                block_id=ids.HOME_RUN_ACTIONS_BLOCK,
                elements=[cancel_run_button(ids.HOME_CANCEL_RUN, running.job_run_id)],
            )
        )
    return blocks


def progress_text(progress: Progress, *, viewer_tz: str | None, now: datetime | None) -> str:
    """Bar, counts, current channel and ETA (mrkdwn, a few hundred characters at most)."""
    lines = [
        f"`{progress_bar(progress.channels_done, progress.channels_total)}`",
        (
            f"{format_count(progress.channels_done)} of {plural(progress.channels_total, 'channel')} · "
            f"{plural(progress.messages_stored, 'message')} stored"
        ),
    ]
    if progress.current_channel:
        lines.append(f"Now reading {channel_label(None, progress.current_channel, 80)}")
    if now is not None:
        lines.append(f"Time left: {eta_text(progress.eta_s, now, viewer_tz)}")
        elapsed = duration_between(progress.started_at, now)
        if elapsed is not None:
            lines.append(f"Running for {format_duration(elapsed)}")
    return "\n".join(lines)


def _recent_blocks(
    runs: Sequence[Run], *, viewer_tz: str | None, now: datetime | None
) -> list[Block]:
    refresh = ButtonElement(text=button_text("Refresh"), action_id=ids.HOME_REFRESH)
    blocks: list[Block] = [
        section("*Recent runs*", block_id=ids.HOME_RECENT_RUNS_BLOCK, accessory=refresh)
    ]
    shown = list(runs[:RECENT_RUNS])
    if not shown:
        blocks.append(section("No runs yet."))
        return blocks
    for run in shown:
        blocks.append(section(run_line(run, tz_name=viewer_tz, now=now, error_limit=300)))
    if len(runs) > RECENT_RUNS:
        older = len(runs) - RECENT_RUNS
        blocks.append(
            context(f"and {plural(older, 'older run')} · `/backfill history 100` lists up to 100")
        )
    return blocks


def _totals_blocks(
    totals: Totals | None, *, viewer_tz: str | None, now: datetime | None
) -> list[Block]:
    t = totals or Totals()
    blocks: list[Block] = [
        fields_section(
            [
                f"*Messages stored*\n{format_count(t.messages_stored)}",
                f"*Channels*\n{format_count(t.channels)}",
                f"*Last successful run*\n{format_time(t.last_success_at, viewer_tz, with_year=True)}",
            ],
            block_id=ids.HOME_TOTALS_BLOCK,
        )
    ]
    footer = ["`/backfill help` lists the commands"]
    if now is not None:
        footer.insert(0, f"Updated {format_time(now, viewer_tz)}")
    blocks.append(context(" · ".join(footer)))
    return blocks
