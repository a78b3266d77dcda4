"""Buttons: App Home (schedule, run, cancel, refresh), the DM's Retry/Cancel, the status reply's
Cancel, and the schedule modal's preset menu. Each acknowledges first, then delegates."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks import ids, replies
from blocks.modals import ModalContext, run_modal, schedule_modal
from handlers.background import after_ack
from handlers.data import schedule_info
from handlers.deps import Deps, deps_of
from handlers.guards import require_admin
from scheduler.cron import ScheduleError
from scheduler.runs import RunRefused

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    admin_only = [require_admin]
    # `urgent`: the work opens or updates a modal, and a trigger_id lives 3 seconds.
    open_schedule = acked(handle_home_open_schedule, urgent=True)
    app.action(ids.HOME_SCHEDULE_CREATE, middleware=admin_only)(open_schedule)
    app.action(ids.HOME_SCHEDULE_EDIT, middleware=admin_only)(open_schedule)
    app.action(ids.HOME_SCHEDULE_PAUSE, middleware=admin_only)(acked(handle_home_schedule_change))
    app.action(ids.HOME_SCHEDULE_RESUME, middleware=admin_only)(acked(handle_home_schedule_change))
    app.action(ids.HOME_SCHEDULE_DELETE, middleware=admin_only)(acked(handle_home_schedule_change))
    preset = acked(handle_modal_preset, urgent=True)
    app.action(ids.SCHEDULE_PRESET_ACTION, middleware=admin_only)(preset)
    app.action(ids.HOME_RUN_NOW)(acked(handle_home_run_now, urgent=True))
    for action_id in (ids.HOME_CANCEL_RUN, ids.DM_CANCEL_RUN, ids.REPLY_CANCEL_RUN):
        app.action(action_id)(acked(handle_action_cancel_run))
    app.action(ids.DM_RETRY_RUN)(acked(handle_dm_retry_run))
    app.action(ids.HOME_REFRESH)(acked(handle_home_refresh))


ButtonWork = Callable[
    [dict[str, Any], AsyncWebClient, AsyncBoltContext, "AsyncRespond | None", dict[str, Any]],
    Coroutine[Any, Any, None],
]


def acked(work: ButtonWork, *, urgent: bool = False) -> Callable[..., Awaitable[None]]:
    """A button listener: acknowledge at once, then do `work` after the acknowledgement (at
    once too when `urgent`: the work opens or updates a modal)."""

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
        respond: AsyncRespond | None,
        action: dict[str, Any],
    ) -> None:
        await ack()
        after_ack(work(body, client, context, respond, action), respond, urgent=urgent)

    listener.__name__ = listener.__qualname__ = work.__name__
    return listener


def _user_id(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def _action_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or actions[0].get("selected_option", {}).get("value") or "")


async def _tell(
    client: AsyncWebClient,
    deps: Deps,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    reply: replies.Reply,
) -> None:
    """Answer where the click happened: in the message (DM, ephemeral), or by refreshing Home."""
    if respond is not None and body.get("response_url"):
        await respond(**reply.as_kwargs(), replace_original=False)
    await deps.home.publish(client, deps, _user_id(body))


async def handle_home_open_schedule(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    viewer = await deps.people.viewer(client, _user_id(body))
    existing = schedule_info(await deps.schedules.get(deps.team_id))
    modal_context = ModalContext(
        team_id=deps.team_id,
        user_id=viewer.user_id,
        editing=existing is not None,
        schedule_id=existing.schedule_id if existing else None,
    )
    await client.views_open(
        trigger_id=body["trigger_id"],
        view=schedule_modal(existing, default_tz=viewer.tz or "UTC", context=modal_context),
    )


async def handle_home_schedule_change(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    change = {
        ids.HOME_SCHEDULE_PAUSE: deps.schedules.pause,
        ids.HOME_SCHEDULE_RESUME: deps.schedules.resume,
        ids.HOME_SCHEDULE_DELETE: deps.schedules.delete,
    }[action["action_id"]]
    try:
        await change(deps.team_id)
    except ScheduleError as exc:  # e.g. paused twice from two tabs: Home shows the real state
        log.info("schedule change %s not applied: %s", action["action_id"], exc)
    await deps.home.publish(client, deps, _user_id(body))


async def handle_modal_preset(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    """A preset fills the cron input: re-render the modal with that cron under a new block id."""
    deps = deps_of(context)
    view = body.get("view") or {}
    old = ModalContext.from_metadata(view.get("private_metadata"))
    new_context = ModalContext(
        team_id=deps.team_id,
        user_id=_user_id(body),
        channel_id=old.channel_id,
        editing=old.editing,
        schedule_id=old.schedule_id,
        cron_revision=old.cron_revision + 1,
    )
    viewer = await deps.people.viewer(client, _user_id(body))
    existing = schedule_info(await deps.schedules.get(deps.team_id))
    await client.views_update(
        view_id=view["id"],
        hash=view.get("hash"),
        view=schedule_modal(
            existing,
            default_tz=viewer.tz or "UTC",
            cron_value=_action_value(body),
            context=new_context,
        ),
    )


async def handle_home_run_now(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    viewer = await deps.people.viewer(client, _user_id(body))
    if not deps.may_run(viewer):
        await _tell(client, deps, body, respond, replies.members_cannot_run_reply())
        return
    modal_context = ModalContext(team_id=deps.team_id, user_id=viewer.user_id)
    await client.views_open(trigger_id=body["trigger_id"], view=run_modal(context=modal_context))


async def handle_action_cancel_run(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    viewer = await deps.people.viewer(client, _user_id(body))
    # The button names its run: one clicked after that run ended (a status reply, a Home tab or a
    # DM still on screen) must not stop whichever run is going now.
    value = _action_value(body)
    try:
        run = await deps.runs.cancel(
            deps.team_id,
            viewer.user_id,
            is_admin=viewer.is_admin,
            job_run_id=int(value) if value.isdigit() else None,
        )
        reply = replies.cancel_requested_reply(run.job_run_id)
    except RunRefused as exc:
        reply = replies.error_reply(str(exc))
    await _tell(client, deps, body, respond, reply)


async def handle_dm_retry_run(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    viewer = await deps.people.viewer(client, _user_id(body))
    if not deps.may_run(viewer):
        await _tell(client, deps, body, respond, replies.members_cannot_run_reply())
        return
    try:
        job_run_id = int(_action_value(body))
        run = await deps.runs.retry(deps.team_id, job_run_id, viewer.user_id)
        reply = replies.run_started_reply(run.job_run_id, days=run.days or 7)
    except ValueError:
        reply = replies.error_reply("That button no longer points at a run. Use `/backfill run`.")
    except RunRefused as exc:
        reply = replies.error_reply(str(exc))
    await _tell(client, deps, body, respond, reply)


async def handle_home_refresh(
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    action: dict[str, Any],
) -> None:
    deps = deps_of(context)
    await deps.home.publish(client, deps, _user_id(body))
