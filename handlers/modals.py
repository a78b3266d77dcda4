"""Modal submissions: the schedule form (admins only) and the run-now form. Errors go back inline
(`response_action: errors`) so nothing is stored until the form is right."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks import ids, replies
from blocks.modals import ScheduleFormInput, parse_run_submission, parse_schedule_submission
from handlers.background import after_ack
from handlers.deps import Deps, deps_of
from handlers.guards import require_admin
from scheduler.cron import ScheduleError, ScheduleSpec, validate_schedule
from scheduler.runs import RunRefused


def register(app: AsyncApp) -> None:
    app.view(ids.SCHEDULE_MODAL, middleware=[require_admin])(handle_view_schedule)
    app.view(ids.RUN_MODAL)(handle_view_run)


async def handle_view_schedule(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    form = parse_schedule_submission((view.get("state") or {}).get("values"))
    if not isinstance(form, ScheduleFormInput):
        await ack(response_action="errors", errors=form)
        return
    try:
        spec = validate_schedule(form.cron, form.tz, form.days,
                                 None if form.include_all_channels else list(form.channel_ids))
    except ScheduleError as exc:
        await ack(response_action="errors", errors={_refused_block(form, exc): str(exc)[:1900]})
        return
    await ack()
    after_ack(save_and_show(spec, str(body["user"]["id"]), client, deps_of(context)))


async def save_and_show(
    spec: ScheduleSpec, user_id: str, client: AsyncWebClient, deps: Deps
) -> None:
    await deps.schedules.save(deps.team_id, spec, user_id)
    await deps.home.publish(client, deps, user_id)


def _refused_block(form: ScheduleFormInput, error: ScheduleError) -> str:
    """The input `validate_schedule` refused (the form itself already checked days and channels)."""
    if error.field == "timezone":
        return ids.SCHEDULE_TZ_BLOCK
    return form.cron_block_id


async def handle_view_run(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    deps = deps_of(context)
    user_id = str(body["user"]["id"])
    viewer = await deps.people.viewer(client, user_id)
    if not deps.may_run(viewer):
        await ack(response_action="errors",
                  errors={ids.RUN_DAYS_BLOCK: replies.members_cannot_run_reply().text})
        return
    form = parse_run_submission((view.get("state") or {}).get("values"))
    if isinstance(form, dict):
        await ack(response_action="errors", errors=form)
        return
    try:
        # The claim happens before the ack so a refusal can be shown in the form itself.
        await deps.runs.start_manual(deps.team_id, user_id, days=form.days,
                                     channel_ids=None if form.include_all_channels
                                     else list(form.channel_ids))
    except RunRefused as exc:
        await ack(response_action="errors", errors={ids.RUN_DAYS_BLOCK: str(exc)[:1900]})
        return
    await ack()
    after_ack(deps.home.publish(client, deps, user_id))
