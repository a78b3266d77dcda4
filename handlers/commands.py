"""The `/backfill` slash command: parse, check rights, acknowledge, then one call into the scheduler.

Parse errors and permission refusals are answered inside the acknowledgement (no I/O needed);
anything that touches the database is answered afterwards through `respond` (ephemeral).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks import replies
from blocks.help import USAGE_BY_COMMAND, usage_blocks
from blocks.modals import ModalContext, run_modal, schedule_modal
from blocks.models import ChannelRef
from handlers import grammar
from handlers.background import after_ack
from handlers.channels import check_channels
from handlers.data import progress_info, run_info, schedule_info
from handlers.deps import Deps, deps_of
from scheduler.cron import ScheduleError, ScheduleSpec, validate_schedule
from scheduler.people import Viewer
from scheduler.runs import RunRefused

COMMAND = "/backfill"
ADMIN_ONLY = (
    grammar.OpenScheduleModal,
    grammar.SaveSchedule,
    grammar.Pause,
    grammar.Resume,
    grammar.Delete,
)


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(handle_command_backfill)


async def handle_command_backfill(
    ack: AsyncAck,
    command: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond,
) -> None:
    parsed = grammar.parse_command(command.get("text") or "")
    if isinstance(parsed, grammar.ParseError):
        reply = replies.parse_error_reply(parsed.message, parsed.usage_line).as_kwargs()
        if parsed.subcommand is None:  # not a sub-command at all: list the ones there are
            reply["blocks"] = reply["blocks"] + usage_blocks()[1:]
        await ack(**reply)
        return
    if isinstance(parsed, grammar.Help):
        await ack(**replies.help_reply(parsed.topic).as_kwargs())
        return
    deps = deps_of(context)
    viewer = await deps.people.viewer(client, command["user_id"])
    refusal = permission_refusal(parsed, viewer, deps)
    if refusal is not None:
        await ack(**refusal.as_kwargs())
        return
    if isinstance(parsed, grammar.OpenScheduleModal | grammar.OpenRunModal):
        await ack()
        after_ack(open_modal(parsed, command, client, deps, viewer), respond, urgent=True)
        return
    if isinstance(parsed, grammar.SaveSchedule):
        await save_schedule(ack, parsed, client, deps, viewer, respond)
        return
    await ack()
    after_ack(answer_and_respond(parsed, client, deps, viewer, respond), respond)


async def answer_and_respond(
    parsed: object, client: AsyncWebClient, deps: Deps, viewer: Viewer, respond: AsyncRespond
) -> None:
    reply = await answer(parsed, client, deps, viewer)
    await respond(**reply.as_kwargs())


def permission_refusal(parsed: object, viewer: Viewer, deps: Deps) -> replies.Reply | None:
    if isinstance(parsed, ADMIN_ONLY) and not viewer.is_admin:
        return replies.admin_only_reply()
    if isinstance(parsed, grammar.OpenRunModal | grammar.StartRun) and not deps.may_run(viewer):
        return replies.members_cannot_run_reply()
    return None


async def open_modal(
    parsed: object, command: dict[str, Any], client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> None:
    context = ModalContext(
        team_id=deps.team_id, user_id=viewer.user_id, channel_id=command.get("channel_id") or ""
    )
    if isinstance(parsed, grammar.OpenScheduleModal):
        existing = schedule_info(await deps.schedules.get(deps.team_id))
        context = ModalContext(
            team_id=context.team_id,
            user_id=context.user_id,
            channel_id=context.channel_id,
            editing=existing is not None,
            schedule_id=existing.schedule_id if existing else None,
        )
        view = schedule_modal(existing, default_tz=viewer.tz or "UTC", context=context)
    else:
        view = run_modal(context=context)
    await client.views_open(trigger_id=command["trigger_id"], view=view)


async def save_schedule(
    ack: AsyncAck,
    parsed: grammar.SaveSchedule,
    client: AsyncWebClient,
    deps: Deps,
    viewer: Viewer,
    respond: AsyncRespond,
) -> None:
    tz = parsed.tz or viewer.tz or "UTC"
    try:
        spec = validate_schedule(parsed.cron, tz, parsed.days, list(parsed.channel_ids) or None)
    except ScheduleError as exc:
        await ack(**replies.invalid_schedule_reply(str(exc)).as_kwargs())
        return
    await ack()
    after_ack(store_schedule(parsed, spec, client, deps, viewer, respond), respond)


async def store_schedule(
    parsed: grammar.SaveSchedule,
    spec: ScheduleSpec,
    client: AsyncWebClient,
    deps: Deps,
    viewer: Viewer,
    respond: AsyncRespond,
) -> None:
    if not parsed.all_channels:
        # Every id and name is checked against Slack's channel list: an id Slack does not know
        # is never stored in a schedule.
        checked = await check_channels(
            deps,
            client,
            ids=parsed.channel_ids,
            names=parsed.channel_names,
            usage_line=USAGE_BY_COMMAND["schedule"],
        )
        if isinstance(checked, replies.Reply):
            await respond(**checked.as_kwargs())
            return
        try:
            spec = validate_schedule(parsed.cron, spec.timezone, parsed.days, list(checked.ids))
        except ScheduleError as exc:
            await respond(**replies.invalid_schedule_reply(str(exc)).as_kwargs())
            return
    existed = await deps.schedules.get(deps.team_id) is not None
    saved = await deps.schedules.save(deps.team_id, spec, viewer.user_id)
    info = schedule_info(saved)
    assert info is not None
    await respond(
        **replies.schedule_saved_reply(
            info, created=not existed, viewer_tz=viewer.tz, now=deps.clock()
        ).as_kwargs()
    )
    await deps.home.publish(client, deps, viewer.user_id)


async def answer(
    parsed: object, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> replies.Reply:
    """Everything after the acknowledgement: one call into the scheduler, one reply."""
    team, now, tz = deps.team_id, deps.clock(), viewer.tz
    try:
        if isinstance(parsed, grammar.Status):
            running = await deps.runs.current(team)
            progress = deps.runs.progress(team) if running else None
            recent = await deps.runs.history(team, 5)
            can_cancel = running is not None and (
                viewer.is_admin or running.triggered_by == viewer.user_id
            )
            return replies.status_reply(
                run_info(running),
                progress_info(progress, running),
                [i for i in map(run_info, recent) if i],
                viewer_tz=tz,
                now=now,
                can_cancel=can_cancel,
            )
        if isinstance(parsed, grammar.ListSchedule):
            schedule = await deps.schedules.get(team)
            return replies.list_reply(
                schedule_info(schedule), viewer_tz=tz, now=now, is_admin=viewer.is_admin
            )
        if isinstance(parsed, grammar.History):
            runs = await deps.runs.history(team, parsed.n)
            return replies.history_reply(
                [i for i in map(run_info, runs) if i], n=parsed.n, viewer_tz=tz, now=now
            )
        if isinstance(parsed, grammar.Pause):
            await deps.schedules.pause(team)
            return replies.schedule_paused_reply()
        if isinstance(parsed, grammar.Resume):
            info = schedule_info(await deps.schedules.resume(team))
            assert info is not None
            return replies.schedule_resumed_reply(info, viewer_tz=tz, now=now)
        if isinstance(parsed, grammar.Delete):
            await deps.schedules.delete(team)
            return replies.schedule_deleted_reply()
        if isinstance(parsed, grammar.Cancel):
            run = await deps.runs.cancel(team, viewer.user_id, is_admin=viewer.is_admin)
            return replies.cancel_requested_reply(run.job_run_id)
        if isinstance(parsed, grammar.StartRun):
            return await start_run(parsed, client, deps, viewer)
    except (ScheduleError, RunRefused) as exc:
        return replies.error_reply(str(exc))
    finally:
        if isinstance(
            parsed,
            grammar.Pause | grammar.Resume | grammar.Delete | grammar.StartRun | grammar.Cancel,
        ):
            await deps.home.publish(client, deps, viewer.user_id)
    return replies.help_reply()


async def start_run(
    parsed: grammar.StartRun, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> replies.Reply:
    channel_ids: list[str] = []
    names: dict[str, str] = dict(parsed.channel_labels)  # as Slack sent them: `<#C…|name>`
    if not parsed.all_channels:
        # One (cached) list walk for every id and name: unknown ones refuse the run before it
        # is claimed, so no made-up id ever holds the workspace's run slot.
        checked = await check_channels(
            deps,
            client,
            ids=parsed.channel_ids,
            names=parsed.channel_names,
            usage_line=USAGE_BY_COMMAND["run"],
        )
        if isinstance(checked, replies.Reply):
            return checked
        channel_ids = list(checked.ids)
        names |= checked.names  # Slack's list has the final word on a channel's name
    run = await deps.runs.start_manual(
        deps.team_id, viewer.user_id, days=parsed.days, channel_ids=channel_ids or None
    )
    channels = [ChannelRef(c, names.get(c)) for c in channel_ids]
    return replies.run_started_reply(run.job_run_id, days=parsed.days, channels=channels or None)
