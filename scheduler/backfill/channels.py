"""Which channels a run walks: every public and private channel (or the ids asked for), joining
public ones the bot is not in when `auto_join`, and a plain reason for every channel skipped.
Imports the gateway, its errors and `db.records` (a skipped channel is the run's own record type).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from db.records import SkippedChannel
from scheduler.backfill.errors import ChannelUnavailable, SlackRequestError
from scheduler.backfill.gateway import SlackGateway


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """A channel the run will walk."""

    id: str
    name: str
    is_private: bool


async def _admit(
    gateway: SlackGateway, channel: Mapping[str, Any], auto_join: bool
) -> ChannelTarget | SkippedChannel:
    channel_id = str(channel.get("id") or "")
    name = str(channel.get("name") or channel_id)
    is_private = bool(channel.get("is_private"))
    if channel.get("is_archived"):
        return SkippedChannel(channel_id, name, "archived")
    if not channel.get("is_member"):
        if is_private:
            return SkippedChannel(channel_id, name, "private channel the bot is not a member of")
        if not auto_join:
            return SkippedChannel(channel_id, name, "bot is not a member and auto-join is off")
        try:
            await gateway.join(channel_id)
        except (ChannelUnavailable, SlackRequestError) as exc:
            return SkippedChannel(channel_id, name, f"could not join ({exc.error})")
    return ChannelTarget(channel_id, name, is_private)


NOT_FOUND = "not found, or private and the bot is not a member"


async def resolve_channels(
    gateway: SlackGateway,
    *,
    channel_ids: Sequence[str] | None,
    auto_join: bool,
    cancel: asyncio.Event | None = None,
) -> tuple[list[ChannelTarget], list[SkippedChannel]]:
    """(channels to walk, channels skipped), from one `conversations.list` walk (archived channels
    listed too, so they can be reported). Given ids are picked out of that walk, never looked up
    one by one (`conversations.info` per id turned a list of made-up ids into a long rate-paced
    setup): an id the walk does not list is skipped as not found, which is also what a private
    channel the bot is not in is (Slack lists private channels to their members only). The walk
    stops early once every given id was seen; a set `cancel` stops it between channels (and so
    between pages), and the joins after it, returning what was resolved so far."""
    wanted = list(dict.fromkeys(channel_ids)) if channel_ids is not None else None
    found: dict[str, Mapping[str, Any]] = {}
    listed: list[Mapping[str, Any]] = []
    stopped = cancel is not None and cancel.is_set()
    if not stopped and wanted != []:
        pending = set(wanted) if wanted is not None else set()
        walk = gateway.list_channels(exclude_archived=False)
        try:
            async for channel in walk:
                if cancel is not None and cancel.is_set():
                    stopped = True
                    break
                # conversations.list also returns DMs/MPIMs only when asked; be defensive anyway.
                if (
                    not isinstance(channel, Mapping)
                    or channel.get("is_im")
                    or channel.get("is_mpim")
                ):
                    continue
                if wanted is None:
                    listed.append(channel)
                    continue
                channel_id = channel.get("id")
                if isinstance(channel_id, str) and channel_id in pending:
                    pending.discard(channel_id)
                    found[channel_id] = channel
                    if not pending:
                        break  # every given id seen: the rest of the list is not needed
        finally:
            await walk.aclose()  # type: ignore[attr-defined]
    targets: list[ChannelTarget] = []
    skipped: list[SkippedChannel] = []
    if wanted is not None:
        listed = [found[cid] for cid in wanted if cid in found]
        if not stopped:
            skipped += [SkippedChannel(cid, cid, NOT_FOUND) for cid in wanted if cid not in found]
    for entry in listed:
        if stopped or (cancel is not None and cancel.is_set()):
            break
        admitted = await _admit(gateway, entry, auto_join)
        (targets if isinstance(admitted, ChannelTarget) else skipped).append(admitted)  # type: ignore[arg-type]
    return targets, skipped
