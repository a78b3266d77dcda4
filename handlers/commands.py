"""The `/backfill` slash command: parse, check rights, acknowledge, then one call into the scheduler.

Parse errors and permission refusals are answered inside the acknowledgement (the only I/O before
it is the cached `users.info` of a sub-command some people may not use); anything that touches the
database is answered afterwards through `respond` (ephemeral), each sub-command by its own small
function, found by the parsed command's type in `ANSWERS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks import replies
from blocks.help import USAGE_BY_COMMAND, usage_blocks
from blocks.modals import ModalContext, run_modal, schedule_modal
from blocks.models import ChannelRef
from handlers import grammar, search
from handlers.channels import check_channels
from handlers.deps import Deps, deps_of
from handlers.purge import WHAT as PURGE_WHAT
from handlers.purge import confirmation as purge_confirmation
from scheduler.channel_directory import ChannelCheck
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
    grammar.Purge,
)
# Sub-commands refused to some people: their rights are checked before the acknowledgement, so
# that a refusal is the acknowledgement itself. The rest need nobody's rights to be acknowledged.
GATED = (*ADMIN_ONLY, grammar.OpenRunModal, grammar.StartRun, grammar.Search)
OPENS_A_MODAL = (grammar.OpenScheduleModal, grammar.OpenRunModal)


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
    if not isinstance(parsed, GATED):
        await ack()
        deps.after_ack(answer_and_respond(parsed, command, client, deps, respond), respond)
        return
    # `users.info` before the acknowledgement, by design: a refusal is answered in the
    # acknowledgement, and the lookup is the short-lived cache's (`AdmitRequest` has just made it).
    viewer = await deps.people.viewer(client, command["user_id"])
    refusal = permission_refusal(parsed, viewer, deps)
    if refusal is not None:
        await ack(**refusal.as_kwargs())
        return
    if isinstance(parsed, OPENS_A_MODAL):
        await ack()
        deps.after_ack(open_modal(parsed, command, client, deps, viewer), respond, urgent=True)
        return
    if isinstance(parsed, grammar.SaveSchedule):
        await save_schedule(ack, parsed, client, deps, viewer, respond)
        return
    await ack()
    deps.after_ack(answer_and_respond(parsed, command, client, deps, respond, viewer), respond)


async def answer_and_respond(
    parsed: object,
    command: dict[str, Any],
    client: AsyncWebClient,
    deps: Deps,
    respond: AsyncRespond,
    viewer: Viewer | None = None,
) -> None:
    if viewer is None:
        viewer = await deps.people.viewer(client, command["user_id"])
    reply = await answer(parsed, client, deps, viewer)
    await respond(**reply.as_kwargs())


def permission_refusal(parsed: object, viewer: Viewer, deps: Deps) -> replies.Reply | None:
    if isinstance(parsed, grammar.Purge) and not viewer.is_admin:
        return replies.admin_only_reply(PURGE_WHAT)
    if isinstance(parsed, ADMIN_ONLY) and not viewer.is_admin:
        return replies.admin_only_reply()
    if isinstance(parsed, grammar.OpenRunModal | grammar.StartRun) and not deps.may_run(viewer):
        return replies.members_cannot_run_reply()
    if isinstance(parsed, grammar.Search):
        return search.refusal(viewer, deps)
    return None


async def open_modal(
    parsed: object, command: dict[str, Any], client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> None:
    context = ModalContext(
        team_id=deps.team_id, user_id=viewer.user_id, channel_id=command.get("channel_id") or ""
    )
    if isinstance(parsed, grammar.OpenScheduleModal):
        existing = await deps.schedules.get(deps.team_id)
        context = replace(
            context,
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
    deps.after_ack(store_schedule(parsed, spec, client, deps, viewer, respond), respond)


async def check_named_channels(
    parsed: grammar.SaveSchedule | grammar.StartRun,
    subcommand: str,
    client: AsyncWebClient,
    deps: Deps,
) -> ChannelCheck | replies.Reply:
    """Every id and name the command gave, in one (cached) walk of Slack's channel list: an id
    Slack does not know is never stored in a schedule nor holds the workspace's run slot."""
    return await check_channels(
        deps,
        client,
        ids=parsed.channel_ids,
        names=parsed.channel_names,
        usage_line=USAGE_BY_COMMAND[subcommand],
    )


async def store_schedule(
    parsed: grammar.SaveSchedule,
    spec: ScheduleSpec,
    client: AsyncWebClient,
    deps: Deps,
    viewer: Viewer,
    respond: AsyncRespond,
) -> None:
    if not parsed.all_channels:
        checked = await check_named_channels(parsed, "schedule", client, deps)
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
    await respond(
        **replies.schedule_saved_reply(
            saved, created=not existed, viewer_tz=viewer.tz, now=deps.clock()
        ).as_kwargs()
    )
    await deps.home.publish(client, viewer.user_id)


# --- after the acknowledgement: one sub-command, one call into the scheduler, one reply --------


