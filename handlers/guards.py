"""Middleware: hand listeners their dependencies, refuse other workspaces, and keep schedule
changes to admins. The workspace always comes from the verified request, never from user input."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from blocks.replies import admin_only_reply, wrong_workspace_reply
from handlers.background import after_ack
from handlers.deps import Deps, deps_of

log = logging.getLogger(__name__)
Next = Callable[[], Awaitable[None]]


def register(app: AsyncApp, deps: Deps) -> None:
    app.use(AdmitRequest(deps))


class AdmitRequest(AsyncMiddleware):
    """Every request: hand listeners their dependencies, and refuse other workspaces.

    A class middleware, which Bolt calls as it is: a function middleware costs a keyword-argument
    injection per request, and the two this replaces were a quarter of Bolt's dispatch time
    (profiled under `bench/bench_ack.py`'s bursts)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        req.context["deps"] = self.deps
        refusal = other_workspace_refusal(req.context, req.body, self.deps)
        if refusal is not None:
            return refusal
        await next()
        return resp


def other_workspace_refusal(
    context: AsyncBoltContext, body: dict[str, Any], deps: Deps
) -> BoltResponse | None:
    """A request signed for another team changes nothing and says so (commands see the text)."""
    # Bolt's `context.team_id` prefers a view's `app_installed_team_id` over the request's own
    # team: check the team the request says it comes from as well.
    team = body.get("team")
    claimed = {t for t in (context.team_id, body.get("team_id"),
                           team.get("id") if isinstance(team, dict) else None) if t}
    others = sorted(t for t in claimed if t != deps.team_id)
    if not others:
        return None
    log.warning("refused a request for team %s: this app serves %s", others[0], deps.team_id)
    if body.get("command"):
        reply = wrong_workspace_reply().as_kwargs()
        return BoltResponse(status=200, body=json.dumps(reply),
                            headers={"content-type": "application/json"})
    return BoltResponse(status=200, body="")


async def require_admin(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext,
    respond: AsyncRespond | None, next: Next,
) -> BoltResponse | None:
    """Listener middleware for every path that changes the schedule (buttons, modal submissions).
    A refusal returns the acknowledgement as the response: a middleware that neither calls
    `next()` nor returns a response would let Bolt try the next listener (our fallbacks)."""
    deps = deps_of(context)
    user_id = context.user_id or ""
    viewer = await deps.people.viewer(client, user_id)
    if viewer.is_admin:
        await next()
        return None
    log.warning("refused a schedule change by non-admin %s (%s)", user_id, body.get("type"))
    reply = admin_only_reply()
    if body.get("type") == "view_submission":
        block_id = first_block_id(body.get("view") or {})
        await ack(response_action="errors", errors={block_id: reply.text})
        return ack.response
    await ack()
    if respond is not None and body.get("response_url"):
        after_ack(respond(**reply.as_kwargs(), replace_original=False))
    else:  # App Home: show the member their read-only view again
        after_ack(deps.home.publish(client, deps, user_id))
    return ack.response


def first_block_id(view: dict[str, Any]) -> str:
    for block in view.get("blocks") or []:
        if block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    values = (view.get("state") or {}).get("values") or {}
    return next(iter(values), "form")
