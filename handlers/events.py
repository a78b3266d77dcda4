"""The live mirror's listeners: Slack's message events (every subtype: edits and deletions are
`message` events too) and the channel events the mirror follows.

Each event is written to the mirror's durable inbox by a listener middleware, which Bolt runs
before it acknowledges the event: an acknowledged event is stored, and when the database does not
answer the middleware raises, Bolt answers 500 and Slack retries later. The listener itself has
nothing left to do (the mirror's drainer applies the inbox). Events of another workspace never
get here (`handlers.guards` acknowledges and drops them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from handlers.deps import deps_of
from scheduler.mirror_rules import CHANNEL_EVENTS


def register(app: AsyncApp) -> None:
    for event_type in ("message", *sorted(CHANNEL_EVENTS)):
        app.event(event_type, middleware=[into_the_inbox])(applied_by_the_drainer)


async def into_the_inbox(
    body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    mirror = deps_of(context).mirror
    if mirror is not None:
        await mirror.take_in(body)
    await next()


async def applied_by_the_drainer() -> None:
    """Nothing to do once the event is in the inbox; Bolt acknowledges it."""
