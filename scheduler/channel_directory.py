"""The channels the app can see, as Slack lists them (`conversations.list`), cached briefly per
workspace: the `/backfill` command and both modals check every channel they were given against it
before anything is stored or started, so an id Slack does not know never reaches a schedule or a
run. Imports the Slack SDK only; never `db`.

One walk serves every request of the moment: concurrent checks share the walk in flight, and a walk
outlives a caller that stopped waiting (a modal has under 3 s), so the follow-up finds it done.
A check that finds a channel missing from a list older than `refresh_after` walks once more (a
channel created a minute ago is not refused because of the cache).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
REFRESH_AFTER_SECONDS = 2.0
# Slack's conversations.list takes `limit` under 1000: the fewest pages per walk.
PAGE_SIZE = 999
# A walk longer than this is abandoned (a workspace of ~200k channels, or Slack rate limiting us
# for minutes): the callers are told the channels could not be checked.
WALK_SECONDS = 60.0
MAX_PAGES = 500


class ChannelLookupFailed(Exception):
    """Slack's channel list could not be read (an error, or not in the time given)."""


class ChannelLookupTimeout(ChannelLookupFailed):
    """The list was not read within the caller's time bound; the walk itself goes on."""


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """The channels a request named, resolved: `ids` in the order given (names resolved to ids),
    `names` id → name for showing, `unknown` what Slack does not list (ids as given, names as
    `#name`), in the order given."""

    ids: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Listing:
    at: float  # clock time the walk began
    names: dict[str, str]  # id -> name, every channel listed (archived ones included)
    by_name: dict[str, str]  # lower-cased name -> id, channels not archived
    private: frozenset[str] = frozenset()  # ids of the private channels among `names`


class ChannelDirectory:
    """`conversations.list` walked at most once per `refresh_after` per workspace, kept `ttl`."""

    def __init__(
        self,
        *,
        ttl: float = CACHE_SECONDS,
        refresh_after: float = REFRESH_AFTER_SECONDS,
        walk_seconds: float = WALK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._refresh_after = refresh_after
        self._walk_seconds = walk_seconds
        self._clock = clock
        self._cache: dict[str, _Listing] = {}
        self._walks: dict[str, asyncio.Task[_Listing]] = {}

    async def check(
        self,
        client: AsyncWebClient,
        team_id: str,
        *,
        ids: Sequence[str] = (),
        names: Sequence[str] = (),
        timeout: float,
    ) -> ChannelCheck:
        """Resolve `ids` and `names` (without `#`) against the list, within `timeout` seconds.
        Raises `ChannelLookupTimeout` when the list is not read in time, `ChannelLookupFailed`
        when Slack refused it."""
        try:
            return await asyncio.wait_for(self._check(client, team_id, ids, names), timeout)
        except TimeoutError as exc:
            raise ChannelLookupTimeout(f"no channel list within {timeout:g} s") from exc

    async def kinds(
        self, client: AsyncWebClient, team_id: str, *, timeout: float
    ) -> tuple[frozenset[str], frozenset[str]]:
        """`(public, private)`: the ids of the channels Slack lists for the bot (archived ones
        too: their history stays readable), from the cached list. Raises as `check` does."""
        try:
            listing = await asyncio.wait_for(self._listing(client, team_id, self._ttl), timeout)
        except TimeoutError as exc:
            raise ChannelLookupTimeout(f"no channel list within {timeout:g} s") from exc
        return frozenset(listing.names) - listing.private, listing.private

    async def _check(
        self, client: AsyncWebClient, team_id: str, ids: Sequence[str], names: Sequence[str]
    ) -> ChannelCheck:
        listing = await self._listing(client, team_id, self._ttl)
        result = _resolve(listing, ids, names)
        if result.unknown and self._clock() - listing.at >= self._refresh_after:
            listing = await self._listing(client, team_id, self._refresh_after)
            result = _resolve(listing, ids, names)
        return result

    async def _listing(self, client: AsyncWebClient, team_id: str, max_age: float) -> _Listing:
        cached = self._cache.get(team_id)
        if cached is not None and self._clock() - cached.at < max_age:
            return cached
        task = self._walks.get(team_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._walk(client, team_id))
            task.add_done_callback(_retrieve)
            self._walks[team_id] = task
        # Shielded: a caller that stops waiting (its own time bound) leaves the walk running
        # for the next caller, who would otherwise start it again from the first page.
        return await asyncio.shield(task)

    async def _walk(self, client: AsyncWebClient, team_id: str) -> _Listing:
        started = self._clock()
        try:
            listing = await asyncio.wait_for(
                _walk_list(client, team_id, started), self._walk_seconds
            )
        except TimeoutError as exc:
            raise ChannelLookupFailed(
                f"the channel list took over {self._walk_seconds:g} s"
            ) from exc
        except (SlackApiError, SlackClientError, aiohttp.ClientError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            log.warning("conversations.list failed: %s", error or type(exc).__name__)
            raise ChannelLookupFailed(str(error or type(exc).__name__)) from exc
        self._cache[team_id] = listing
        return listing


async def _walk_list(client: AsyncWebClient, team_id: str, started: float) -> _Listing:
    names: dict[str, str] = {}
    by_name: dict[str, str] = {}
    private: set[str] = set()
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        response = await client.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=False,
            limit=PAGE_SIZE,
            # Slack requires it of an org-wide install's token (its organisation's workspaces).
            team_id=team_id,
            **({"cursor": cursor} if cursor else {}),
        )
        channels = response.get("channels")
        for channel in channels if isinstance(channels, list) else []:
            _add(channel, names, by_name)
            if isinstance(channel, Mapping) and channel.get("is_private") is not False:
                private.add(str(channel.get("id")))  # unless Slack says public: private
        metadata = response.get("response_metadata")
        raw = metadata.get("next_cursor") if isinstance(metadata, Mapping) else None
        cursor = raw if isinstance(raw, str) and raw else None
        if cursor is None or cursor in seen:  # a cursor handed out twice would loop forever
            break
        seen.add(cursor)
    return _Listing(
        at=started, names=names, by_name=by_name, private=frozenset(private) & set(names)
    )


def _add(channel: Any, names: dict[str, str], by_name: dict[str, str]) -> None:
    if not isinstance(channel, Mapping) or channel.get("is_im") or channel.get("is_mpim"):
        return
    channel_id, name = channel.get("id"), channel.get("name")
    if not isinstance(channel_id, str) or not channel_id:
        return
    name = name if isinstance(name, str) and name else channel_id
    names[channel_id] = name
    if not channel.get("is_archived"):  # a name names the live channel (archived: not found)
        by_name.setdefault(name.lower(), channel_id)


def _resolve(listing: _Listing, ids: Sequence[str], names: Sequence[str]) -> ChannelCheck:
    resolved: dict[str, None] = {}
    shown: dict[str, str] = {}
    unknown: list[str] = []
    for channel_id in ids:
        if channel_id in listing.names:
            resolved.setdefault(channel_id)
            shown[channel_id] = listing.names[channel_id]
        elif channel_id not in unknown:
            unknown.append(channel_id)
    for raw in names:
        name = raw.lstrip("#").lower()
        found = listing.by_name.get(name)
        if found is not None:
            resolved.setdefault(found)
            shown[found] = listing.names.get(found, name)
        elif f"#{name}" not in unknown:
            unknown.append(f"#{name}")
    return ChannelCheck(ids=tuple(resolved), names=shown, unknown=tuple(unknown))


def _retrieve(task: asyncio.Task[_Listing]) -> None:
    """A walk nobody waits for any more must not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()
