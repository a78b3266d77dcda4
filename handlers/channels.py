"""Resolve `#name` references typed in `/backfill` to channel ids.

Slack sends channels it recognised as `<#C123|name>` (the parser takes those ids directly); a bare
`#name` is only looked up here, among the channels the bot can see (`conversations.list`).
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient


async def resolve_channel_names(
    client: AsyncWebClient, names: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """`({name: channel_id}, [names not found])`; names compared without `#`, case-insensitively."""
    wanted = {n.lstrip("#").lower() for n in names if n.strip("# ")}
    found: dict[str, str] = {}
    cursor: str | None = None
    while wanted - found.keys():
        response = await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=200,
            cursor=cursor,
        )
        for channel in response.get("channels") or []:
            name = str(channel.get("name", "")).lower()
            if name in wanted:
                found[name] = str(channel["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return found, sorted(wanted - found.keys())
