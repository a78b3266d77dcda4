"""Search of the stored copy (issue 16): `SearchService.search` on a large store, its latency idle
and during a large write load, and recall@10 of the fused search against each half alone.

    .venv/bin/python bench/bench_search.py [--messages 500000] [--channels 50] [--users 200]
        [--per-kind 100] [--searches 300] [--load-batch 2000] [--seed 16] [--postgres]
        [--quiet-flag /tmp/bench_quiet] [--max-load 1.5] [--max-busy 0.25] [--load-wait 300]

Setup (timed, not a figure with a target): a fakeslack workspace (in a thread of this process,
rate limits off) gives the channels, users and searcher's private channels; `--messages` messages
are generated from a vocabulary and written straight into SQL (`db.messages.upsert_messages`) and
embedded Chroma (`ChromaVectorStore.upsert`), in chunks, streamed (never all in memory) and
pipelined (the next chunk is made and stored in SQL while Chroma indexes this one). Chroma
uses `EMBEDDING=hashing`: offline and lexical (words, word pairs, character n-grams), no model
download; the meaning half is then a fuzzy lexical match, not a semantic one.

The text: 3,000 filler words drawn by Zipf's law, with topic words (400 stems, five forms each:
`stem`, `stem`+ing/ed/er/s) and now and then an error code (`ERR_` + 4 hex digits). Planted among
them, `--per-kind` targets of each kind, each with one query whose answer is known:
- `code`: the target holds a code no other message holds; the query is the code (half of them
  with one more word of the target). The word half should find it first.
- `subset`: the target holds five topic stems; the query is three of its words exactly.
- `paraphrase`: the same kind of target; the query names three of its stems in other forms (and
  half the time one more word the target does not hold): a question in other words. The word
  half requires every word, so it cannot find these; the meaning half can.
Queries carry filters consistent with their target (none, `from:` its author, `in:` its channel,
or a window of days around it). Relevant set: the target. A fifth of the code targets have an
identical copy in a private channel the searcher is not in; no search may show it (`leaks`).

Recall@10 is measured three ways with the same readable channels and filters: the service's
first page (10), the word half alone (`db.search.search_words`, limit 10), and the meaning half
alone (`ChromaVectorStore.search` as the service asks it, its cut at MAX_DISTANCE and the day
check applied, first 10).

Latency: `--searches` searches of a mix (the recall queries, common-word queries, topic-word
queries; a third with filters; 30 % page 2), one at a time, timed around `service.search`: idle,
then the same mix while a concurrent task writes `--load-batch`-message batches through
`scheduler.backfill.writer.write_batch` back to back, as a run's writer does (a write loop, not
a BackfillEngine run: Slack's pacing would leave the stores idle most of the time). The channel
list and the searcher's private channels are cached (TTLs raised for the benchmark, warmed first): the figures are the
search itself. Targets: p99 < 300 ms idle, < 600 ms during the writes.

Quiet timing: before each timed phase (idle, during the writes) the benchmark waits, up to
`--load-wait` seconds, for the 1-minute load average to fall to `--max-load` and for the machine's
CPUs to be at most `--max-busy` busy over 3 s while the benchmark itself is idle (the average lags:
one other busy process on two cores shows as a load of 1), and prints the load it starts and ends
each phase under. `--quiet-flag PATH` creates that file from the idle phase to
the end of the writes phase and removes it after (others hold their tests while it exists).

`--postgres` uses a throwaway PostgreSQL (`tests/support/servers.py`) instead of SQLite. Prints
`name: value` lines; a figure with a target gives its bound, the ratio to it and met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ["EMBEDDING"] = "hashing"

from slack_sdk.web.async_client import AsyncWebClient

import fakeslack
from blocks.search import SearchQuery, search_window
from db.messages import upsert_messages
from db.migrate import migrate
from db.records import MessageRecord
from db.search import search_words
from db.session import create_engine, make_sessionmaker, reading
from db.vectors import ChromaVectorStore
from scheduler.backfill.writer import write_batch
from scheduler.channel_directory import ChannelDirectory
from scheduler.search import (
    DAY_FILTER_FACTOR,
    DEPTH,
    MAX_DISTANCE,
    MAX_NEAR,
    UNFILTERED_FACTOR,
    PrivateMemberships,
    SearchService,
    _bound,
    _inside,
)

NOW = 1_750_000_000
SPAN_S = 365 * 86_400
START = NOW - SPAN_S
IDLE_P99_MS = 300.0
LOADED_P99_MS = 600.0
SETUP_CHUNK = 5_000
SQL_ROWS = 500  # rows per INSERT statement (SQLite's bound-parameter cap)
KINDS = ("code", "subset", "paraphrase")
FORMS = ("", "ing", "ed", "er", "s")
LONG_TTL = 1e9


# --- the text -------------------------------------------------------------------------------------


def _pseudo_words(
    rng: random.Random, count: int, syllables: Sequence[str], taken: set[str]
) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


@dataclass(frozen=True)
class Target:
    kind: str
    index: int  # position in the stream: fixes its ts
    channel_id: str
    user_id: str
    text: str
    query: SearchQuery
    decoy_index: int | None = None  # a copy in a channel the searcher cannot read


class Corpus:
    """Deterministic message stream: message `i` always has the same ts; planted ones their text."""

    def __init__(self, seed: int, team_id: str, channels: dict[str, str], users: dict[str, str]):
        rng = random.Random(seed)
        taken: set[str] = set()
        filler_syl = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "pe", "si", "da", "go", "bu"]
        topic_syl = ["zor", "plex", "quin", "vask", "trel", "mond", "gryph", "wald", "fenn", "jost"]
        self.filler = _pseudo_words(rng, 3_000, filler_syl, taken)
        stems = _pseudo_words(rng, 400, topic_syl, taken)
        forms = {s + f for s in stems for f in FORMS}
        # A form of one stem must not be another stem's form.
        self.stems = [s for s in stems if all(s + f not in taken for f in FORMS[1:])]
        assert len(forms) == 5 * len(stems)
        self.cum = list(_cumulative([1.0 / (r + 1) for r in range(len(self.filler))]))
        self.team_id = team_id
        self.channels = channels  # id -> name, where messages are stored
        self.channel_ids = sorted(channels)
        self.users = users  # id -> name, the authors
        self.user_ids = sorted(users)
        self.step = float(SPAN_S)  # set by plant()
        self.target_codes: set[int] = set()
        self.planted: dict[int, tuple[str, str, str]] = {}  # index -> channel, user, text
        self.seed = seed

    def words(self, rng: random.Random, n: int) -> list[str]:
        return rng.choices(self.filler, cum_weights=self.cum, k=n)

    def topic(self, rng: random.Random, stem: str | None = None, form: str | None = None) -> str:
        return (stem or rng.choice(self.stems)) + (rng.choice(FORMS) if form is None else form)

    def code(self, value: int) -> str:
        return f"ERR_{value:04X}"

    def ts(self, index: int) -> str:
        return f"{int(START + index * self.step)}.{index % 1_000_000:06d}"

    def plant(
        self, messages: int, per_kind: int, readable: Sequence[str], hidden: Sequence[str]
    ) -> list[Target]:
        """Choose the targets' places and texts, and each one's query."""
        rng = random.Random(self.seed + 1)
        self.step = SPAN_S / messages
        wanted = 3 * per_kind
        decoys = per_kind // 5 if hidden else 0
        spots = rng.sample(range(messages), wanted + decoys)
        target_spots, decoy_spots = spots[:wanted], spots[wanted:]
        codes = rng.sample(range(1 << 16), per_kind)
        self.target_codes = set(codes)
        filler = set(self.filler)
        targets: list[Target] = []
        for n, index in enumerate(target_spots):
            kind = KINDS[n // per_kind]
            channel = rng.choice(readable)
            user = rng.choice(self.user_ids)
            if kind == "code":
                body = self.words(rng, rng.randint(6, 14)) + [
                    self.topic(rng) for _ in range(rng.randint(0, 2))
                ]
                code = self.code(codes[n])
                body.insert(rng.randrange(len(body) + 1), code)
                extra = [w for w in body if w in filler]
                words = code if rng.random() < 0.5 or not extra else f"{code} {rng.choice(extra)}"
            else:
                stems = rng.sample(self.stems, 5)
                forms = [rng.choice(FORMS) for _ in stems]
                body = self.words(rng, rng.randint(4, 9)) + [
                    s + f for s, f in zip(stems, forms, strict=True)
                ]
                rng.shuffle(body)
                picked = rng.sample(range(5), 3)
                if kind == "subset":
                    query_words = [stems[i] + forms[i] for i in picked]
                else:
                    query_words = [
                        stems[i] + rng.choice([f for f in FORMS if f != forms[i]]) for i in picked
                    ]
                    if rng.random() < 0.5:
                        query_words.append(
                            rng.choice([w for w in self.filler[:200] if w not in body])
                        )
                rng.shuffle(query_words)
                words = " ".join(query_words)
            text = " ".join(body)
            query = SearchQuery(words, *self._filters(rng, index, channel, user))
            decoy = None
            if kind == "code" and decoy_spots:
                decoy = decoy_spots.pop()
                self.planted[decoy] = (rng.choice(hidden), user, text)
            self.planted[index] = (channel, user, text)
            targets.append(Target(kind, index, channel, user, text, query, decoy))
        return targets

    def _filters(
        self, rng: random.Random, index: int, channel: str, user: str
    ) -> tuple[tuple[str, ...], tuple[str, ...], date | None, date | None]:
        roll = rng.random()
        if roll < 0.4:
            return (), (), None, None
        if roll < 0.6:
            return (), (user,), None, None
        if roll < 0.8:
            return (channel,), (), None, None
        day = datetime.fromtimestamp(int(START + index * self.step), UTC).date()
        return (
            (),
            (),
            day - timedelta(days=rng.randint(0, 20)),
            day + timedelta(days=rng.randint(1, 20)),
        )

    def record(self, index: int, rng: random.Random) -> MessageRecord:
        planted = self.planted.get(index)
        if planted is not None:
            channel, user, text = planted
        else:
            channel = rng.choice(self.channel_ids)
            user = rng.choice(self.user_ids)
            body = self.words(rng, rng.randint(5, 16))
            for _ in range(rng.choice((0, 0, 1, 1, 1, 2, 2, 3))):
                body.insert(rng.randrange(len(body) + 1), self.topic(rng))
            if rng.random() < 0.08:
                value = rng.randrange(1 << 16)
                if value not in self.target_codes:
                    body.insert(rng.randrange(len(body) + 1), self.code(value))
            text = " ".join(body)
        return MessageRecord(
            workspace_id=self.team_id,
            channel_id=channel,
            channel_name=self.channels.get(channel, channel),
            ts=self.ts(index),
            thread_ts=None,
            user_id=user,
            user_name=self.users[user],
            text=text,
        )

    def chunk(self, start: int, count: int) -> list[MessageRecord]:
        rng = random.Random(self.seed * 1_000_003 + start)
        return [self.record(i, rng) for i in range(start, start + count)]


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


# --- figures --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 300 values is the 297th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def against(value: float, bound: float, unit: str) -> str:
    verdict = "met" if value < bound else "missed"
    return f"{value:.1f} (target < {bound:g} {unit}: {value / bound:.2f}x the bound, {verdict})"


def show(name: str, value: Any) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


# --- the benchmark --------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    corpus: Corpus
    service: SearchService
    sessions: Any
    vectors: ChromaVectorStore
    client: AsyncWebClient
    team_id: str
    searcher: str
    readable: frozenset[str]  # what Slack lets the searcher read (fakeslack's truth)
    halves_read: frozenset[str]  # what the service says (the halves use it)
    leaks: int = 0
    searches: int = 0

    async def search(
        self, query: SearchQuery, page: int = 1
    ) -> tuple[float, list[tuple[str, str]]]:
        started = time.perf_counter()
        found = await self.service.search(
            self.client, self.team_id, self.searcher, query, tz="UTC", page=page
        )
        elapsed = time.perf_counter() - started
        self.searches += 1
        self.leaks += sum(1 for h in found.hits if h.message.channel_id not in self.readable)
        return elapsed, [(h.message.channel_id, h.message.ts) for h in found.hits]

    def allowed(self, query: SearchQuery) -> frozenset[str]:
        allowed = self.halves_read
        if query.channel_ids:
            allowed &= frozenset(query.channel_ids)
        return allowed

    async def words_half(self, query: SearchQuery) -> list[tuple[str, str]]:
        start, end = search_window(query, "UTC")
        async with reading(self.sessions) as session:
            rows = await search_words(
                session,
                self.team_id,
                query.words,
                channel_ids=self.allowed(query),
                user_ids=frozenset(query.user_ids) or None,
                after_ts=_bound(start, before=False),
                before_ts=_bound(end, before=True),
                limit=10,
            )
        return [(r.channel_id, r.ts) for r in rows]

    async def halves_ms(self, query: SearchQuery) -> tuple[float, float]:
        """Each half's own time at the service's depth (SQL: DEPTH rows; Chroma: its limit)."""
        start, end = search_window(query, "UTC")
        authors = frozenset(query.user_ids) or None
        began = time.perf_counter()
        async with reading(self.sessions) as session:
            await search_words(
                session,
                self.team_id,
                query.words,
                channel_ids=self.allowed(query),
                user_ids=authors,
                after_ts=_bound(start, before=False),
                before_ts=_bound(end, before=True),
                limit=DEPTH,
            )
        middle = time.perf_counter()
        # As the service asks Chroma: channels in the filter only for an `in:` search.
        narrow = self.allowed(query) if query.channel_ids else None
        factor = DAY_FILTER_FACTOR if start or end else 1
        limit = min(MAX_NEAR, DEPTH * factor * (1 if narrow else UNFILTERED_FACTOR))
        await self.vectors.search(
            self.team_id, query.words, limit, channel_ids=narrow, user_ids=authors
        )
        return (middle - began) * 1000, (time.perf_counter() - middle) * 1000

    async def meaning_half(self, query: SearchQuery) -> tuple[list[tuple[str, str]], list[Any]]:
        """The first 10 as the service keeps them, and Chroma's raw answer (for diagnostics)."""
        start, end = search_window(query, "UTC")
        after_ts, before_ts = _bound(start, before=False), _bound(end, before=True)
        limit = min(MAX_NEAR, DEPTH * (DAY_FILTER_FACTOR if start or end else 1))
        near = await self.vectors.search(
            self.team_id,
            query.words,
            limit,
            channel_ids=self.allowed(query),
            user_ids=frozenset(query.user_ids) or None,
        )
        kept = [
            (str(m.metadata.get("channel_id")), str(m.metadata.get("ts")))
            for m in near
            if m.distance <= MAX_DISTANCE
            and _inside(str(m.metadata.get("ts")), after_ts, before_ts)
        ]
        return kept[:10], near