@dataclass(frozen=True)
class Asked:
    """Who asked, and what answering them needs."""

    client: AsyncWebClient
    deps: Deps
    viewer: Viewer

    @property
    def team(self) -> str:
        return self.deps.team_id


Answer = Callable[[Any, Asked], Awaitable[replies.Reply]]
# Sub-commands that change what the Home tab shows: it is published again after the reply.
CHANGES_HOME = (grammar.Pause, grammar.Resume, grammar.Delete, grammar.StartRun, grammar.Cancel)


async def answer(
    parsed: object, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> replies.Reply:
    """Everything after the acknowledgement: the sub-command's answer (`ANSWERS`), one reply."""
    respond_to = ANSWERS.get(type(parsed))
    if respond_to is None:
        return replies.help_reply()
    try:
        return await respond_to(parsed, Asked(client, deps, viewer))
    except (ScheduleError, RunRefused) as exc:
        return replies.error_reply(str(exc))
    finally:
        if isinstance(parsed, CHANGES_HOME):
            await deps.home.publish(client, viewer.user_id)


async def answer_status(parsed: grammar.Status, asked: Asked) -> replies.Reply:
    deps, viewer = asked.deps, asked.viewer
    running = await deps.runs.current(deps.team_id)
    progress = deps.runs.progress(deps.team_id) if running else None
    recent = await deps.runs.history(deps.team_id, 5)
    can_cancel = running is not None and (viewer.is_admin or running.triggered_by == viewer.user_id)
    mirror = await deps.mirror.status(deps.team_id) if deps.mirror is not None else None
    return replies.status_reply(
        running,
        progress,
        recent,
        viewer_tz=viewer.tz,
        now=deps.clock(),
        can_cancel=can_cancel,
        mirror=mirror,
    )


async def answer_list(parsed: grammar.ListSchedule, asked: Asked) -> replies.Reply:
    deps, viewer = asked.deps, asked.viewer
    schedule = await deps.schedules.get(deps.team_id)
    return replies.list_reply(
        schedule, viewer_tz=viewer.tz, now=deps.clock(), is_admin=viewer.is_admin
    )


async def answer_history(parsed: grammar.History, asked: Asked) -> replies.Reply:
    deps, viewer = asked.deps, asked.viewer
    runs = await deps.runs.history(deps.team_id, parsed.n)
    return replies.history_reply(runs, n=parsed.n, viewer_tz=viewer.tz, now=deps.clock())


async def pause_schedule(parsed: grammar.Pause, asked: Asked) -> replies.Reply:
    await asked.deps.schedules.pause(asked.team)
    return replies.schedule_paused_reply()


async def resume_schedule(parsed: grammar.Resume, asked: Asked) -> replies.Reply:
    resumed = await asked.deps.schedules.resume(asked.team)
    return replies.schedule_resumed_reply(
        resumed, viewer_tz=asked.viewer.tz, now=asked.deps.clock()
    )


async def delete_schedule(parsed: grammar.Delete, asked: Asked) -> replies.Reply:
    await asked.deps.schedules.delete(asked.team)
    return replies.schedule_deleted_reply()


async def cancel_run(parsed: grammar.Cancel, asked: Asked) -> replies.Reply:
    viewer = asked.viewer
    run = await asked.deps.runs.cancel(asked.team, viewer.user_id, is_admin=viewer.is_admin)
    return replies.cancel_requested_reply(run.job_run_id)


async def start_run(parsed: grammar.StartRun, asked: Asked) -> replies.Reply:
    client, deps, viewer = asked.client, asked.deps, asked.viewer
    channel_ids: list[str] = []
    names: dict[str, str] = dict(parsed.channel_labels)  # as Slack sent them: `<#C…|name>`
    if not parsed.all_channels:
        checked = await check_named_channels(parsed, "run", client, deps)
        if isinstance(checked, replies.Reply):
            return checked
        channel_ids = list(checked.ids)
        names |= checked.names  # Slack's list has the final word on a channel's name
    run = await deps.runs.start_manual(
        deps.team_id, viewer.user_id, days=parsed.days, channel_ids=channel_ids or None
    )
    channels = [ChannelRef(c, names.get(c)) for c in channel_ids]
    return replies.run_started_reply(run.job_run_id, days=parsed.days, channels=channels or None)


async def answer_search(parsed: grammar.Search, asked: Asked) -> replies.Reply:
    return await search.answer_search(parsed, asked.client, asked.deps, asked.viewer)


async def confirm_purge(parsed: grammar.Purge, asked: Asked) -> replies.Reply:
    return await purge_confirmation(asked.deps, asked.viewer)


ANSWERS: dict[type, Answer] = {
    grammar.Status: answer_status,
    grammar.ListSchedule: answer_list,
    grammar.History: answer_history,
    grammar.Pause: pause_schedule,
    grammar.Resume: resume_schedule,
    grammar.Delete: delete_schedule,
    grammar.Cancel: cancel_run,
    grammar.StartRun: start_run,
    grammar.Purge: confirm_purge,
    grammar.Search: answer_search,
}
