"""Which channels a run walks: every public and private channel (or the ids asked for), joining
public ones the bot is not in when `auto_join`, and a plain reason for every channel skipped.
Imports the gateway and its errors only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.backfill.errors import ChannelUnavailable, SlackRequestError
from scheduler.backfill.gateway import SlackGateway


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    """A channel the run will walk."""

    id: str
    name: str
    is_private: bool


@dataclass(frozen=True, slots=True)
class SkippedChannel:
    """A channel the run did not (fully) walk, and why, in words an admin understands."""

    id: str
    name: str
    reason: str


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


async def resolve_channels(
    gateway: SlackGateway, *, channel_ids: Sequence[str] | None, auto_join: bool
) -> tuple[list[ChannelTarget], list[SkippedChannel]]:
    """(channels to walk, channels skipped). All channels come from `conversations.list` (archived
    ones listed too, so they can be reported); given ids are looked up with `conversations.info`,
    where `channel_not_found` is also what a private channel the bot is not in answers."""
    targets: list[ChannelTarget] = []
    skipped: list[SkippedChannel] = []
    if channel_ids is None:
        channels: list[Mapping[str, Any]] = [
            c async for c in gateway.list_channels(exclude_archived=False)
        ]
        # conversations.list also returns DMs/MPIMs only when asked; be defensive anyway.
        channels = [c for c in channels if not c.get("is_im") and not c.get("is_mpim")]
    else:
        channels = []
        for channel_id in dict.fromkeys(channel_ids):
            try:
                channels.append(await gateway.channel_info(channel_id))
            except (ChannelUnavailable, SlackRequestError) as exc:
                skipped.append(
                    SkippedChannel(
                        channel_id,
                        channel_id,
                        f"not found, or private and the bot is not a member ({exc.error})",
                    )
                )
    for channel in channels:
        admitted = await _admit(gateway, channel, auto_join)
        (targets if isinstance(admitted, ChannelTarget) else skipped).append(admitted)  # type: ignore[arg-type]
    return targets, skipped