async def recall(bench: Bench, targets: list[Target]) -> None:
    found: dict[tuple[str, str], int] = {}
    cut: dict[str, int] = {}
    distances: dict[str, list[float]] = {}
    for t in targets:
        key = (t.channel_id, bench.corpus.ts(t.index))
        _, fused = await bench.search(t.query)
        words = await bench.words_half(t.query)
        meaning, raw = await bench.meaning_half(t.query)
        for how, hits in (("fused", fused), ("words", words), ("meaning", meaning)):
            if key in hits[:10]:
                found[(how, t.kind)] = found.get((how, t.kind), 0) + 1
        for m in raw:
            if (str(m.metadata.get("channel_id")), str(m.metadata.get("ts"))) == key:
                distances.setdefault(t.kind, []).append(m.distance)
                if m.distance > MAX_DISTANCE:
                    cut[t.kind] = cut.get(t.kind, 0) + 1
                break
    per_kind = {k: sum(1 for t in targets if t.kind == k) for k in KINDS}
    for how in ("fused", "words", "meaning"):
        for kind in KINDS:
            n = found.get((how, kind), 0)
            show(f"recall_at_10_{how}_{kind}", f"{n / per_kind[kind]:.3f} ({n}/{per_kind[kind]})")
        total = sum(found.get((how, k), 0) for k in KINDS)
        show(f"recall_at_10_{how}_all", f"{total / len(targets):.3f} ({total}/{len(targets)})")
    for kind in KINDS:
        d = distances.get(kind, [])
        show(
            f"meaning_target_distance_p50_{kind}",
            f"{statistics.median(d):.3f}" if d else "target not in Chroma's answer",
        )
        show(f"meaning_target_cut_by_max_distance_{kind}", cut.get(kind, 0))


