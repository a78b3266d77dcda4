"""The slow half of a listener, run after Bolt has answered Slack.

The app runs Bolt with `process_before_response=True`, so a request's HTTP response leaves as
soon as its listener returns. Listeners acknowledge, hand the rest (database reads, replies, views)
to `after_ack`, and return; without this, Bolt would keep every request open polling every 10 ms
for the acknowledgement, which under a burst of commands starves the event loop. The rest starts
once no other request is waiting for its acknowledgement (`handlers.foreground`). A failure is
told in plain words (`handlers.errors`): the database away or busy says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.errors import PLAIN_ERROR, explain_failure
from handlers.foreground import foreground

log = logging.getLogger(__name__)
__all__ = ["PLAIN_ERROR", "after_ack", "drain"]
_tasks: set[asyncio.Task[None]] = set()


def after_ack(
    work: Coroutine[Any, Any, object],
    respond: AsyncRespond | None = None,
    *,
    urgent: bool = False,
) -> None:
    """Run `work` in the background; a failure is logged and the user told in plain words.

    `urgent` work starts at once, not when the requests being answered are done: opening a modal
    must use its `trigger_id` within the 3 seconds Slack gives it, and is one call."""
    task = asyncio.get_running_loop().create_task(_guarded(work, respond, urgent))
    _tasks.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_tasks.discard)


async def _guarded(
    work: Coroutine[Any, Any, object], respond: AsyncRespond | None, urgent: bool
) -> None:
    try:
        if urgent:
            await work
        else:
            async with foreground().deferred():
                await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - logged and told in plain words below
        text = explain_failure(exc, "listener work after the acknowledgement failed")
        if respond is None:
            return
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            log.warning("could not tell the user about the failure", exc_info=True)


async def drain(timeout: float = 10.0) -> None:
    """On shutdown: let replies in flight finish, then cancel what is left."""
    pending = set(_tasks)
    if not pending:
        return
    _done, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
