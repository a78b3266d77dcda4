"""Modal submissions: the schedule form (admins only) and the run-now form. Errors go back inline
(`response_action: errors`) so nothing is stored until the form is right.

The chosen channels are checked against Slack's channel list (a forged submission can carry any
id) before the acknowledgement, within `MODAL_LOOKUP_SECONDS` so Slack's 3 s are kept; when the list
cannot be read that fast, the form is acknowledged (it closes) and the check finishes afterwards:
the schedule is saved or the run started only if every channel is known, else a DM says why not.
Whatever shape the submitted state has, the parsers answer with an inline error, never a crash.

These listeners call Slack and the database before `ack()` by design: a refusal (an unknown
channel, a member who may not run, a run already going) must be the acknowledgement itself,
`response_action: errors`, so the form stays open to be corrected. All else comes after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks import channel_replies, ids, replies
from blocks.modals import (
    RunFormInput,
    ScheduleFormInput,
    parse_run_submission,
    parse_schedule_submission,
)
from handlers.channels import FOLLOW_UP_LOOKUP_SECONDS, MODAL_LOOKUP_SECONDS, check_channels
from handlers.deps import Deps, deps_of
from handlers.guards import require_admin
from scheduler.channel_directory import ChannelCheck, ChannelLookupFailed, ChannelLookupTimeout
from scheduler.cron import ScheduleError, ScheduleSpec, validate_schedule
from scheduler.runs import RunRefused

SCHEDULE_NOT_SAVED = "The schedule was not saved."
RUN_NOT_STARTED = "The run was not started."


def register(app: AsyncApp) -> None:
    app.view(ids.SCHEDULE_MODAL, middleware=[require_admin])(handle_view_schedule)
    app.view(ids.RUN_MODAL)(handle_view_run)


def state_values(view: object) -> object:
    """`view.state.values` as submitted, or None when any level is not an object."""
    state = view.get("state") if isinstance(view, Mapping) else None
    return state.get("values") if isinstance(state, Mapping) else None


def submitter(body: Mapping[str, Any], context: AsyncBoltContext) -> str:
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, Mapping) else None
    return user_id if isinstance(user_id, str) and user_id else str(context.user_id or "")


async def channels_inline_error(
    deps: Deps, client: AsyncWebClient, channel_ids: tuple[str, ...]
) -> str | None:
    """Why the chosen channels cannot be used, for the form; None when they all can. Raises
    `ChannelLookupTimeout` when Slack's list cannot be read before the acknowledgement is due."""
    try:
        check = await deps.channels.check(
            client, deps.team_id, ids=channel_ids, timeout=MODAL_LOOKUP_SECONDS
        )
    except ChannelLookupTimeout:
        raise
    except ChannelLookupFailed:
        return channel_replies.channel_check_failed_text()
    if check.unknown:
        return channel_replies.channels_not_found_text(check.unknown)
    return None


async def tell(client: AsyncWebClient, user_id: str, reply: replies.Reply) -> None:
    """A DM: the form is closed and a view submission has no response_url to answer through."""
    await client.chat_postMessage(channel=user_id, text=reply.text, blocks=reply.blocks)


async def checked_after_close(
    deps: Deps, client: AsyncWebClient, user_id: str, channel_ids: Sequence[str], outcome: str
) -> ChannelCheck | None:
    """The form closed before its channels were checked: check them now (longer bound). None,
    and a DM saying why, when any is unknown or the list still cannot be read."""
    checked = await check_channels(
        deps, client, ids=channel_ids, timeout=FOLLOW_UP_LOOKUP_SECONDS, outcome=outcome
    )
    if isinstance(checked, replies.Reply):
        await tell(client, user_id, checked)
        return None
    return checked


# --- the schedule form ------------------------------------------------------------------------------