def search_mix(
    corpus: Corpus, targets: list[Target], count: int, seed: int
) -> list[tuple[str, SearchQuery, int]]:
    rng = random.Random(seed + 2)
    mix: list[tuple[str, SearchQuery, int]] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.5:
            kind, query = "known", rng.choice(targets).query
        else:
            if roll < 0.75:
                kind, words = (
                    "common",
                    " ".join(rng.sample(corpus.filler[30:300], rng.randint(1, 2))),
                )
            else:
                kind, words = "topic", " ".join(corpus.topic(rng) for _ in range(rng.randint(1, 3)))
            f = rng.random()
            channels: tuple[str, ...] = ()
            users: tuple[str, ...] = ()
            after = before = None
            if f < 0.12:
                channels = tuple(rng.sample(corpus.channel_ids, rng.randint(1, 3)))
            elif f < 0.24:
                users = tuple(rng.sample(corpus.user_ids, rng.randint(1, 2)))
            elif f < 0.33:
                day = datetime.fromtimestamp(rng.uniform(START, NOW), UTC).date()
                after, before = day - timedelta(days=rng.randint(1, 60)), day
            query = SearchQuery(words, channels, users, after, before)
        mix.append((kind, query, 2 if rng.random() < 0.3 else 1))
    return mix


async def timed_mix(bench: Bench, mix: list[tuple[str, SearchQuery, int]], phase: str) -> None:
    by_kind: dict[str, list[float]] = {}
    halves: dict[str, list[float]] = {"words": [], "meaning": []}
    for kind, query, page in mix:
        elapsed, _ = await bench.search(query, page)
        by_kind.setdefault(kind, []).append(elapsed * 1000)
        if phase == "idle":  # each half alone, as deep as the service asks it (diagnostic)
            words_ms, meaning_ms = await bench.halves_ms(query)
            halves["words"].append(words_ms)
            halves["meaning"].append(meaning_ms)
    every = [x for v in by_kind.values() for x in v]
    bound = IDLE_P99_MS if phase == "idle" else LOADED_P99_MS
    show(f"search_{phase}_count", len(every))
    show(f"search_{phase}_p50_ms", round(percentile(every, 50), 1))
    show(f"search_{phase}_p99_ms", against(percentile(every, 99), bound, "ms"))
    show(f"search_{phase}_max_ms", round(max(every), 1))
    for kind, values in sorted(by_kind.items()):
        show(
            f"search_{phase}_{kind}_p50_p99_ms",
            f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} ({len(values)} searches)",
        )
    for half, values in halves.items():
        if values:
            show(
                f"search_{phase}_{half}_half_alone_p50_p99_ms",
                f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} (depth {DEPTH})",
            )


