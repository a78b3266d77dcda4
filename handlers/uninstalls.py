"""`app_uninstalled` and `tokens_revoked`: acknowledged at once, then the workspace's tokens are
deleted and its schedule paused (`scheduler.uninstalls`). Bolt lets both through without an
`authorize` (the token is already gone); the workspace is the verified request's."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from handlers.deps import deps_of


def register(app: AsyncApp) -> None:
    app.event("app_uninstalled")(removed)
    app.event("tokens_revoked")(removed)


async def removed(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    deps = deps_of(context)
    event = body.get("event") or {}
    if event.get("type") == "tokens_revoked":
        bots = (event.get("tokens") or {}).get("bot") or []
        if not bots:
            return  # only user tokens, and the app keeps none
    if deps.uninstalls is not None:
        deps.after_ack(
            deps.uninstalls.removed(deps.team_id, context.enterprise_id, str(event.get("type")))
        )
