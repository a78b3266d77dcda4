"""Search of the stored copy, for `/backfill search`, its "More" button and the App Home modal.

Two halves, fused: the exact words in SQL (`db.search`: FTS5 or PostgreSQL full-text) and the
meaning in Chroma (the workspace's collection), merged by reciprocal rank fusion (each result
scores the sum of 1 / (RRF_K + its rank) over the halves that found it), so an exact error code
and a question in other words both come first whatever `EMBEDDING` is. With `EMBEDDING=hashing`
the second half is lexical too.

Private stays private: every search is limited to the channels the person searching may read in
Slack: the public channels Slack lists for the bot, and the private channels they share with the
bot (Slack's `users.conversations` for that person, kept a minute). Filters only ever narrow that
set; the rows shown come from SQL (the truth: a message deleted meanwhile is never shown from a
stale Chroma document), each checked against the set once more.

Imports `db` and `blocks.search` (the query type); Slack calls go through the listener's client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.search import RESULTS_PER_PAGE, SearchQuery, search_window
from db.messages import stored_messages
from db.records import MessageRecord, SearchHit
from db.search import search_words
from db.session import reading
from db.vectors import VectorStore
from scheduler.backfill.engine import format_ts, ts_micros
from scheduler.channel_directory import ChannelDirectory
from scheduler.people import Viewer

log = logging.getLogger(__name__)
# Reciprocal rank fusion's constant (Cormack et al.): ranks past the first few count for little.
RRF_K = 60
# How long a person's private channels are trusted before Slack is asked again.
MEMBERS_TTL_S = 60.0
# Each half is asked for this many, whatever the page: the fused order then stays the same from
# page to page (fusing deeper lists reorders them), and a search pages through at most this many.
DEPTH = 200
# Chroma filters channels and authors; days are checked on its results, so with a day filter it
# is asked for this many times more, never more than MAX_NEAR.
DAY_FILTER_FACTOR = 5
MAX_NEAR = 1000
# Nearest-neighbour search always answers something: a document farther than this (cosine
# distance, 0 same … 2 opposite) is not a match. Unrelated texts sit near 0.9–1.1 with both
# embeddings (all-MiniLM-L6-v2 and the hashing one); what shares words or meaning, below 0.8.
MAX_DISTANCE = 0.85
# Without a channel filter in its query, Chroma is asked for this many times more (some of its
# answers are of channels the searcher may not read, and are dropped).
UNFILTERED_FACTOR = 2
# Keys whose rows are read at a time while a page is filled.
ROWS_CHUNK = 50
# Time allowed for Slack's channel list when a search needs it.
LIST_TIMEOUT_S = 10.0
# Pages of a person's private channels read at most (999 each).
MAX_PAGES = 20


def may_search(viewer: Viewer, allowed: str) -> bool:
    """`SEARCH_ALLOWED`: `admins` lets admins search; `members` everyone who is a full member of
    the workspace. Guests never: a guest reads only the channels they were invited to, public
    ones included, which the public-channel rule here would not respect."""
    if viewer.is_admin:
        return True
    return allowed == "members" and viewer.is_member


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results, best first, and whether a next page has any."""

    hits: tuple[SearchHit, ...]
    more: bool


