"""The live mirror: Slack's message and channel events keep the stored copy true between runs.

Two halves. `take_in` runs before an event is acknowledged: one small insert into the durable
inbox (`db.inbox`), committed with the others arriving meanwhile (`scheduler.mirror_intake`),
nothing else, so an acknowledged event survives a crash and a duplicate is
dropped. The drainer (`start`) claims inbox events in batches, oldest first, and applies each
channel's events in order (`scheduler.mirror_rules` says what each one means) through the
engine's filter, its stored form and its batched writer — the one way a message is written —
then deletes them from the inbox and counts them.

Channels in scope: the schedule's chosen channels, else every channel the app can read (the bot
only hears channels it is in). Removals and renames apply everywhere: a deleted message must go
wherever it is stored.

Slack calls (a name the copy does not know yet) go through the workspace's rate-aware gateway
(the engine's: one budget per workspace); when Slack does not answer, the id stands in for the
name and the next run corrects it. Imports `db`, `scheduler.backfill` and `scheduler.mirror_rules`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import inbox
from db.inbox import Arrival, InboxEvent
from db.messages import known_channel_name, stored_messages
from db.records import MessageRecord, MirrorStatus
from db.removals import lock_channels, remove_channel, rename_channel
from db.session import reading, writing
from db.vectors import VectorStore
from scheduler.backfill.engine import ts_micros
from scheduler.backfill.errors import SlackGatewayError
from scheduler.backfill.filter import mentioned_users
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.gateways import Gateways
from scheduler.backfill.stored_form import stored_form
from scheduler.backfill.users import user_display_name
from scheduler.backfill.writer import Removal, write_pruned_batch
from scheduler.mirror_intake import GroupedIntake
from scheduler.mirror_rules import (
    DropChannel,
    Remove,
    Rename,
    Store,
    changes_of,
    channel_of,
    followed,
)
from scheduler.process_identity import LivenessJudge
from scheduler.schedules import ScheduleService

log = logging.getLogger(__name__)

# Events claimed per round; a claim older than the lease is taken again (its drainer died).
BATCH = 500
LEASE_S = 60.0
# With nothing nudging it (events taken in by another process), the drainer looks this often.
POLL_S = 1.0
# Event ids are remembered a day: Slack retries for two hours, Delayed Events for 24.
SEEN_FOR = timedelta(days=1)
FORGET_EVERY_S = 3600.0
# How often the drainer looks for claims of dead drainers on this host (to take them at once).
ORPHANS_EVERY_S = 5.0

Scope = Callable[[str], Awaitable[frozenset[str] | None]]
# Told after each batch: each event's lag (Slack's send to applied, seconds), events still waiting.
BatchObserver = Callable[[list[float], int], None]
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    live: bool = True  # LIVE_SYNC: false acknowledges events and drops them
    include_bots: bool = False
    min_text_chars: int = 3


def _ts_order(ts: str) -> int:
    """Slack's `ts` text in numeric order; an unreadable one sorts first."""
    try:
        return ts_micros(ts)
    except ValueError:
        return 0


def _newest_edit_of_each(records: Sequence[MessageRecord]) -> list[MessageRecord]:
    """One record per message: the newest edit (events come in any order); the later of equals."""
    newest: dict[str, MessageRecord] = {}
    for record in records:
        kept = newest.get(record.ts)
        if kept is None or (record.edited_ts or "") >= (kept.edited_ts or ""):
            newest[record.ts] = record
    return list(newest.values())


def schedule_scope(schedules: ScheduleService) -> Scope:
    """Channels in scope: the schedule's chosen channels, else (no schedule, or every channel)
    all the app hears."""

    async def scope(workspace_id: str) -> frozenset[str] | None:
        schedule = await schedules.get(workspace_id)
        if schedule is None or schedule.include_all_channels or not schedule.channel_ids:
            return None
        return frozenset(schedule.channel_ids)

    return scope


@dataclass(slots=True)
class _ChannelChanges:
    """One channel's share of a batch: messages to store (in their stored form), removals,
    renames, and whether the channel was deleted."""

    workspace_id: str
    channel_id: str
    records: list[MessageRecord] = dataclasses.field(default_factory=list)
    removes: list[Remove] = dataclasses.field(default_factory=list)
    renames: list[Rename] = dataclasses.field(default_factory=list)
    dropped: bool = False


