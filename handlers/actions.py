"""Buttons: App Home (schedule, run, cancel, refresh), the DM's Retry/Cancel, the status reply's
Cancel, and the schedule modal's preset menu. Each acknowledges first, then delegates its work
(one `Click` in) to run after the acknowledgement."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks import ids, replies
from blocks.modals import ModalContext, run_modal, schedule_modal
from handlers.deps import Deps, deps_of
from handlers.guards import require_admin
from scheduler.cron import ScheduleError
from scheduler.people import Viewer
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


@dataclass(frozen=True)
class Click:
    """One button click, as the work after its acknowledgement needs it."""

    body: dict[str, Any]
    client: AsyncWebClient
    deps: Deps
    respond: AsyncRespond | None
    action: dict[str, Any]

    @property
    def user_id(self) -> str:
        return str((self.body.get("user") or {}).get("id") or "")

    @property
    def value(self) -> str:
        """The button's value, or the chosen option's (menus)."""
        actions = self.body.get("actions") or [{}]
        first = actions[0]
        return str(first.get("value") or first.get("selected_option", {}).get("value") or "")

    async def viewer(self) -> Viewer:
        return await self.deps.people.viewer(self.client, self.user_id)

    async def tell(self, reply: replies.Reply) -> None:
        """Answer where the click happened: in the message (DM, ephemeral), and refresh Home."""
        if self.respond is not None and self.body.get("response_url"):
            await self.respond(**reply.as_kwargs(), replace_original=False)
        await self.deps.home.publish(self.client, self.user_id)

    async def tell_outcome(self, attempt: Awaitable[replies.Reply]) -> None:
        """Tell `attempt`'s reply, or why the run service refused it."""
        try:
            reply = await attempt
        except RunRefused as exc:
            reply = replies.error_reply(str(exc))
        await self.tell(reply)


ClickWork = Callable[[Click], Coroutine[Any, Any, None]]


def acked(work: ClickWork, *, urgent: bool = False) -> Callable[..., Awaitable[None]]:
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
        deps = deps_of(context)
        deps.after_ack(work(Click(body, client, deps, respond, action)), respond, urgent=urgent)

    listener.__name__ = listener.__qualname__ = work.__name__
    return listener


async def handle_home_open_schedule(click: Click) -> None:
    deps = click.deps
    viewer = await click.viewer()
    existing = await deps.schedules.get(deps.team_id)
    modal_context = ModalContext(
        team_id=deps.team_id,
        user_id=viewer.user_id,
        editing=existing is not None,
        schedule_id=existing.schedule_id if existing else None,
    )
    await click.client.views_open(
        trigger_id=click.body["trigger_id"],
        view=schedule_modal(existing, default_tz=viewer.tz or "UTC", context=modal_context),
    )


async def handle_home_schedule_change(click: Click) -> None:
    deps, action_id = click.deps, click.action["action_id"]
    change = {
        ids.HOME_SCHEDULE_PAUSE: deps.schedules.pause,
        ids.HOME_SCHEDULE_RESUME: deps.schedules.resume,
        ids.HOME_SCHEDULE_DELETE: deps.schedules.delete,
    }[action_id]
    try:
        await change(deps.team_id)
    except ScheduleError as exc:  # e.g. paused twice from two tabs: Home shows the real state
        log.info("schedule change %s not applied: %s", action_id, exc)
    await deps.home.publish(click.client, click.user_id)


async def handle_modal_preset(click: Click) -> None:
    """A preset fills the cron input: re-render the modal with that cron under a new block id."""
    deps = click.deps
    view = click.body.get("view") or {}
    old = ModalContext.from_metadata(view.get("private_metadata"))
    new_context = replace(
        old, team_id=deps.team_id, user_id=click.user_id, cron_revision=old.cron_revision + 1
    )
    viewer = await click.viewer()
    existing = await deps.schedules.get(deps.team_id)
    await click.client.views_update(
        view_id=view["id"],
        hash=view.get("hash"),
        view=schedule_modal(
            existing, default_tz=viewer.tz or "UTC", cron_value=click.value, context=new_context
        ),
    )


async def handle_home_run_now(click: Click) -> None:
    deps = click.deps
    viewer = await click.viewer()
    if not deps.may_run(viewer):
        await click.tell(replies.members_cannot_run_reply())
        return
    modal_context = ModalContext(team_id=deps.team_id, user_id=viewer.user_id)
    await click.client.views_open(
        trigger_id=click.body["trigger_id"], view=run_modal(context=modal_context)
    )


async def handle_action_cancel_run(click: Click) -> None:
    await click.tell_outcome(_cancel(click, await click.viewer()))


async def _cancel(click: Click, viewer: Viewer) -> replies.Reply:
    # The button names its run: one clicked after that run ended (a status reply, a Home tab or a
    # DM still on screen) must not stop whichever run is going now.
    value = click.value
    run = await click.deps.runs.cancel(
        click.deps.team_id,
        viewer.user_id,
        is_admin=viewer.is_admin,
        job_run_id=int(value) if value.isdigit() else None,
    )
    return replies.cancel_requested_reply(run.job_run_id)


async def handle_dm_retry_run(click: Click) -> None:
    viewer = await click.viewer()
    if not click.deps.may_run(viewer):
        await click.tell(replies.members_cannot_run_reply())
        return
    await click.tell_outcome(_retry(click, viewer))


async def _retry(click: Click, viewer: Viewer) -> replies.Reply:
    try:
        job_run_id = int(click.value)
        run = await click.deps.runs.retry(click.deps.team_id, job_run_id, viewer.user_id)
    except ValueError:
        return replies.error_reply("That button no longer points at a run. Use `/backfill run`.")
    return replies.run_started_reply(run.job_run_id, days=run.days or 7)


async def handle_home_refresh(click: Click) -> None:
    await click.deps.home.publish(click.client, click.user_id)