class PrivateMemberships:
    """The private channels a person shares with the bot, from `users.conversations` (Slack lists
    a user's private channels only where the caller is a member too: exactly the ones whose
    messages we hold), one walk per person, kept `ttl` seconds."""

    def __init__(self, ttl: float = MEMBERS_TTL_S, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    async def of(self, client: AsyncWebClient, team_id: str, user_id: str) -> frozenset[str]:
        key = (team_id, user_id)
        cached = self._cache.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        started = self._clock()
        channels: set[str] = set()
        cursor = ""
        for _ in range(MAX_PAGES):
            page = await client.users_conversations(
                user=user_id,
                types="private_channel",
                limit=999,
                cursor=cursor or None,
                team_id=team_id,  # required of an org-wide install's token
            )
            channels.update(
                str(c["id"])
                for c in page.get("channels") or []
                if isinstance(c, dict) and c.get("id")
            )
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        found = frozenset(channels)
        self._cache[key] = (started, found)
        return found


def permalink(base_url: str, record: MessageRecord) -> str:
    """Slack's link to a message (`https://<domain>.slack.com/archives/<C>/p<ts digits>`, a reply
    with its thread), from the workspace's URL as `auth.test` gives it."""
    link = f"{base_url.rstrip('/')}/archives/{record.channel_id}/p{record.ts.replace('.', '')}"
    if record.thread_ts is not None and record.thread_ts != record.ts:
        link += f"?thread_ts={record.thread_ts}&cid={record.channel_id}"
    return link


def _bound(moment: datetime | None, *, before: bool) -> str | None:
    """An exclusive `ts` bound for the instant `moment` (SQL compares `ts` as text)."""
    if moment is None:
        return None
    micros = int(moment.timestamp()) * 1_000_000
    return format_ts(micros if before else micros - 1)


def _ts_key(ts: str) -> int:
    """Slack's `ts` text in numeric order; an unreadable one sorts first."""
    try:
        return ts_micros(ts)
    except ValueError:
        return -1


def _inside(ts: str, after_ts: str | None, before_ts: str | None) -> bool:
    key = _ts_key(ts)
    if key < 0:
        return False
    return (after_ts is None or key > _ts_key(after_ts)) and (
        before_ts is None or key < _ts_key(before_ts)
    )


class SearchService:
    """Searches one workspace's copy for one person at a time (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorStore,
        directory: ChannelDirectory,
        *,
        memberships: PrivateMemberships | None = None,
        per_page: int = RESULTS_PER_PAGE,
    ) -> None:
        self._sessions = sessions
        self._vectors = vectors
        self._directory = directory
        self._memberships = memberships or PrivateMemberships()
        self._per_page = per_page
        self._urls: dict[str, str] = {}

    async def readable(self, client: AsyncWebClient, team_id: str, user_id: str) -> frozenset[str]:
        """The channels `user_id` may read: public ones, and private ones they are a member of."""
        public, private = await self._directory.kinds(client, team_id, timeout=LIST_TIMEOUT_S)
        try:
            theirs = await self._memberships.of(client, team_id, user_id)
        except SlackApiError as exc:
            # Slack would not say (an unknown user, a missing scope): no private channel.
            log.info("private channels of %s unknown (%s)", user_id, exc.response.get("error"))
            theirs = frozenset()
        return public | (private & theirs)

    async def search(
        self,
        client: AsyncWebClient,
        team_id: str,
        user_id: str,
        query: SearchQuery,
        *,
        tz: str | None,
        page: int = 1,
    ) -> SearchPage:
        """Page `page` (from 1) of the best matches of `query` that `user_id` may read."""
        allowed = await self.readable(client, team_id, user_id)
        if query.channel_ids:
            allowed &= frozenset(query.channel_ids)
        if not allowed or page < 1:
            return SearchPage((), False)
        start, end = search_window(query, tz)
        after_ts, before_ts = _bound(start, before=False), _bound(end, before=True)
        authors = frozenset(query.user_ids) or None
        want = DEPTH
        async with reading(self._sessions) as session:
            by_words = await search_words(
                session,
                team_id,
                query.words,
                channel_ids=allowed,
                user_ids=authors,
                after_ts=after_ts,
                before_ts=before_ts,
                limit=want,
            )
        # Chroma's metadata filter costs in proportion to the documents it lets through (a
        # filter on most channels is many times slower than none): the channels go into its
        # query only for an `in:` search; otherwise its answer is narrowed here, before ranking.
        narrow = allowed if query.channel_ids else None
        factor = DAY_FILTER_FACTOR if start or end else 1
        near_limit = min(MAX_NEAR, want * factor * (1 if narrow else UNFILTERED_FACTOR))
        near = await self._vectors.search(
            team_id, query.words, near_limit, channel_ids=narrow, user_ids=authors
        )
        near_keys = [
            (str(m.metadata.get("channel_id")), str(m.metadata.get("ts")))
            for m in near
            if m.distance <= MAX_DISTANCE
            and m.metadata.get("channel_id") in allowed
            and _inside(str(m.metadata.get("ts")), after_ts, before_ts)
        ][:want]
        scores: dict[tuple[str, str], float] = {}
        for ranked in ([(r.channel_id, r.ts) for r in by_words], near_keys):
            for rank, key in enumerate(dict.fromkeys(ranked), start=1):
                scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
        # Best first; equal scores newest first.
        order = sorted(scores, key=lambda k: _ts_key(k[1]), reverse=True)
        order.sort(key=lambda k: -scores[k])
        first = (page - 1) * self._per_page
        rows = await self._found(
            team_id, order, {(r.channel_id, r.ts): r for r in by_words}, first + self._per_page + 1
        )
        found = [
            SearchHit(message=row, score=scores[(row.channel_id, row.ts)])
            for row in rows
            if row.channel_id in allowed  # every key was of an allowed channel: checked again
        ]
        shown = found[first : first + self._per_page]
        base = await self._base_url(client, team_id)
        hits = tuple(
            SearchHit(h.message, h.score, permalink(base, h.message) if base else None)
            for h in shown
        )
        return SearchPage(hits, len(found) > first + self._per_page)

    async def _found(
        self,
        team_id: str,
        order: Sequence[tuple[str, str]],
        known: dict[tuple[str, str], MessageRecord],
        enough: int,
    ) -> list[MessageRecord]:
        """The stored rows of `order`'s keys, in that order, until `enough` are found: those only
        Chroma found are read from SQL, a chunk at a time (a document whose row was deleted
        meanwhile is not shown)."""
        found: list[MessageRecord] = []
        for start in range(0, len(order), ROWS_CHUNK):
            chunk = order[start : start + ROWS_CHUNK]
            rows = {key: known[key] for key in chunk if key in known}
            wanted: dict[str, list[str]] = {}
            for channel_id, ts in chunk:
                if (channel_id, ts) not in rows:
                    wanted.setdefault(channel_id, []).append(ts)
            if wanted:
                async with reading(self._sessions) as session:
                    for channel_id, ts_list in wanted.items():
                        stored = await stored_messages(session, team_id, channel_id, ts_list)
                        rows.update({(channel_id, ts): row for ts, row in stored.items()})
            found += [rows[key] for key in chunk if key in rows]
            if len(found) >= enough:
                break
        return found

    async def _base_url(self, client: AsyncWebClient, team_id: str) -> str | None:
        """The workspace's URL (`auth.test`), once per process; None when Slack does not say."""
        if team_id not in self._urls:
            try:
                url = (await client.auth_test()).get("url")
            except (SlackApiError, SlackClientError, OSError) as exc:
                log.info("no workspace URL for message links (%s)", type(exc).__name__)
                return None
            if not isinstance(url, str) or not url.startswith("https://"):
                return None
            self._urls[team_id] = url
        return self._urls[team_id]


__all__ = ["RRF_K", "PrivateMemberships", "SearchPage", "SearchService", "may_search", "permalink"]
