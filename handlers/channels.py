"""Check the channels a `/backfill` command or a modal named against Slack's channel list (the
directory in `scheduler.channel_directory`) before anything is stored or started.

Slack sends channels it recognised in a command as `<#C123|name>`, but a command can carry any id
(typed, pasted, or forged), and a forged form any `selected_conversations`: every id and every
`#name` is looked up in one (cached) list walk, never one call per id. What Slack does not list is
refused, naming it.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from blocks import channel_replies
from blocks.replies import Reply
from handlers.deps import Deps
from scheduler.channel_directory import ChannelCheck, ChannelLookupFailed

# A command is answered through its response_url after the acknowledgement: time enough for a
# walk of a big workspace's list, still bounded.
COMMAND_LOOKUP_SECONDS = 15.0
# A modal submission waits for this answer before its acknowledgement (Slack gives 3 s in all;
# the admin check and the run's claim come before and after it).
MODAL_LOOKUP_SECONDS = 1.5
# After a modal's acknowledgement, how long its follow-up waits for the list.
FOLLOW_UP_LOOKUP_SECONDS = 30.0


async def check_channels(
    deps: Deps,
    client: AsyncWebClient,
    *,
    ids: Sequence[str] = (),
    names: Sequence[str] = (),
    usage_line: str | None = None,
    timeout: float = COMMAND_LOOKUP_SECONDS,
    outcome: str = channel_replies.NOTHING_CHANGED,
) -> ChannelCheck | Reply:
    """The resolved channels, or the reply refusing them (some not found, or no list in time)."""
    try:
        check = await deps.channels.check(
            client, deps.team_id, ids=ids, names=names, timeout=timeout
        )
    except ChannelLookupFailed:
        return channel_replies.channel_check_failed_reply(outcome=outcome)
    if check.unknown:
        return channel_replies.channels_not_found_reply(check.unknown, usage_line, outcome=outcome)
    return check
