"""Helpers shared by the fakeslack tests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from fakeslack import Channel, Workspace

NOW = 1_760_000_000.0


def member_channel(ws: Workspace, *, private: bool = False) -> Channel:
    """The busiest non-archived channel the bot is in."""
    chans = [
        c
        for c in ws.channels.values()
        if not c.is_im
        and not c.is_archived
        and c.is_private == private
        and ws.bot_user_id in c.members
    ]
    return max(chans, key=lambda c: len(c.top))


def channel_where(ws: Workspace, **want: bool) -> Channel:
    for c in ws.channels.values():
        if c.is_im:
            continue
        facts = {
            "private": c.is_private,
            "archived": c.is_archived,
            "member": ws.bot_user_id in c.members,
        }
        if all(facts[k] == v for k, v in want.items()):
            return c
    raise LookupError(want)


def small_modal(title: str, submit: str, callback_id: str, text: str) -> dict[str, Any]:
    """A minimal valid modal: a title, a submit button and one mrkdwn section."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "callback_id": callback_id,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


async def slack_refusal(call: Awaitable[Any]) -> dict[str, Any]:
    """The body of the error answer `call` gets (slack_sdk raises it as a SlackApiError)."""
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value.response.data  # type: ignore[no-any-return]


async def refused(call: Awaitable[Any]) -> str:
    """The `error` code `call` is refused with."""
    return str((await slack_refusal(call))["error"])