async def load_store(
    args: argparse.Namespace, corpus: Corpus, sessions: Any, vectors: ChromaVectorStore
) -> float:
    async def sql(records: list[MessageRecord]) -> None:
        async with sessions() as session, session.begin():
            for i in range(0, len(records), SQL_ROWS):
                await upsert_messages(session, records[i : i + SQL_ROWS])

    started = time.perf_counter()
    next_report = 0.1
    indexing: asyncio.Task[None] | None = None  # Chroma's chunk in flight (its own process)
    for start in range(0, args.messages, SETUP_CHUNK):
        # Made and stored in SQL while Chroma, the slower store, indexes the previous chunk.
        records = corpus.chunk(start, min(SETUP_CHUNK, args.messages - start))
        await sql(records)
        if indexing is not None:
            await indexing
        indexing = asyncio.create_task(vectors.upsert(records))
        done = (start + len(records)) / args.messages
        if done >= next_report:
            rate = (start + len(records)) / (time.perf_counter() - started)
            print(f"[setup] {done:.0%} stored, {rate:.0f} msg/s", file=sys.stderr, flush=True)
            next_report += 0.1
    if indexing is not None:
        await indexing
    return time.perf_counter() - started


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot (Linux `/proc/stat`)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def busy_share(seconds: float = 3.0) -> float:
    """The share of all CPUs busy over `seconds` (0 where /proc/stat is not there)."""
    try:
        busy0, total0 = _cpu_times()
        await asyncio.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy1 - busy0) / max(1, total1 - total0)


