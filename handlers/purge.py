"""`/backfill purge`'s confirmation and its two buttons: Purge and Cancel.

`/backfill purge` itself is admin only and refused in the acknowledgement (`handlers.commands`);
after it, `confirmation` answers with what exactly would be removed and the buttons. The Purge
button asks Slack again who pressed it (`users.info` through `Deps.people`, as
`handlers.guards.require_admin` does: a button payload can be forged by any member), acknowledges
at once, purges after the acknowledgement and replaces the confirmation with what was removed.
The workspace is always `deps.team_id`, the verified request's; nothing in the payload names it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks import ids, replies
from blocks import purge as purge_blocks
from handlers.deps import Deps, deps_of
from scheduler.people import Viewer
from scheduler.purge import PurgeRefused

log = logging.getLogger(__name__)
WHAT = "purge the stored copy"  # "Only workspace admins can …"


def register(app: AsyncApp) -> None:
    app.action(ids.PURGE_CONFIRM)(handle_purge_confirm)
    app.action(ids.PURGE_CANCEL)(handle_purge_cancel)


def _unavailable() -> replies.Reply:
    return replies.error_reply("Purging is not available in this app process. Nothing was removed.")


async def confirmation(deps: Deps, viewer: Viewer) -> replies.Reply:
    """`/backfill purge`'s answer, for an admin: the confirmation, or why there is none."""
    if deps.purge is None:
        return _unavailable()
    preview = await deps.purge.preview(deps.team_id)
    if preview.running is not None:
        return purge_blocks.purge_running_reply(
            preview.running.job_run_id, preview.running.triggered_by
        )
    if preview.stored.empty and preview.documents == 0:
        return purge_blocks.purge_nothing_reply()
    live = deps.mirror is not None and deps.mirror.config.live
    return purge_blocks.purge_confirm_reply(
        messages=preview.stored.messages,
        documents=preview.documents,
        runs=preview.stored.runs,
        schedule=preview.stored.schedule,
        live_mirror=live,
    )


async def handle_purge_confirm(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
) -> None:
    await ack()
    deps = deps_of(context)
    user_id = str((body.get("user") or {}).get("id") or "")
    if not body.get("response_url"):  # a forged payload from no message: nowhere to answer
        respond = None
    deps.after_ack(purge_after_ack(deps, client, user_id, respond), respond)


async def purge_after_ack(
    deps: Deps, client: AsyncWebClient, user_id: str, respond: AsyncRespond | None
) -> None:
    viewer = await deps.people.viewer(client, user_id)
    if not viewer.is_admin:
        log.warning("refused a purge by non-admin %s", user_id)
        await _tell(respond, replies.admin_only_reply(WHAT), replace=False)
        return
    if deps.purge is None:
        await _tell(respond, _unavailable(), replace=False)
        return
    try:
        outcome = await deps.purge.purge(deps.team_id)
    except PurgeRefused as exc:
        # A new message: the confirmation stays, to be pressed once the run has stopped.
        refusal = purge_blocks.purge_running_reply(exc.run.job_run_id, exc.run.triggered_by)
        await _tell(respond, refusal, replace=False)
        return
    if outcome.nothing:
        # A second press (or two at once): the first one's answer stays where it is.
        await _tell(respond, purge_blocks.purge_nothing_reply(), replace=False)
    else:
        removed = outcome.removed
        done = purge_blocks.purge_done_reply(
            messages=removed.messages,
            documents=outcome.documents,
            runs=removed.runs,
            schedule=removed.schedule,
            collection_removed=outcome.collection_removed,
        )
        await _tell(respond, done, replace=True)
    await deps.home.publish(client, user_id)


async def handle_purge_cancel(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond | None
) -> None:
    """Changes nothing, so nobody's rights are asked: the confirmation gives way to a line."""
    await ack()
    deps = deps_of(context)
    if not body.get("response_url"):
        return
    deps.after_ack(_tell(respond, purge_blocks.purge_cancelled_reply(), replace=True), respond)


async def _tell(respond: AsyncRespond | None, reply: replies.Reply, *, replace: bool) -> None:
    if respond is not None:
        await respond(**reply.as_kwargs(), replace_original=replace)
