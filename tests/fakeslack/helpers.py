"""Helpers shared by the fakeslack tests."""

from __future__ import annotations

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
