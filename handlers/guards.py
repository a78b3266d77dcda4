"""Middleware: hand listeners their dependencies, refuse other workspaces (and requests naming
none), refuse people who are not of this workspace, and keep schedule changes to admins. The
workspace always comes from the verified request, never from user input."""

from __future__ import annotations

import asyncio
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

from blocks.limits import USER_ID
from blocks.replies import (
    Reply,
    admin_only_reply,
    no_workspace_reply,
    not_a_member_reply,
)
from handlers.deps import Deps, ServedWorkspaces, deps_of
from scheduler.people import UNKNOWN
from scheduler.slack_errors import SLACK_UNREACHABLE

log = logging.getLogger(__name__)
Next = Callable[[], Awaitable[None]]
LOOKUP_BUDGET_S = 1.5  # of the 3 s Slack gives an acknowledgement
# Payloads in which a person asks the app to act (their `user` is the one asking).
INTERACTIONS = frozenset(
    {
        "block_actions",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "block_suggestion",
        "interactive_message",
    }
)


def register(app: AsyncApp, served: ServedWorkspaces) -> None:
    app.use(AdmitRequest(served))


class AdmitRequest(AsyncMiddleware):
    """Every request: hand listeners their workspace's dependencies, refuse workspaces not served
    here (and requests that name none, or several), and refuse people who are not of the
    workspace (strangers from other organisations, deactivated accounts, bots, ids Slack does not
    know).

    A class middleware, which Bolt calls as it is: a function middleware costs a keyword-argument
    injection per request, and the two this replaces were a quarter of Bolt's dispatch time
    (profiled under `bench/bench_ack.py`'s bursts)."""

    def __init__(self, served: ServedWorkspaces) -> None:
        self.served = served

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        deps, refusal = await self.workspace_of(req.context, req.body)
        if deps is not None:
            req.context["deps"] = deps
            refusal = await stranger_refusal(req.context, req.body, deps)
        if refusal is not None:
            return refusal
        await next()
        return resp

    async def workspace_of(
        self, context: AsyncBoltContext, body: dict[str, Any]
    ) -> tuple[Deps | None, BoltResponse | None]:
        """The `Deps` of the one workspace the request names, or the refusal: a request for a
        workspace not served here, for several, or for none changes nothing and says so
        (commands see the text). An enterprise payload is served when the workspace it names
        is."""
        claimed = claimed_teams(context, body)
        if not claimed:
            log.warning(
                "refused a request naming no workspace (%s, enterprise %s)",
                body.get("command") or body.get("type"),
                context.enterprise_id,
            )
            return None, _refuse(body, no_workspace_reply())
        deps = (
            await self.served.deps_for(next(iter(claimed)), context.enterprise_id)
            if len(claimed) == 1
            else None
        )
        if deps is None:
            log.warning(
                "refused a request for team %s: not served here", ", ".join(sorted(claimed))
            )
            return None, _refuse(body, self.served.refusal())
        return deps, None


def claimed_teams(context: AsyncBoltContext, body: dict[str, Any]) -> set[str]:
    """Every workspace the request names. Bolt's `context.team_id` prefers a view's
    `app_installed_team_id` over the request's own team, and org-wide installs send `team: null`
    (the workspace then is in `user.team_id` or `view.team_id`) or a command without `team_id`:
    each place is read, so no single one can hide another workspace."""
    team, user, view = body.get("team"), body.get("user"), body.get("view")
    authorizations = body.get("authorizations")
    first_authorization = (
        authorizations[0]
        if isinstance(authorizations, list)
        and authorizations
        and isinstance(authorizations[0], dict)
        else {}
    )
    candidates = [
        context.team_id,
        body.get("team_id"),
        team.get("id") if isinstance(team, dict) else team,
        user.get("team_id") if isinstance(user, dict) else None,
        view.get("team_id") if isinstance(view, dict) else None,
        view.get("app_installed_team_id") if isinstance(view, dict) else None,
        first_authorization.get("team_id"),
    ]
    return {t for t in candidates if isinstance(t, str) and t}


async def stranger_refusal(
    context: AsyncBoltContext, body: dict[str, Any], deps: Deps
) -> BoltResponse | None:
    """A command or interaction from someone who is not a person of this workspace: refused
    before any listener, so nothing changes and nothing is published for them. Events are not
    checked here: their `user` is an author, not someone asking the app to act. The `users.info`
    lookup comes before the acknowledgement by design (the refusal is the acknowledgement); it is
    cached briefly and bounded by `LOOKUP_BUDGET_S`."""
    kind = body.get("type")
    if not (body.get("command") or (isinstance(kind, str) and kind in INTERACTIONS)):
        return None
    user = body.get("user")
    user_id = body.get("user_id") or (user.get("id") if isinstance(user, dict) else None)
    if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id) or context.client is None:
        # Not an id Slack gives people (`U…`, `W…` on Grid): nobody to ask `users.info` about.
        return _refuse(body, not_a_member_reply(UNKNOWN))
    try:
        # Bounded: a rate-limited `users.info` must not hold the acknowledgement past Slack's
        # 3 seconds (the cache answers most lookups at once).
        async with asyncio.timeout(LOOKUP_BUDGET_S):
            viewer = await deps.people.viewer(context.client, user_id)
    except SLACK_UNREACHABLE as exc:
        # Slack could not answer in time: the listeners check rights themselves, as before.
        log.warning("could not look up %s before acting (%s)", user_id, type(exc).__name__)
        return None
    if viewer.may_use_app:
        return None
    log.warning(
        "refused a request from %s: %s in workspace %s", user_id, viewer.standing, deps.team_id
    )
    return _refuse(body, not_a_member_reply(viewer.standing))


def _refuse(body: dict[str, Any], reply: Reply) -> BoltResponse:
    """The refusal as the acknowledgement: the text for commands, the message under the form's
    first input for modal submissions, a bare acknowledgement for everything else."""
    if body.get("command"):
        payload: dict[str, Any] = reply.as_kwargs()
    elif body.get("type") == "view_submission" and isinstance(body.get("view"), dict):
        payload = {
            "response_action": "errors",
            "errors": {first_block_id(body["view"]): reply.text[:1900]},
        }
    else:
        return BoltResponse(status=200, body="")
    return BoltResponse(
        status=200, body=json.dumps(payload), headers={"content-type": "application/json"}
    )


async def require_admin(
    ack: AsyncAck,
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    next: Next,
) -> BoltResponse | None:
    """Listener middleware for every path that changes the schedule (buttons, modal submissions).
    A refusal returns the acknowledgement as the response: a middleware that neither calls
    `next()` nor returns a response would let Bolt try the next listener (our fallbacks).

    Asks `users.info` before the acknowledgement, by design: the refusal is the acknowledgement
    (a form answers with `response_action: errors`), and the lookup is the short-lived cache's
    (`AdmitRequest` has just made it for this request)."""
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
        deps.after_ack(respond(**reply.as_kwargs(), replace_original=False))
    else:  # App Home: show the member their read-only view again
        deps.after_ack(deps.home.publish(client, user_id))
    return ack.response


def first_block_id(view: dict[str, Any]) -> str:
    """The form's first input block, where Slack shows an error (any shape of view tolerated)."""
    blocks = view.get("blocks")
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return str(next(iter(values), "form")) if isinstance(values, dict) else "form"