class MirrorService:
    """The inbox's two halves for one process (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorStore,
        gateways: Gateways | SlackGateway,
        config: MirrorConfig,
        *,
        scope: Scope,
        owner: str,
        clock: Clock = _utcnow,
        observer: BatchObserver | None = None,
        judge: LivenessJudge | None = None,
        inbox_sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = sessions
        # The inbox's database (`db.inbox`: a SQLite store's inbox is a file of its own).
        self._inbox = inbox_sessions or sessions
        # The inbox's writers in this process take turns, first come first served; events are
        # taken in by group commits (`scheduler.mirror_intake`).
        self._inbox_writes = asyncio.Lock()
        self._intake = GroupedIntake(self._inbox, self._inbox_writes)
        self._vectors = vectors
        self._gateways = gateways if isinstance(gateways, Gateways) else Gateways.of(gateways)
        self.config = config
        self._scope = scope
        self._owner = owner
        self._clock = clock
        self._observer = observer
        self._judge = judge or LivenessJudge.of_this_process()
        self._next_orphans = 0.0
        self._swept = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._names: dict[str, dict[str, str]] = {}  # workspace -> user id -> display name
        self._channel_names: dict[tuple[str, str], str] = {}
        self._renamed_at: dict[tuple[str, str], str] = {}  # event_ts of the newest rename applied
        self._said_off = False
        self._next_forget = 0.0
        self.applied = 0  # events applied by this process (tests, metrics)

    # -- the acknowledgement's half ----------------------------------------------------------------
    async def take_in(self, body: Mapping[str, Any]) -> bool:
        """Write an `event_callback` body to the inbox before it is acknowledged. False: nothing
        to keep (the mirror is off, a duplicate, or not an event). Raises when the database does
        not answer, so Slack is told to retry."""
        event = body.get("event")
        event_id, team_id = body.get("event_id"), body.get("team_id")
        if not isinstance(event, Mapping) or not isinstance(event_id, str):
            return False
        if not isinstance(team_id, str) or not team_id or not followed(event):
            return False
        if not self.config.live:
            if not self._said_off:
                self._said_off = True
                log.info("LIVE_SYNC=false: Slack's message events are acknowledged and dropped")
            return False
        sent = body.get("event_time")
        event_time = datetime.fromtimestamp(sent, UTC) if isinstance(sent, int | float) else None
        fresh = await self._intake.take_in(
            Arrival(
                workspace_id=team_id,
                event_id=event_id,
                channel_id=channel_of(event),
                event_type=str(event.get("type") or ""),
                payload=dict(event),
                event_time=event_time,
                now=self._clock(),
            )
        )
        if fresh:
            self._wake.set()
        return fresh

    # -- the drainer ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._inbox is not self._sessions:
            await self._move_inbox_here()
        if self._task is None:
            self._task = asyncio.create_task(self._drain_forever(), name="mirror-drainer")

    async def _move_inbox_here(self) -> None:
        """Events a SQLite store took in before its inbox had a file of its own are moved there
        (once: the store's copies are deleted after the inbox's commit)."""
        async with reading(self._sessions) as session, reading(self._inbox) as target:
            here, there = await session.connection(), await target.connection()
            if here.engine.url == there.engine.url:
                return  # one database under two session factories: nothing to move
            if not await inbox.waiting(session) and not await inbox.any_seen(session):
                return
        async with (
            reading(self._sessions) as source,
            self._inbox_writes,
            self._inbox.begin() as target,
        ):
            moved = await inbox.move_waiting(source, target)
        async with self._sessions.begin() as source:
            await inbox.forget_moved(source)
        log.info("moved %s waiting events to the inbox's own database file", moved)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch in hand (an unfinished one is claimed again after the lease)."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain_forever(self) -> None:
        while not self._stopping:
            try:
                applied = await self.drain_once()
            except Exception as exc:  # noqa: BLE001 - the drainer outlives any one failure
                log.warning("the mirror could not apply events (%s); retrying", type(exc).__name__)
                applied = 0
                await asyncio.sleep(POLL_S)
            if applied == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                self._wake.clear()

    async def drain_once(self) -> int:
        """Claim one batch, apply it, delete it from the inbox; returns the events applied."""
        now = self._clock()
        await self._forget_old_ids(now)
        await self._release_dead_drainers()
        async with self._inbox_writes, self._inbox.begin() as session:
            events = await inbox.claim(session, self._owner, now=now, lease_s=LEASE_S, limit=BATCH)
        if not events:
            return 0
        by_channel: dict[tuple[str, str | None], list[InboxEvent]] = {}
        for event in events:
            by_channel.setdefault((event.workspace_id, event.channel_id), []).append(event)
        plans = [
            await self._plan_channel(workspace_id, channel_id, channel_events)
            for (workspace_id, channel_id), channel_events in by_channel.items()
            if channel_id is not None
        ]
        await self._apply(plans)
        async with self._inbox_writes, self._inbox.begin() as session:
            await inbox.done(session, self._owner, [e.inbox_id for e in events])
            for workspace_id in {e.workspace_id for e in events}:
                mine = [e for e in events if e.workspace_id == workspace_id]
                sent = [e.event_time for e in mine if e.event_time is not None]
                await inbox.record_applied(
                    session,
                    workspace_id,
                    len(mine),
                    now=self._clock(),
                    last_event_at=max(sent) if sent else None,
                )
        self.applied += len(events)
        if self._observer is not None:
            applied_at = self._clock()
            lags = [(applied_at - (e.event_time or e.received_at)).total_seconds() for e in events]
            async with reading(self._inbox) as session:
                self._observer(lags, await inbox.waiting(session))
        return len(events)

    async def _forget_old_ids(self, now: datetime) -> None:
        if time.monotonic() < self._next_forget:
            return
        self._next_forget = time.monotonic() + FORGET_EVERY_S
        async with self._inbox_writes, self._inbox.begin() as session:
            await inbox.forget_seen(session, now - SEEN_FOR)

    async def _release_dead_drainers(self) -> None:
        """Events a dead drainer of this host held are taken at once, not after the lease (a
        process killed right after acknowledging a burst, restarted in place): judged as the run
        service judges a dead run owner (`scheduler.process_identity`)."""
        if time.monotonic() < self._next_orphans:
            return
        self._next_orphans = time.monotonic() + ORPHANS_EVERY_S
        at_start, self._swept = not self._swept, True
        async with reading(self._inbox) as session:
            holders = await inbox.holders(session)
        for holder in holders - {self._owner}:
            if self._judge.gone(holder, first_look=at_start):
                async with self._inbox_writes, self._inbox.begin() as session:
                    taken = await inbox.release_claims(session, holder)
                log.info("took back %s events a dead drainer (%s) held", taken, holder)

    async def status(self, workspace_id: str) -> MirrorStatus:
        async with reading(self._inbox) as session:
            found = await inbox.status(session, workspace_id, now=self._clock())
        return dataclasses.replace(found, live=self.config.live)

    # -- applying one channel's events, in order ---------------------------------------------------
    async def _plan_channel(
        self, workspace_id: str, channel_id: str, events: Sequence[InboxEvent]
    ) -> _ChannelChanges:
        """What one channel's events, in order, ask of the store (reads only)."""
        scope = await self._scope(workspace_id)
        in_scope = scope is None or channel_id in scope
        plan = _ChannelChanges(workspace_id, channel_id)
        stores: list[Store] = []
        for event in events:
            for change in changes_of(
                event.payload,
                include_bots=self.config.include_bots,
                min_text_chars=self.config.min_text_chars,
            ):
                if isinstance(change, Store):
                    if in_scope:
                        stores.append(change)
                elif isinstance(change, Remove):
                    plan.removes.append(change)
                elif isinstance(change, Rename):
                    plan.renames.append(change)
                elif isinstance(change, DropChannel):
                    plan.dropped = True
        plan.records = await self._records(workspace_id, channel_id, stores)
        return plan

    async def _apply(self, plans: Sequence[_ChannelChanges]) -> None:
        """One write per kind for the whole batch, in an order that gives each channel the same
        store as applying its events one by one: the outcome does not depend on order (the
        newest edit wins, a tombstone keeps a removed message out, a rename renames every row, a
        deleted channel loses them all), so stores go first, then removals (in one transaction,
        disqualifying edits grouped by the edit they are of), renames, and the channels'
        deletions. Few transactions, each waiting its turn behind a run's batch at most once
        (`db.session.writing`), keep the mirror close behind Slack during a large run."""
        records = [record for plan in plans for record in plan.records]
        removals = []
        for plan in plans:
            groups: dict[tuple[str, str | None], list[str]] = {}
            for change in plan.removes:
                groups.setdefault((change.reason, change.edited_ts), []).append(change.ts)
            removals += [
                Removal(plan.workspace_id, plan.channel_id, tuple(ts), reason, edited_ts)
                for (reason, edited_ts), ts in groups.items()
            ]
        if records or removals:
            await write_pruned_batch(
                self._sessions, self._vectors, records, [], (), removals=removals
            )
        for plan in plans:
            for rename in plan.renames:
                await self._rename(plan.workspace_id, plan.channel_id, rename)
        for plan in plans:
            if plan.dropped:
                await self._drop_channel(plan.workspace_id, plan.channel_id)

    async def _records(
        self, workspace_id: str, channel_id: str, stores: Sequence[Store]
    ) -> list[MessageRecord]:
        """The stored form of one channel's new and edited messages (reads and names only)."""
        if not stores:
            return []
        texts = [str(s.message.get("text") or "") for s in stores]
        authors = {str(s.message.get("user") or "") for s in stores}
        names = await self._user_names(
            workspace_id, authors.union(*(mentioned_users(t) for t in texts))
        )
        channel_name = await self._channel_name(workspace_id, channel_id)
        stored = await self._stored_threads(workspace_id, channel_id, stores)
        parents = {s.thread_ts for s in stores if s.is_reply}
        records = []
        for s in stores:
            # A parent stays one when an edit event leaves its thread out, and becomes one when
            # a reply comes in the same batch.
            ts = str(s.message.get("ts"))
            was_parent = ts in stored and stored[ts].thread_ts == ts
            thread_ts = s.thread_ts or (ts if was_parent or ts in parents else None)
            records.append(
                stored_form(workspace_id, channel_id, channel_name, s.message, thread_ts, names)
            )
        # A stored parent whose first reply arrives becomes a thread parent (`thread_ts` = its
        # own ts), in SQL and in Chroma's metadata. Its stored copy goes first: when this batch
        # also edits the parent, the newer edit (the batch's, unless it came late) is written.
        promoted = [
            dataclasses.replace(row, thread_ts=row.ts)
            for ts, row in stored.items()
            if ts in parents and row.thread_ts is None
        ]
        return _newest_edit_of_each([*promoted, *records])

    async def _stored_threads(
        self, workspace_id: str, channel_id: str, stores: Sequence[Store]
    ) -> dict[str, MessageRecord]:
        """The stored rows the thread links depend on: the parents of these replies, and the
        top-level messages stored here before."""
        wanted = {s.thread_ts for s in stores if s.is_reply and s.thread_ts is not None}
        wanted |= {str(s.message.get("ts")) for s in stores if s.thread_ts is None}
        async with reading(self._sessions) as session:
            return await stored_messages(session, workspace_id, channel_id, sorted(wanted))

    async def _rename(self, workspace_id: str, channel_id: str, change: Rename) -> None:
        # Two renames of a channel can arrive in either order (a retry, Slack's own delivery):
        # one older than a rename already applied here changes nothing.
        key, name, stamp = (workspace_id, channel_id), change.name, change.event_ts
        newest = self._renamed_at.get(key)
        if stamp is not None and newest is not None and _ts_order(stamp) < _ts_order(newest):
            log.info("a rename of %s older than the one applied came late; ignored", channel_id)
            return
        if stamp is not None:
            self._renamed_at[key] = stamp
        self._channel_names[key] = name
        async with writing(self._sessions) as session:
            await lock_channels(session, workspace_id, [channel_id])
            await rename_channel(session, workspace_id, channel_id, name)
            await self._vectors.rename_channel(workspace_id, channel_id, name)

    async def _drop_channel(self, workspace_id: str, channel_id: str) -> None:
        async with writing(self._sessions) as session:
            await lock_channels(session, workspace_id, [channel_id])
            removed = await remove_channel(session, workspace_id, channel_id)
            await self._vectors.delete_channel(workspace_id, channel_id)
        log.info("channel %s was deleted in Slack: %s stored messages removed", channel_id, removed)

    # -- names ---------------------------------------------------------------------------------
    async def _user_names(self, workspace_id: str, user_ids: set[str]) -> dict[str, str]:
        known = self._names.setdefault(workspace_id, {})
        for user_id in sorted(u for u in user_ids if u and u not in known):
            try:
                user = await self._gateways.for_workspace(workspace_id).user_info(user_id)
            except SlackGatewayError as exc:
                log.info("name of %s unknown for now (%s); the id stands in", user_id, exc)
                continue
            known[user_id] = user_display_name(user) or user_id
        return known

    async def _channel_name(self, workspace_id: str, channel_id: str) -> str:
        key = (workspace_id, channel_id)
        name = self._channel_names.get(key)
        if name is None:
            async with reading(self._sessions) as session:
                name = await known_channel_name(session, workspace_id, channel_id)
        if name is None:
            try:
                info = await self._gateways.for_workspace(workspace_id).channel_info(channel_id)
                found = info.get("name")
                name = found if isinstance(found, str) and found else None
            except SlackGatewayError as exc:
                log.info("name of channel %s unknown for now (%s)", channel_id, exc)
        name = name or channel_id
        self._channel_names[key] = name
        return name


__all__ = ["MirrorConfig", "MirrorService", "MirrorStatus"]