async def handle_view_schedule(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    form = parse_schedule_submission(state_values(view))
    if not isinstance(form, ScheduleFormInput):
        await ack(response_action="errors", errors=form)
        return
    try:
        spec = validate_schedule(
            form.cron,
            form.tz,
            form.days,
            None if form.include_all_channels else list(form.channel_ids),
        )
    except ScheduleError as exc:
        await ack(response_action="errors", errors={_refused_block(form, exc): str(exc)[:1900]})
        return
    deps, user_id = deps_of(context), submitter(body, context)
    if spec.channel_ids:
        try:
            refusal = await channels_inline_error(deps, client, spec.channel_ids)
        except ChannelLookupTimeout:
            await ack()
            deps.after_ack(save_when_checked(spec, user_id, client, deps))
            return
        if refusal is not None:
            await ack(response_action="errors", errors={ids.SCHEDULE_CHANNELS_BLOCK: refusal})
            return
    await ack()
    deps.after_ack(save_and_show(spec, user_id, client, deps))


async def save_and_show(
    spec: ScheduleSpec, user_id: str, client: AsyncWebClient, deps: Deps
) -> None:
    await deps.schedules.save(deps.team_id, spec, user_id)
    await deps.home.publish(client, user_id)


async def save_when_checked(
    spec: ScheduleSpec, user_id: str, client: AsyncWebClient, deps: Deps
) -> None:
    """The form closed before its channels were checked: save only if they all are known."""
    checked = await checked_after_close(deps, client, user_id, spec.channel_ids, SCHEDULE_NOT_SAVED)
    if checked is not None:
        await save_and_show(spec, user_id, client, deps)


def _refused_block(form: ScheduleFormInput, error: ScheduleError) -> str:
    """The input `validate_schedule` refused (the form itself already checked days and channels)."""
    if error.field == "timezone":
        return ids.SCHEDULE_TZ_BLOCK
    if error.field == "channels":
        return ids.SCHEDULE_CHANNELS_BLOCK
    return form.cron_block_id


# --- the run-now form -------------------------------------------------------------------------------


async def handle_view_run(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    deps = deps_of(context)
    user_id = submitter(body, context)
    viewer = await deps.people.viewer(client, user_id)
    if not deps.may_run(viewer):
        await ack(
            response_action="errors",
            errors={ids.RUN_DAYS_BLOCK: replies.members_cannot_run_reply().text},
        )
        return
    form = parse_run_submission(state_values(view))
    if not isinstance(form, RunFormInput):
        await ack(response_action="errors", errors=form)
        return
    channel_ids = None if form.include_all_channels else form.channel_ids
    if channel_ids:
        try:
            refusal = await channels_inline_error(deps, client, channel_ids)
        except ChannelLookupTimeout:
            await ack()
            deps.after_ack(start_when_checked(form, user_id, client, deps))
            return
        if refusal is not None:
            await ack(response_action="errors", errors={ids.RUN_CHANNELS_BLOCK: refusal})
            return
    try:
        # The claim happens before the ack so a refusal can be shown in the form itself.
        await deps.runs.start_manual(
            deps.team_id,
            user_id,
            days=form.days,
            channel_ids=list(channel_ids) if channel_ids else None,
        )
    except RunRefused as exc:
        await ack(response_action="errors", errors={ids.RUN_DAYS_BLOCK: str(exc)[:1900]})
        return
    await ack()
    deps.after_ack(deps.home.publish(client, user_id))


async def start_when_checked(
    form: RunFormInput, user_id: str, client: AsyncWebClient, deps: Deps
) -> None:
    """The form closed before its channels were checked: start only if they all are known."""
    checked = await checked_after_close(deps, client, user_id, form.channel_ids, RUN_NOT_STARTED)
    if checked is None:
        return
    try:
        await deps.runs.start_manual(
            deps.team_id, user_id, days=form.days, channel_ids=list(checked.ids)
        )
    except RunRefused as exc:
        await tell(client, user_id, replies.error_reply(f"{exc} {RUN_NOT_STARTED}"))
        return
    await deps.home.publish(client, user_id)
