"""`BackfillEngine`: walks every channel's history newest-first, fetches thread replies while the
next pages are being read, filters, renders mentions, and hands each page unit to the
checkpointed writer so an interrupted run resumes exactly where its last commit stopped.

Slack access goes through `SlackGateway` only; storage through `db` only.

Pipeline: one producer task reads pages (history, then the thread-lookback scan, channel after
channel) and starts each page's `conversations.replies` walks as tasks; a bounded queue of a few
page units feeds one writer task. The writer takes every unit already waiting, awaits their
replies in queue order and commits them as one batch (one SQL transaction, each channel's
checkpoint moved to its last unit of the batch), so the cost of a commit is shared by as many units
as fetching produced meanwhile. History and replies have separate pacer buckets, so both
tiers' budgets are spent at the same time, and memory stays bounded by the queue.

Pagination is by `latest`, not by cursor: every history call asks `latest = oldest ts of the page
before` (Slack's `latest` is exclusive), so a page is addressed by `(channel, latest)` alone, which
is exactly what the checkpoint stores (`resume_latest_ts`). A resumed run therefore continues at the
first uncommitted page and never asks for a committed one again.

Pruning (`EngineConfig.prune_deleted`): what a run re-read completely is what it may prune, and
each unit says what that was. A history page of the window covers a contiguous ts range (from the
`latest` it was asked for, exclusive, down to its oldest message, or to the window's start for
the last page), so the stored top-level messages of that range it did not return went in Slack;
a thread walked with `conversations.replies` covers its replies above the `oldest` it was asked
for, up to the window's end. The lookback scan re-reads no top-level message (it only looks for
parents), and a thread skipped because its newest reply is already stored is not re-read, so
neither prunes anything. The removals go in the unit's own batch transaction (`write_pruned_batch`),
so they are committed with the unit's rows and checkpoint or not at all: a channel that dies, a
run cancelled or failed mid-way, keeps the removals of the units already written (each of them
read completely) and makes none for the rest; a resumed run redoes exactly the uncommitted ones.
Nothing younger than `PRUNE_SETTLE_S` at the window's end is pruned: Slack's clock and ours differ
a little, and history may not show a message posted a moment before the run started (which the
live mirror may store meanwhile); a removal writes a tombstone, so a wrong one would be for good.

One module (~750 lines): the producer, the replies tasks and the writer share the run's queue,
its cancel and its checkpoints; the pieces that stand alone (gateway, filter, users, writer,
channels, progress) are already modules of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.messages import Checkpoint, get_checkpoint, stored_thread_latest_reply
from db.records import MessageRecord, Progress, SkippedChannel, SlackCalls
from db.vectors import VectorStore
from scheduler.backfill.channels import ChannelTarget, resolve_channels
from scheduler.backfill.errors import (
    MALFORMED,
    ChannelUnavailable,
    MalformedSlackAnswer,
    PermanentSlackError,
    RunCancelled,
    SlackRequestError,
    SlackUnavailable,
)
from scheduler.backfill.filter import keep_message
from scheduler.backfill.gateway import HistoryPage, SlackGateway, YieldTo, never_wait
from scheduler.backfill.gateways import Gateways
from scheduler.backfill.pacing import MethodStats
from scheduler.backfill.progress import ProgressCallback, ProgressTracker, RunResult
from scheduler.backfill.stored_form import stored_form
from scheduler.backfill.users import load_user_names
from scheduler.backfill.writer import PageRead, ThreadRead, write_pruned_batch

DAY = 86400
_MICROS = 1_000_000
# Messages this much younger than a window's end are left to a later run's pruning (module doc).
PRUNE_SETTLE_S = 60.0

__all__ = [
    "BackfillEngine",
    "EngineConfig",
    "Progress",
    "RunRequest",
    "RunResult",
    "format_ts",
    "ts_micros",
]


# -- ts arithmetic: Slack ts text <-> integer microseconds (never floats in comparisons) ---------
def ts_micros(ts: str) -> int:
    """`"1700000000.000100"` → 1700000000000100."""
    whole, _, frac = ts.partition(".")
    return int(whole) * _MICROS + int((frac + "000000")[:6])


def format_ts(micros: int) -> str:
    """1700000000000100 → `"1700000000.000100"`."""
    return f"{micros // _MICROS}.{micros % _MICROS:06d}"


def epoch_micros(seconds: float) -> int:
    return round(seconds * _MICROS)


@dataclass(frozen=True)
class EngineConfig:
    """The engine's knobs (from settings: INCLUDE_BOTS, MIN_TEXT_CHARS, THREAD_LOOKBACK_DAYS,
    AUTO_JOIN, PRUNE_DELETED). `queue_pages` is how many fetched page units may wait for the
    writer; the writer takes every unit already waiting (up to `coalesce_rows` rows and threads)
    into one transaction and moves each channel's checkpoint once; `write_batch` caps the rows of
    one SQL statement (short steps keep the event loop, and with it the pacing of Slack calls and
    the acknowledgement of Slack's requests, responsive); a Chroma call carries at most the
    writer's `VECTOR_CHUNK` documents (a search waits behind one of them at most)."""

    include_bots: bool = False
    min_text_chars: int = 8
    thread_lookback_days: float = 14
    auto_join: bool = True
    # Remove the stored messages a complete re-read no longer finds (see the module doc).
    prune_deleted: bool = True
    write_batch: int = 200
    queue_pages: int = 4
    coalesce_rows: int = 2000


@dataclass(frozen=True)
class RunRequest:
    """One run. `days` sets the manual window (oldest = now − days × 86400); with `incremental`
    each channel starts at its `high_water_ts` (falling back to `days`). Checkpoints are keyed to
    `job_run_id`: running the same id again resumes. `now` is injectable (epoch seconds)."""

    workspace_id: str
    job_run_id: int
    days: float = 7
    incremental: bool = False
    channel_ids: Sequence[str] | None = None
    now: float | None = None


@dataclass
class _ChannelRun:
    target: ChannelTarget
    oldest: int  # window start, exclusive (µs)
    latest: int  # window end, inclusive (µs)
    high_water: str | None  # kept from earlier runs until this one completes
    # Whether stored replies may shorten thread walks: only when an earlier finished walk of this
    # channel covered at least this window's start (a wider window must re-read old replies).
    trust_stored: bool = False
    dead: str | None = None  # why the channel stopped mid-run

    @property
    def oldest_ts(self) -> str:
        return format_ts(self.oldest)

    @property
    def latest_ts(self) -> str:
        return format_ts(self.latest)

    @property
    def prune_before_ts(self) -> str:
        """Pruning's upper bound (exclusive): the window's end less `PRUNE_SETTLE_S`."""
        return format_ts(self.latest - epoch_micros(PRUNE_SETTLE_S) + 1)


@dataclass
class _Unit:
    """One page and what hangs off it, on its way to the writer."""

    channel: _ChannelRun
    phase: str  # 'history' (window walk) | 'threads' (lookback scan)
    records: list[MessageRecord]
    threads: list[tuple[str, asyncio.Task[list[dict[str, Any]]]]]
    next_phase: str
    resume_latest_ts: str | None
    last_of_channel: bool = False
    kept: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # What this unit re-read completely (its history page; each thread walked, added once its
    # replies are in): the writer removes what Slack no longer returned there.
    prunes: list[PageRead | ThreadRead] = field(default_factory=list)
    # The `oldest` each thread's replies were asked from (exclusive), per parent ts.
    replies_after: dict[str, str] = field(default_factory=dict)


class _Stop(Exception):
    """Internal: the producer saw the writer fail."""


class BackfillEngine:
    """Reads workspaces into SQL and the vector store, each through its own `SlackGateway`
    (`gateways.Gateways`; a single gateway given here reads every workspace asked for)."""

    def __init__(
        self,
        gateways: Gateways | SlackGateway,
        sessions: async_sessionmaker[AsyncSession],
        vectors: VectorStore,
        config: EngineConfig | None = None,
        *,
        yield_to: YieldTo = never_wait,
    ) -> None:
        self.gateways = gateways if isinstance(gateways, Gateways) else Gateways.of(gateways)
        self.sessions = sessions
        self.vectors = vectors
        self.config = config or EngineConfig()
        # Awaited before each batch is written (the writer's CPU: SQL statements, Chroma's
        # payload), so a burst of the process's own Slack requests is answered first.
        self.yield_to = yield_to

    # -- public ----------------------------------------------------------------------------------
    async def run(
        self,
        request: RunRequest,
        *,
        progress: ProgressCallback | None = None,
        cancel: asyncio.Event | None = None,
    ) -> RunResult:
        """Run (or resume) `request`. Never raises for Slack failures: a `PermanentSlackError`
        (invalid_auth, token_revoked, missing_scope, …) ends the run at once, without retries,
        with `result.error` = Slack's code and `error_kind='permanent'`, and so does any other
        refusal of the run's setup calls (`users.list`, `conversations.list`: a request error that
        retrying would not fix); retries exhausted on
        5xx/timeouts/429s end it with `error_kind='transient'`. Database and vector-store errors
        propagate. A set `cancel` stops the run within the gateway's short `cancel_grace`,
        whatever it is waiting for (the pacer, a Retry-After, a backoff, Slack's answer: the
        gateway raises `RunCancelled`); pages whose replies were all fetched are still committed,
        so checkpoints stay consistent and `result.cancelled` is True. A channel whose answers
        stayed malformed through every retry is reported in `channels_skipped` as failed, the
        other channels go on, and the run ends with `error='malformed_response'`,
        `error_kind='transient'`: never a plain success."""
        cancel = cancel or asyncio.Event()
        gateway = self.gateways.for_workspace(request.workspace_id)
        with gateway.cancelled_by(cancel):
            return await _Run(self, gateway, request, progress, cancel).execute()


class _Run:
    """The state of one `BackfillEngine.run` call."""

    def __init__(
        self,
        engine: BackfillEngine,
        gateway: SlackGateway,
        request: RunRequest,
        progress: ProgressCallback | None,
        cancel: asyncio.Event,
    ) -> None:
        self.engine = engine
        self.gateway = gateway  # the run's workspace's
        self.config = engine.config
        self.request = request
        self.cancel = cancel
        self.now = time.time() if request.now is None else float(request.now)
        self.result = RunResult()
        self.names: dict[str, str] = {}
        self.queue: asyncio.Queue[_Unit | None] = asyncio.Queue(
            maxsize=max(1, self.config.queue_pages)
        )
        self.tracker = ProgressTracker(progress, self._gateway_stats)
        self.skipped: dict[str, SkippedChannel] = {}
        # Channels that could not be read to the end for a reason a later run may not meet.
        self.channel_failures: list[str] = []
        self.failed = False
        self.removed = 0  # stored messages removed because Slack no longer returned them
        # Set by any replies task that hits a run-ending error, so the run stops at once
        # instead of when the writer reaches that unit.
        self.fatal: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _gateway_stats(self) -> tuple[int, int, float]:
        stats = self.gateway.stats()
        return sum(stats.calls.values()), stats.rate_limited, stats.wait_seconds

    # -- orchestration ---------------------------------------------------------------------------
    async def execute(self) -> RunResult:
        started = time.monotonic()
        calls_before = dict(self.gateway.stats().calls)
        pacing_before = self.gateway.pacer.stats()
        try:
            # One conversations.list walk for every channel id asked for, checking `cancel`
            # between channels: the setup stays bounded however many ids a run carries.
            targets, skipped = await resolve_channels(
                self.gateway,
                channel_ids=self.request.channel_ids,
                auto_join=self.config.auto_join,
                cancel=self.cancel,
            )
            for skip in skipped:
                self._skip(skip)
            self.tracker.channels_total = len(targets)
            if self.cancel.is_set():
                raise RunCancelled()  # between list pages: nothing else to set up
            self.names = await load_user_names(self.gateway)
            await self.tracker.report()
            await self._pipeline(targets)
        except RunCancelled:
            pass  # the gateway stopped waiting: `result.cancelled` below says so
        except PermanentSlackError as exc:
            self.result.error, self.result.error_kind = exc.error, "permanent"
        except SlackUnavailable as exc:
            self.result.error, self.result.error_kind = exc.error, "transient"
        except (SlackRequestError, ChannelUnavailable) as exc:
            # Only the run's setup (conversations.list / .info / .join, users.list) lets these
            # through; per-channel failures are skipped where they happen. Slack refused the
            # request itself (e.g. invalid_cursor): sending it again would be refused again.
            self.result.error, self.result.error_kind = exc.error, "permanent"
        if self.channel_failures and self.result.error is None and not self.cancel.is_set():
            # The other channels are stored; this run still did not store everything it should.
            self.result.error, self.result.error_kind = MALFORMED, "transient"
        self.result.cancelled = self.cancel.is_set() and self.result.error is None
        self.result.channels_skipped = list(self.skipped.values())
        self.result.channels_processed = self.tracker.channels_done
        self.result.messages_collected = self.tracker.messages_stored
        self.result.messages_written = self.tracker.messages_written
        self.result.messages_removed = self.removed if self.config.prune_deleted else None
        self.result.duration_s = time.monotonic() - started
        self.result.slack_calls = self._slack_calls(calls_before, pacing_before)
        return self.result

    def _slack_calls(
        self, calls_before: dict[str, int], pacing_before: dict[str, MethodStats]
    ) -> tuple[SlackCalls, ...]:
        """This run's share of the gateway's counters (a gateway outlives one run), per method,
        busiest first: HTTP attempts, and from the pacer the time waited for Slack's limits, the
        429s and whether the method ended evenly spaced."""
        calls_after = self.gateway.stats().calls
        pacing_after = self.gateway.pacer.stats()
        figures = []
        for method, n in calls_after.items():
            made = n - calls_before.get(method, 0)
            if made <= 0:
                continue
            before, after = pacing_before.get(method, MethodStats()), pacing_after.get(method)
            if after is None:
                figures.append(SlackCalls(method, made))
                continue
            figures.append(
                SlackCalls(
                    method,
                    made,
                    waited_s=max(0.0, after.wait_seconds - before.wait_seconds),
                    rate_limited=max(0, after.rate_limited - before.rate_limited),
                    spaced=after.spaced,
                )
            )
        return tuple(sorted(figures, key=lambda c: (-c.calls, c.method)))

    def _skip(self, skip: SkippedChannel) -> None:
        self.skipped.setdefault(skip.id, skip)

    def _fail_channel(self, channel: _ChannelRun, exc: MalformedSlackAnswer) -> None:
        """Slack's answers for this channel stayed malformed: stop it, keep what is committed
        (its checkpoint resumes a retry there), report it, and fail the run at its end."""
        channel.dead = f"failed: {exc.describe()}; what was stored before is kept"
        self.channel_failures.append(channel.target.id)
        self._skip(SkippedChannel(channel.target.id, channel.target.name, channel.dead))

    async def _pipeline(self, targets: list[ChannelTarget]) -> None:
        producer = asyncio.create_task(self._produce(targets), name="backfill-producer")
        writer = asyncio.create_task(self._write(), name="backfill-writer")
        tasks = {producer, writer}
        try:
            pending: set[asyncio.Future[None]] = {*tasks, self.fatal}
            while any(not t.done() for t in tasks):
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            # Replies still in flight belong to units nobody will write.
            while not self.queue.empty():
                unit = self.queue.get_nowait()
                if unit is not None:
                    _cancel_threads(unit)
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            if not self.fatal.done():
                self.fatal.cancel()

    # -- producer --------------------------------------------------------------------------------
    async def _produce(self, targets: list[ChannelTarget]) -> None:
        try:
            for target in targets:
                if self.cancel.is_set():
                    break
                await self._produce_channel(target)
        except RunCancelled:
            pass  # cancelled mid-call: what is queued is still written
        finally:
            await self.queue.put(None)

    async def _window_for(self, target: ChannelTarget) -> tuple[_ChannelRun, Checkpoint | None]:
        async with self.engine.sessions() as session:
            checkpoint = await get_checkpoint(session, self.request.workspace_id, target.id)
        if (
            checkpoint is not None
            and checkpoint.job_run_id == self.request.job_run_id
            and checkpoint.window_oldest_ts
            and checkpoint.window_latest_ts
        ):
            # Same run again: keep the window it started with, whatever `now` is today. Pages
            # this job committed are never read again, so no thread met from here on was walked
            # by this job; what earlier jobs stored is not trusted (their coverage is unknown).
            run = _ChannelRun(
                target,
                ts_micros(checkpoint.window_oldest_ts),
                ts_micros(checkpoint.window_latest_ts),
                checkpoint.high_water_ts,
                trust_stored=False,
            )
            return run, checkpoint
        latest = epoch_micros(self.now)
        oldest = epoch_micros(self.now - self.request.days * DAY)
        high_water = checkpoint.high_water_ts if checkpoint is not None else None
        if self.request.incremental and high_water:
            oldest = min(ts_micros(high_water), latest)
        # A finished walk that began at or before this window's start stored every reply of
        # every thread it walked from there on, so "newest stored reply" bounds what is left.
        trust = (
            checkpoint is not None
            and checkpoint.phase == "done"
            and checkpoint.window_oldest_ts is not None
            and ts_micros(checkpoint.window_oldest_ts) <= oldest
        )
        return _ChannelRun(target, oldest, latest, high_water, trust_stored=trust), None

    async def _produce_channel(self, target: ChannelTarget) -> None:
        channel, resume = await self._window_for(target)
        phase, resume_latest = "history", None
        if resume is not None:
            if resume.phase == "done":
                self.tracker.channels_done += 1
                await self.tracker.report()
                return
            phase = resume.phase or "history"
            resume_latest = resume.resume_latest_ts
        self.tracker.current_channel = target.name
        lookback = self.config.thread_lookback_days > 0
        try:
            if phase == "history":
                # `latest` is exclusive: one microsecond past the window end includes ts == now.
                start = resume_latest or format_ts(channel.latest + 1)
                finished = await self._walk(channel, "history", start)
                if not finished:
                    return
                resume_latest = None
            if lookback:
                start = resume_latest or format_ts(channel.oldest + 1)
                await self._walk(channel, "threads", start)
            elif phase == "threads":
                # Resumed with the lookback switched off meanwhile: nothing left but to finish.
                await self.queue.put(
                    _Unit(channel, phase, [], [], "done", None, last_of_channel=True)
                )
        except MalformedSlackAnswer as exc:
            self._fail_channel(channel, exc)
        except (ChannelUnavailable, SlackRequestError) as exc:
            # Deleted mid-run, archived meanwhile, or some per-channel refusal: skip, carry on.
            channel.dead = f"became unreadable during the run ({exc.error})"
            self._skip(SkippedChannel(target.id, target.name, channel.dead))

    async def _page(self, channel: _ChannelRun, oldest: str, latest: str) -> HistoryPage:
        """The one page of history just below `latest` (the walk is by `latest`, see module doc)."""
        pages = self.gateway.history_pages(channel.target.id, oldest=oldest, latest=latest)
        try:
            return await anext(pages)
        finally:
            await pages.aclose()  # type: ignore[attr-defined]

    async def _walk(self, channel: _ChannelRun, phase: str, latest: str) -> bool:
        """Walk one phase from `latest` down; True when it reached the bottom."""
        lookback_oldest = channel.oldest - epoch_micros(self.config.thread_lookback_days * DAY)
        oldest = channel.oldest_ts if phase == "history" else format_ts(lookback_oldest)
        lookback = self.config.thread_lookback_days > 0
        while True:
            if self.cancel.is_set() or channel.dead is not None:
                return False
            if self.failed:
                raise _Stop()
            page = await self._page(channel, oldest, latest)
            messages = page.messages
            last = not page.has_more or not messages
            unit = await self._build_unit(channel, phase, messages)
            if phase == "history" and self.config.prune_deleted:
                unit.prunes.append(self._page_read(channel, messages, latest, last))
            if last:
                if phase == "history" and lookback:
                    unit.next_phase, unit.resume_latest_ts = "threads", None
                else:
                    unit.next_phase, unit.resume_latest_ts = "done", None
                    unit.last_of_channel = True
            else:
                unit.next_phase = phase
                unit.resume_latest_ts = messages[-1]["ts"]
            await self.queue.put(unit)
            if last:
                return True
            latest = messages[-1]["ts"]

    def _page_read(
        self, channel: _ChannelRun, messages: list[dict[str, Any]], latest: str, last: bool
    ) -> PageRead:
        """What one history page of the window says: every ts below `latest` (exclusive) down to
        its oldest message (inclusive: one microsecond below is the exclusive bound), or down to
        the window's start for the last page, is in `messages` or gone from Slack (pruned up to
        the channel's settled bound only)."""
        returned = {m["ts"] for m in messages if isinstance(m.get("ts"), str)}
        placeholders = {
            m["ts"] for m in messages if m.get("subtype") == "tombstone" and m["ts"] in returned
        }
        after = channel.oldest_ts if last else format_ts(ts_micros(messages[-1]["ts"]) - 1)
        return PageRead(
            workspace_id=self.request.workspace_id,
            channel_id=channel.target.id,
            after=after,
            before=min(latest, channel.prune_before_ts, key=ts_micros),
            returned=frozenset(returned),
            placeholders=frozenset(placeholders),
            replies_before=channel.prune_before_ts,
        )

    async def _build_unit(
        self, channel: _ChannelRun, phase: str, messages: list[dict[str, Any]]
    ) -> _Unit:
        cfg = self.config
        records: list[MessageRecord] = []
        parents: dict[str, dict[str, Any]] = {}
        lookback_oldest = channel.oldest - epoch_micros(cfg.thread_lookback_days * DAY)
        for message in messages:
            ts = message.get("ts")
            if not isinstance(ts, str):
                continue
            thread_ts = message.get("thread_ts")
            is_reply = isinstance(thread_ts, str) and thread_ts != ts
            if is_reply and message.get("subtype") != "thread_broadcast":
                continue  # plain replies are read from conversations.replies, never from history
            if is_reply and ts_micros(str(thread_ts)) > lookback_oldest:
                # A broadcast of a thread this run walks is stored by that walk, never from
                # history: so a stored reply always means "its walk stored everything before it",
                # which is what the stored-latest shortcut below relies on.
                continue
            latest_reply = message.get("latest_reply")
            if (
                (message.get("reply_count") or 0) > 0
                and isinstance(latest_reply, str)
                and ts_micros(latest_reply) > channel.oldest
            ):
                parents[ts] = message
            if phase != "history":
                continue  # the lookback scan keeps no top-level message
            if not keep_message(
                message, include_bots=cfg.include_bots, min_text_chars=cfg.min_text_chars
            ):
                continue
            has_thread = is_reply or (message.get("reply_count") or 0) > 0
            records.append(self._record(channel, message, thread_ts if has_thread else None))
        threads: list[tuple[str, asyncio.Task[list[dict[str, Any]]]]] = []
        replies_after: dict[str, str] = {}
        if parents:
            stored: dict[str, str] = {}
            if channel.trust_stored:
                async with self.engine.sessions() as session:
                    stored = await stored_thread_latest_reply(
                        session, self.request.workspace_id, channel.target.id, list(parents)
                    )
            for parent_ts, parent in parents.items():
                already = stored.get(parent_ts)
                if already is not None and ts_micros(parent["latest_reply"]) <= ts_micros(already):
                    continue  # every reply up to the thread's newest is already stored
                oldest = channel.oldest
                if already is not None:
                    oldest = max(oldest, ts_micros(already))
                replies_after[parent_ts] = format_ts(oldest)
                task = asyncio.create_task(
                    self.gateway.replies(channel.target.id, parent_ts, oldest=format_ts(oldest))
                )
                task.add_done_callback(self._replies_done)
                threads.append((parent_ts, task))
        return _Unit(
            channel=channel,
            phase=phase,
            records=records,
            threads=threads,
            next_phase=phase,
            resume_latest_ts=None,
            replies_after=replies_after,
        )

    def _replies_done(self, task: asyncio.Task[list[dict[str, Any]]]) -> None:
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so a dropped unit never logs "never retrieved"
        if isinstance(exc, MalformedSlackAnswer):
            return  # fails its channel only, when the writer reaches it
        if isinstance(exc, (PermanentSlackError, SlackUnavailable)) and not self.fatal.done():
            self.fatal.set_exception(exc)

    def _record(
        self, channel: _ChannelRun, message: Mapping[str, Any], thread_ts: str | None
    ) -> MessageRecord:
        target = channel.target
        workspace_id = self.request.workspace_id
        return stored_form(workspace_id, target.id, target.name, message, thread_ts, self.names)

    # -- writer ----------------------------------------------------------------------------------
    async def _write(self) -> None:
        """Take the next unit and every unit already waiting behind it (up to `coalesce_rows`
        rows), and write them as one batch: one SQL transaction, one checkpoint per channel.
        Units stay in queue order, so each channel's units are written in the order they were
        fetched and its checkpoint moves to the last one of the batch."""
        try:
            finished = False
            while not finished:
                unit = await self.queue.get()
                if unit is None:
                    return
                units = [unit]
                rows = len(unit.records) + len(unit.threads)
                while rows < self.config.coalesce_rows and not self.queue.empty():
                    more = self.queue.get_nowait()
                    if more is None:
                        finished = True
                        break
                    units.append(more)
                    rows += len(more.records) + len(more.threads)
                await self._write_units(units)
        except BaseException:
            self.failed = True
            raise

    async def _write_units(self, units: list[_Unit]) -> None:
        records: list[MessageRecord] = []
        prunes: list[PageRead | ThreadRead] = []
        checkpoints: dict[str, Checkpoint] = {}
        stored = 0
        done: list[_Unit] = []
        index = 0
        cancelled: RunCancelled | None = None
        try:
            for index, unit in enumerate(units):
                collected = await self._collect(unit)
                if collected is None:
                    continue
                records.extend(collected)
                prunes.extend(unit.prunes)
                stored += len({r.ts for r in collected})
                checkpoints[unit.channel.target.id] = self._checkpoint(unit)
                done.append(unit)
        except RunCancelled as exc:
            # A reply walk was cancelled: the units before it are complete and still written.
            for unit in units[index:]:
                _cancel_threads(unit)
            cancelled = exc
        except BaseException:
            for unit in units[index:]:
                _cancel_threads(unit)
            raise
        if done:
            await self._commit(done, records, prunes, checkpoints, stored)
        if cancelled is not None:
            raise cancelled

    async def _commit(
        self,
        done: list[_Unit],
        records: list[MessageRecord],
        prunes: list[PageRead | ThreadRead],
        checkpoints: dict[str, Checkpoint],
        stored: int,
    ) -> None:
        await self.engine.yield_to()
        outcome = await write_pruned_batch(
            self.engine.sessions,
            self.engine.vectors,
            records,
            list(checkpoints.values()),
            prunes,
            batch_size=self.config.write_batch,
        )
        self.removed += outcome.removed
        self.tracker.messages_stored += stored
        self.tracker.messages_written += outcome.written
        self.tracker.current_channel = done[-1].channel.target.name
        self.tracker.channels_done += sum(1 for unit in done if unit.last_of_channel)
        await self.tracker.report()

    async def _collect(self, unit: _Unit) -> list[MessageRecord] | None:
        """The unit's records with its threads' replies, or None when its channel died."""
        channel = unit.channel
        if channel.dead is not None:
            _cancel_threads(unit)
            return None
        records = list(unit.records)
        cfg = self.config
        for index, (parent_ts, task) in enumerate(unit.threads):
            try:
                replies = await task
            except ChannelUnavailable as exc:
                if exc.error == "thread_not_found":
                    # The parent was deleted meanwhile, and every reply with it (a parent with
                    # replies left stays as a placeholder): nothing to store, none left to keep.
                    self._thread_read(unit, parent_ts, [])
                    continue
                channel.dead = f"became unreadable during the run ({exc.error})"
            except SlackRequestError as exc:
                channel.dead = f"thread replies could not be read ({exc.error})"
            except MalformedSlackAnswer as exc:
                for _, rest in unit.threads[index:]:
                    rest.cancel()
                self._fail_channel(channel, exc)
                return None
            if channel.dead is not None:
                for _, rest in unit.threads[index:]:
                    rest.cancel()
                self._skip(SkippedChannel(channel.target.id, channel.target.name, channel.dead))
                return None
            for reply in replies:
                ts = reply.get("ts")
                if not isinstance(ts, str):
                    continue
                micros = ts_micros(ts)
                if not channel.oldest < micros <= channel.latest:
                    continue
                if not keep_message(
                    reply, include_bots=cfg.include_bots, min_text_chars=cfg.min_text_chars
                ):
                    continue
                records.append(
                    self._record(channel, reply, str(reply.get("thread_ts") or parent_ts))
                )
            self._thread_read(unit, parent_ts, replies)
        return records

    def _thread_read(self, unit: _Unit, parent_ts: str, replies: list[dict[str, Any]]) -> None:
        """Every reply of the thread above the `oldest` it was asked from is in `replies`."""
        if not self.config.prune_deleted:
            return
        unit.prunes.append(
            ThreadRead(
                workspace_id=self.request.workspace_id,
                channel_id=unit.channel.target.id,
                thread_ts=parent_ts,
                after=unit.replies_after[parent_ts],
                before=unit.channel.prune_before_ts,
                returned=frozenset(r["ts"] for r in replies if isinstance(r.get("ts"), str)),
            )
        )

    def _checkpoint(self, unit: _Unit) -> Checkpoint:
        channel = unit.channel
        return Checkpoint(
            workspace_id=self.request.workspace_id,
            channel_id=channel.target.id,
            channel_name=channel.target.name,
            job_run_id=self.request.job_run_id,
            phase=unit.next_phase,
            window_oldest_ts=channel.oldest_ts,
            window_latest_ts=channel.latest_ts,
            resume_latest_ts=unit.resume_latest_ts,
            high_water_ts=channel.latest_ts if unit.next_phase == "done" else channel.high_water,
        )


def _cancel_threads(unit: _Unit) -> None:
    for _, task in unit.threads:
        task.cancel()