async def quiet_enough(args: argparse.Namespace, phase: str) -> None:
    """Wait (up to `--load-wait` s) for the 1-minute load average to fall to `--max-load` and the
    CPUs to be at most `--max-busy` busy (this benchmark is idle meanwhile)."""
    began = time.perf_counter()
    first = os.getloadavg()[0]
    busy = await busy_share()
    while (
        os.getloadavg()[0] > args.max_load or busy > args.max_busy
    ) and time.perf_counter() - began < args.load_wait:
        await asyncio.sleep(2)
        busy = await busy_share()
    load = os.getloadavg()[0]
    waited = time.perf_counter() - began
    show(
        f"load_before_{phase}",
        f"{load:.2f} (1-min average; {first:.2f} before waiting {waited:.0f} s, "
        f"bound {args.max_load:g}; CPUs {busy:.0%} busy, bound {args.max_busy:.0%})",
    )
    print(f"[{phase}] timed phase starts, load {load:.2f}", file=sys.stderr, flush=True)


def load_after(phase: str) -> None:
    show(f"load_after_{phase}", f"{os.getloadavg()[0]:.2f} (1-min average)")


async def run(args: argparse.Namespace) -> None:
    setup_started = time.perf_counter()
    ws = fakeslack.generate(
        args.seed, users=args.users, channels=args.channels, messages=6 * args.channels, now=NOW
    )
    async with contextlib.AsyncExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-search-"))
        if args.postgres:
            from tests.support.servers import postgres_server

            url = f"{stack.enter_context(postgres_server())}/postgres"
        else:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate(url)
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        vectors = await ChromaVectorStore.open(f"{tmp}/chroma", None, "hashing")
        stack.push_async_callback(vectors.close)
        fake = stack.enter_context(fakeslack.FakeSlack(ws, rate_limits=False))
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        directory = ChannelDirectory(ttl=LONG_TTL)
        service = SearchService(
            sessions, vectors, directory, memberships=PrivateMemberships(ttl=LONG_TTL), per_page=10
        )
        public, private = await directory.kinds(client, ws.team_id, timeout=30)
        listed = public | private
        humans = sorted(
            u["id"]
            for u in ws.users.values()
            if not u.get("is_bot")
            and not u.get("deleted")
            and not u.get("is_restricted")
            and u["id"] != ws.bot_user_id
        )

        def member_of(user: str) -> set[str]:
            return {c for c in private if user in ws.channels[c].members}

        searcher = next(
            (u for u in humans if member_of(u) and member_of(u) != set(private)), humans[0]
        )
        readable = frozenset(public | member_of(searcher))
        hidden = sorted(private - readable)
        channels = {c: ws.channels[c].name for c in listed}
        users = {u: str(ws.users[u].get("name") or u) for u in humans}
        corpus = Corpus(args.seed, ws.team_id, channels, users)
        targets = corpus.plant(args.messages, args.per_kind, sorted(readable), hidden)

        show("database", "postgresql" if args.postgres else "sqlite")
        show("embedding", "hashing (EMBEDDING=hashing: offline, lexical; no model download)")
        show("messages_stored", args.messages)
        show(
            "channels",
            f"{len(listed)} ({len(private)} private, {len(hidden)} hidden from the searcher)",
        )
        show("authors", len(users))
        show("searcher_readable_channels", len(readable))

        write_s = await load_store(args, corpus, sessions, vectors)
        show(
            "setup_write_s",
            f"{write_s:.1f} ({args.messages / write_s:.0f} msg/s, SQL and Chroma side by side)",
        )
        warm = time.perf_counter()
        await bench_warm(service, client, ws.team_id, searcher)
        show("cache_warmup_ms", round((time.perf_counter() - warm) * 1000, 1))
        show("setup_s", round(time.perf_counter() - setup_started, 1))

        says = await service.readable(client, ws.team_id, searcher)
        show("service_readable_agrees_with_slack", says == readable)
        bench = Bench(
            args, corpus, service, sessions, vectors, client, ws.team_id, searcher, readable, says
        )
        show("queries", ", ".join(f"{k} {args.per_kind}" for k in KINDS))
        show("decoys_in_hidden_channels", sum(1 for t in targets if t.decoy_index is not None))
        began = time.perf_counter()
        await recall(bench, targets)
        show("recall_phase_s", round(time.perf_counter() - began, 1))

        mix = search_mix(corpus, targets, args.searches, args.seed)
        if args.quiet_flag:
            stack.callback(Path(args.quiet_flag).unlink, missing_ok=True)
        await quiet_enough(args, "idle")
        if args.quiet_flag:
            Path(args.quiet_flag).touch()
        began = time.perf_counter()
        await timed_mix(bench, mix, "idle")
        show("idle_phase_s", round(time.perf_counter() - began, 1))
        load_after("idle")
        for label, words in (("most_common_word", corpus.filler[0]), ("code_alone", "ERR_0000")):
            times = [(await bench.search(SearchQuery(words)))[0] * 1000 for _ in range(5)]
            show(
                f"search_idle_{label}_p50_ms",
                f"{statistics.median(times):.1f} (diagnostic, not in the mix)",
            )

        stop = asyncio.Event()
        written = [0, 0.0]  # messages, seconds inside write_batch

        async def writer() -> None:
            index = args.messages
            while not stop.is_set():
                records = corpus.chunk(index, args.load_batch)
                began = time.perf_counter()
                await write_batch(sessions, vectors, records, [])
                written[0] += len(records)
                written[1] += time.perf_counter() - began
                index += args.load_batch

        await quiet_enough(args, "during_writes")
        task = asyncio.create_task(writer())
        await asyncio.sleep(1.0)  # the first batch is inside its transaction
        load_started = time.perf_counter()
        await timed_mix(bench, mix, "during_writes")
        load_s = time.perf_counter() - load_started
        load_after("during_writes")
        stop.set()
        await task
        if args.quiet_flag:
            Path(args.quiet_flag).unlink(missing_ok=True)
            print("[quiet] timed phases over", file=sys.stderr, flush=True)
        show(
            "writes_during_searches",
            f"{int(written[0])} messages in {args.load_batch}-message write_batch calls, "
            f"{written[0] / max(written[1], 1e-9):.0f} msg/s inside them, over {load_s:.1f} s of searches "
            "(a concurrent write loop, not a BackfillEngine run)",
        )
        show("searches_total", bench.searches)
        show("leaks", f"{bench.leaks} (hits from channels the searcher may not read; must be 0)")


async def bench_warm(
    service: SearchService, client: AsyncWebClient, team_id: str, user: str
) -> None:
    """Channel list, searcher's private channels and auth.test cached before anything is timed."""
    await service.search(client, team_id, user, SearchQuery("warm"), tz="UTC")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=500_000)
    p.add_argument("--channels", type=int, default=50)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--per-kind", type=int, default=100, help="targets (queries) of each kind")
    p.add_argument("--searches", type=int, default=200, help="timed searches per phase")
    p.add_argument("--load-batch", type=int, default=2_000, help="messages per write_batch")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    p.add_argument(
        "--quiet-flag", help="a file to create while the timed phases run (removed after)"
    )
    p.add_argument(
        "--max-load", type=float, default=1.5, help="1-min load average to wait for before timing"
    )
    p.add_argument(
        "--max-busy", type=float, default=0.25, help="CPU share busy to wait for before timing"
    )
    p.add_argument(
        "--load-wait", type=float, default=300.0, help="longest wait for --max-load (seconds)"
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
