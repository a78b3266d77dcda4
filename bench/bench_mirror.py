"""The live mirror under a sustained stream of Slack events: signed `event_callback` POSTs to
`/slack/events` at `--rate` events a second for `--seconds`, first with nothing else going, then
during a large backfill in the same process.

The app runs in this process as in `bench_ack.py` (`running_app`, SQLite, embedded Chroma with the
hashing embedding, `rate_minute_seconds` matched to fakeslack's time compression), each phase in a
fresh app with empty stores. fakeslack serves a generated workspace from its own process. The
events come from a client process of its own that paces them (one every 1/rate s, each on a
connection opened beforehand and written through a raw asyncio transport, so what it measures is
the app's time) for the channels the bot is in: new messages (unique `ts` and `event_id`), thread
replies to them, edits (`message_changed`) and deletions (`message_deleted`) of earlier ones, of
those already seen stored so that each change is observable. Before the figures it posts one
message by each person and waits for them to be stored: a mirror that has been running knows
every author's and channel's name (`--cold` skips this).

Figures, per phase (`intake`: the events alone; `during_run`: the events while a run goes):
- `ack`: from a request's write to its response's last byte (the acknowledgement as Slack sees
  it). Target p99 < 100 ms.
- `event_to_stored`: from a new message's or reply's send to its row being present in SQL (the
  drainer writes Chroma inside the same transaction, so a committed row is in both stores); also
  `edit_to_applied` (the row carries the edit's `edited_ts`) and `delete_to_applied` (the row is
  gone). The client polls the database for the keys still pending every `--poll-ms` (read-only,
  from its own process), so each figure is late by at most one poll plus the query; a change not
  seen applied when the bench stops waiting counts as infinitely late. Target p99 < 5 s. (The
  app's own `backfill_mirror_lag_seconds` starts from Slack's whole-second `event_time`.)
- `backlog`: events waiting in the inbox once the last one is acknowledged, and how long until
  none is left (`MirrorService.status`, polled every 50 ms, for at most `--drain-cap` s). Target
  0 within 10 s. `lost`: changes still not seen applied with the inbox empty.
  `app_process_cpu_cores`: this process's CPU while the events came in (not Chroma's worker).
- `backfill_wall`: the run's own time (its row: started to completed) in a fresh app without
  events (`baseline`), and in another with events from its start until it ends or `--seconds`
  pass (`during_run`), in the same invocation. Target with/without ≤ 1.1.

    .venv/bin/python bench/bench_mirror.py [--rate 200] [--seconds 60] [--messages 20000]
        [--channels 12] [--users 60] [--days 30] [--poll-ms 50] [--drain-cap 30]
        [--phases intake,run] [--mix post=60,reply=20,edit=12,delete=8] [--cold] [--postgres]

`--phases intake` or `--phases run` runs one half; `--mix` sets the kinds' relative shares. `--postgres` runs the app on a throwaway
PostgreSQL cluster (`tests/support/servers.py`: fsync and synchronous_commit off) instead of
SQLite. Prints `name: value` lines; a figure with a target gives its bound, the ratio to it and
met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import aiohttp
from bench_ack import (
    TIME_COMPRESSION,
    LoopLag,
    _OneRequest,
    free_port,
    percentile,
    primary_owner,
    raw_request,
    start_fakeslack,
)

ACK_BOUND_MS = 100.0
STORED_BOUND_S = 5.0
BACKLOG_BOUND_S = 10.0
WALL_BOUND = 1.1
# Share of each kind of event by default (a reply, edit or deletion without a target seen stored
# yet is a new message instead).
KINDS = ("post", "reply", "edit", "delete")
MIX = "post=60,reply=20,edit=12,delete=8"
SPARE_CONNECTIONS = 24
SETTLE_S = 300.0  # the client's cap on waiting for the app's inbox to empty after the last send
WORDS = ("deploy", "rollback", "latency", "review", "schema", "index", "cache", "queue", "retry")
WORDS += ("incident", "oncall", "alert", "metric", "release", "merge", "ticket", "launch", "design")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="events a second")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the intake phase lasts")
    p.add_argument("--messages", type=int, default=20_000, help="the backfilled workspace's size")
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--poll-ms", type=float, default=50.0, help="the client's database poll")
    p.add_argument("--phases", default="intake,run", help="intake, run, or both")
    p.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    p.add_argument(
        "--drain-cap", type=float, default=30.0, help="how long to wait for the backlog to empty"
    )
    p.add_argument("--mix", default=MIX, help="relative shares of the kinds of event")
    p.add_argument("--cold", action="store_true", help="no warm-up (names unknown to the mirror)")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # internal
    return p.parse_args(argv)


# --- the event client (its own process) --------------------------------------------------------------


def parse_mix(text: str) -> list[tuple[str, float]]:
    """`post=60,reply=20,...` as shares of 1."""
    weights = {k: float(v) for k, _, v in (part.partition("=") for part in text.split(","))}
    if set(weights) - set(KINDS) or sum(weights.values()) <= 0:
        raise ValueError(f"--mix takes {', '.join(KINDS)} with weights")
    total = sum(weights.values())
    return [(k, weights.get(k, 0.0) / total) for k in KINDS]


def ts_text(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass
class Sent:
    """One bench message the client knows of (channel, ts, author, thread)."""

    channel: str
    ts: str
    user: str
    thread_ts: str | None = None
    replies: int = 0


class Store:
    """What the client reads back: the app's `messages` rows for the keys it waits on. SQLite is
    opened read-only on a thread (a WAL reader never waits for the app's writer); PostgreSQL
    through asyncpg."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.workspace = spec["team_id"]
        self.sqlite_path: str | None = spec.get("sqlite_path")
        self.pg_dsn: str | None = spec.get("pg_dsn")
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def open(self) -> None:
        if self.sqlite_path is not None:
            self._sqlite = sqlite3.connect(
                f"file:{self.sqlite_path}?mode=ro", uri=True, check_same_thread=False
            )
        else:
            import asyncpg

            self._pg = await asyncpg.connect(self.pg_dsn)

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    def _sqlite_rows(self, channel: str, ts_list: list[str]) -> dict[str, str | None]:
        assert self._sqlite is not None
        marks = ",".join("?" * len(ts_list))
        rows = self._sqlite.execute(
            "SELECT ts, edited_ts FROM messages WHERE workspace_id = ? AND channel_id = ? "
            f"AND ts IN ({marks})",
            [self.workspace, channel, *ts_list],
        ).fetchall()
        return {ts: edited for ts, edited in rows}

    async def rows(self, by_channel: dict[str, list[str]]) -> dict[tuple[str, str], str | None]:
        """`(channel, ts) -> edited_ts` of the keys present."""
        found: dict[tuple[str, str], str | None] = {}
        for channel, ts_all in by_channel.items():
            for start in range(0, len(ts_all), 400):
                ts_list = ts_all[start : start + 400]
                if self._sqlite is not None:
                    got = await asyncio.to_thread(self._sqlite_rows, channel, ts_list)
                else:
                    records = await self._pg.fetch(
                        "SELECT ts, edited_ts FROM messages WHERE workspace_id = $1 "
                        "AND channel_id = $2 AND ts = ANY($3::text[])",
                        self.workspace,
                        channel,
                        ts_list,
                    )
                    got = {r["ts"]: r["edited_ts"] for r in records}
                found.update({(channel, ts): edited for ts, edited in got.items()})
        return found


@dataclass
class ClientState:
    """The stream's model: what was sent, what waits to be seen applied, and the figures."""

    rng: random.Random
    channels: list[tuple[str, str]]  # (id, channel_type)
    users: list[str]
    phase: str
    mix: list[tuple[str, float]]  # (kind, share), shares summing to 1
    last_micros: int = 0
    seq: int = 0
    # Messages seen stored and with no change in flight: targets of replies, edits, deletions.
    eligible: list[Sent] = field(default_factory=list)
    # Pending observations: key -> (kind, send wall time, what to see).
    present: dict[tuple[str, str], tuple[str, float, Sent]] = field(default_factory=dict)
    edited: dict[tuple[str, str], tuple[str, float, Sent]] = field(default_factory=dict)
    absent: dict[tuple[str, str], float] = field(default_factory=dict)
    seen: dict[str, list[float]] = field(
        default_factory=lambda: {"stored": [], "edit": [], "delete": []}
    )
    kinds: Counter[str] = field(default_factory=Counter)
    acks: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    lateness: list[float] = field(default_factory=list)

    def reset_figures(self) -> None:
        self.seen = {"stored": [], "edit": [], "delete": []}
        self.kinds, self.statuses = Counter(), Counter()
        self.acks, self.lateness = [], []

    def next_ts(self) -> str:
        self.last_micros = max(int(time.time() * 1_000_000), self.last_micros + 1)
        return ts_text(self.last_micros)

    def text(self) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(5, 14))
        if self.rng.random() < 0.1:
            words.insert(1, f"<@{self.rng.choice(self.users)}>")
        return " ".join(words)

    def _take_target(self, want: Any) -> Sent | None:
        for _ in range(8):
            if not self.eligible:
                return None
            i = self.rng.randrange(len(self.eligible))
            candidate = self.eligible[i]
            if want(candidate):
                self.eligible[i] = self.eligible[-1]
                self.eligible.pop()
                return candidate
        return None

    def event(self) -> dict[str, Any]:
        """The next inner event of the stream (and what to watch for)."""
        roll, kind = self.rng.random(), "post"
        for name, share in self.mix:
            if roll < share:
                kind = name
                break
            roll -= share
        self.seq += 1
        if kind == "reply":
            parent = self._take_target(lambda s: s.thread_ts is None or s.thread_ts == s.ts)
            if parent is not None:
                parent.replies += 1
                parent.thread_ts = parent.ts
                self.eligible.append(parent)  # a parent stays a target
                return self.post(parent.channel, thread=parent)
        elif kind == "edit":
            target = self._take_target(lambda s: True)
            if target is not None:
                return self._edit(target)
        elif kind == "delete":
            target = self._take_target(lambda s: s.replies == 0)
            if target is not None:
                return self._delete(target)
        return self.post(self.rng.choice(self.channels)[0])

    def _channel_type(self, channel: str) -> str:
        return next(t for c, t in self.channels if c == channel)

    def post(
        self, channel: str, *, user: str | None = None, thread: Sent | None = None
    ) -> dict[str, Any]:
        ts, user = self.next_ts(), user or self.rng.choice(self.users)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "user": user,
            "text": self.text(),
            "ts": ts,
            "event_ts": ts,
            "client_msg_id": f"bench-{self.phase}-{self.seq}",
        }
        sent = Sent(channel, ts, user)
        if thread is not None:
            event["thread_ts"] = thread.ts
            event["parent_user_id"] = thread.user
            sent.thread_ts = thread.ts
        kind = "reply" if thread is not None else "post"
        self.kinds[kind] += 1
        self.present[(channel, ts)] = (kind, 0.0, sent)
        return event

    def _message(self, target: Sent, text: str, edited_ts: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": target.user,
            "text": text,
            "ts": target.ts,
        }
        if target.thread_ts is not None:
            message["thread_ts"] = target.thread_ts
            if target.thread_ts == target.ts:
                message["reply_count"] = target.replies
        if edited_ts is not None:
            message["edited"] = {"user": target.user, "ts": edited_ts}
        return message

    def _edit(self, target: Sent) -> dict[str, Any]:
        ts = self.next_ts()
        self.kinds["edit"] += 1
        self.edited[(target.channel, target.ts)] = (ts, 0.0, target)
        return {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": target.channel,
            "channel_type": self._channel_type(target.channel),
            "ts": ts,
            "event_ts": ts,
            "message": self._message(target, self.text() + " (edited)", ts),
            "previous_message": self._message(target, "an earlier text", None),
        }

    def _delete(self, target: Sent) -> dict[str, Any]:
        ts = self.next_ts()
        self.kinds["delete"] += 1
        self.absent[(target.channel, target.ts)] = 0.0
        return {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": target.channel,
            "channel_type": self._channel_type(target.channel),
            "ts": ts,
            "event_ts": ts,
            "deleted_ts": target.ts,
            "previous_message": self._message(target, "an earlier text", None),
        }

    def mark_sent(self, event: dict[str, Any], wall: float) -> None:
        """Stamp the pending observation the event created with its send time."""
        channel = event["channel"]
        subtype = event.get("subtype")
        if subtype == "message_changed":
            key = (channel, event["message"]["ts"])
            edit_ts, _, target = self.edited[key]
            self.edited[key] = (edit_ts, wall, target)
        elif subtype == "message_deleted":
            self.absent[(channel, event["deleted_ts"])] = wall
        else:
            key = (channel, event["ts"])
            kind, _, sent = self.present[key]
            self.present[key] = (kind, wall, sent)

    def pending(self) -> int:
        return len(self.present) + len(self.edited) + len(self.absent)

    async def poll(self, store: Store) -> None:
        """One look at the database for every key still pending (only those already sent)."""
        keys = [k for k, v in self.present.items() if v[1]]
        keys += [k for k, v in self.edited.items() if v[1]]
        keys += [k for k, v in self.absent.items() if v]
        if not keys:
            return
        by_channel: dict[str, list[str]] = {}
        for channel, ts in dict.fromkeys(keys):
            by_channel.setdefault(channel, []).append(ts)
        found = await store.rows(by_channel)
        now = time.time()
        for key in [k for k, v in self.present.items() if v[1] and k in found]:
            _kind, wall, sent = self.present.pop(key)
            self.seen["stored"].append(now - wall)
            self.eligible.append(sent)
        for key in [k for k, v in self.edited.items() if v[1] and (found.get(k) or "") >= v[0]]:
            _edit_ts, wall, target = self.edited.pop(key)
            self.seen["edit"].append(now - wall)
            self.eligible.append(target)
        for key in [k for k, v in self.absent.items() if v and k not in found]:
            self.seen["delete"].append(now - self.absent.pop(key))


class Connections:
    """Connections opened ahead of their request (Slack's own connect is not the app's ack)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ready: deque[_OneRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()

    async def _open(self) -> _OneRequest:
        loop = asyncio.get_running_loop()
        _transport, proto = await loop.create_connection(_OneRequest, self.host, self.port)
        return proto

    async def _refill(self) -> None:
        while True:
            while len(self.ready) < SPARE_CONNECTIONS:
                self.ready.append(await self._open())
            self._wanted.clear()
            await self._wanted.wait()

    async def start(self) -> None:
        for _ in range(SPARE_CONNECTIONS):
            self.ready.append(await self._open())
        self._task = asyncio.create_task(self._refill())

    async def take(self) -> _OneRequest:
        while self.ready:
            proto = self.ready.popleft()
            self._wanted.set()
            if not proto.done.done():  # not closed by the server meanwhile
                return proto
        return await self._open()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for proto in self.ready:
            if proto.transport is not None:
                proto.transport.close()


class EventClient:
    """Sends the stream (paced, on connections opened beforehand) and watches it being applied."""

    def __init__(self, spec: dict[str, Any], commands: asyncio.Queue[str]) -> None:
        from urllib.parse import urlsplit

        url = urlsplit(spec["url"])
        self.spec, self.commands = spec, commands
        self.host, self.port, self.path = url.hostname or "127.0.0.1", int(url.port or 80), url.path
        self.state = ClientState(
            random.Random(spec["seed"]),
            [(c, t) for c, t in spec["channels"]],
            spec["users"],
            spec["phase"],
            parse_mix(spec["mix"]),
        )
        self.store = Store(spec)
        self.conns = Connections(self.host, self.port)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.sending_done = asyncio.Event()

    def send(self, event: dict[str, Any], proto: _OneRequest) -> None:
        from fakeslack.outgoing import json_headers

        team_id = self.spec["team_id"]
        body = json.dumps(
            {
                "token": "deprecated-verification-token",
                "team_id": team_id,
                "api_app_id": "A0FAKE",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{self.spec['phase']}{self.sent:08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": team_id, "is_bot": True}],
            }
        )
        request = raw_request(
            self.host, self.port, self.path, body, json_headers(body, self.spec["secret"])
        )
        wall = time.time()
        proto.send(request)
        self.state.mark_sent(event, wall)
        self.sent += 1
        task = asyncio.create_task(self._answer(proto))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _answer(self, proto: _OneRequest) -> None:
        try:
            latency, status = await asyncio.wait_for(proto.done, timeout=30)
        except TimeoutError:
            latency, status = 30_000.0, 0
        finally:
            if proto.transport is not None:
                proto.transport.close()
        self.state.acks.append(latency)
        self.state.statuses[status] += 1

    async def _poll_until_applied(self) -> None:
        loop = asyncio.get_running_loop()
        while not (self.sending_done.is_set() and self.state.pending() == 0):
            started = loop.time()
            await self.state.poll(self.store)
            await asyncio.sleep(max(0.0, self.spec["poll_s"] - (loop.time() - started)))

    async def warm(self) -> None:
        """One message by each person, before the figures: a mirror that has been running knows
        every author's name and every channel's (see `--cold`)."""
        for n, user in enumerate(self.state.users):
            channel = self.state.channels[n % len(self.state.channels)][0]
            self.send(self.state.post(channel, user=user), await self.conns.take())
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 120
        while self.state.pending() and time.monotonic() < deadline:
            await self.state.poll(self.store)
            await asyncio.sleep(0.1)
        if self.in_flight:
            await asyncio.wait(set(self.in_flight))
        self.state.reset_figures()

    async def run(self) -> dict[str, Any]:
        state, spec = self.state, self.spec
        await self.store.open()
        await self.conns.start()
        if not spec["cold"]:
            await self.warm()
        emit({"ready": True})
        while (await self.commands.get()) != "go":
            pass
        stop, finish = asyncio.Event(), asyncio.Event()

        async def listen() -> None:
            while True:
                command = await self.commands.get()
                (stop if command == "stop" else finish).set()

        listener = asyncio.create_task(listen())
        polling = asyncio.create_task(self._poll_until_applied())
        loop = asyncio.get_running_loop()
        rate, seconds = float(spec["rate"]), float(spec["seconds"])
        first = self.sent
        t0 = loop.time()
        while not stop.is_set():
            due = t0 + (self.sent - first) / rate
            if due - t0 >= seconds:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            state.lateness.append((loop.time() - due) * 1000)
            event = state.event()
            self.send(event, await self.conns.take())
        sent_seconds = loop.time() - t0
        if self.in_flight:
            await asyncio.wait(set(self.in_flight))
        self.conns.close()
        self.sending_done.set()
        emit({"sent_done": True})
        # Until everything is seen applied, or the app's inbox is empty or the bench stopped
        # waiting for it (`finish`): one more look then finds what is still missing.
        finishing = asyncio.create_task(finish.wait())
        await asyncio.wait({polling, finishing}, timeout=SETTLE_S, return_when="FIRST_COMPLETED")
        if not polling.done():
            polling.cancel()
            await asyncio.sleep(spec["poll_s"])
            await state.poll(self.store)
        finishing.cancel()
        listener.cancel()
        await self.store.close()
        return {
            "sent": self.sent - first,
            "sent_seconds": sent_seconds,
            "kinds": dict(state.kinds),
            "acks": state.acks,
            "statuses": {str(k): v for k, v in state.statuses.items()},
            "lateness": state.lateness,
            "seen": state.seen,
            "unseen": {
                "stored": len(state.present),
                "edit": len(state.edited),
                "edit_of_thread_parents": sum(1 for *_, t in state.edited.values() if t.replies),
                "delete": len(state.absent),
            },
        }


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def client_main() -> int:
    spec = json.loads(sys.stdin.readline())

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        commands: asyncio.Queue[str] = asyncio.Queue()

        def read_stdin() -> None:
            for line in sys.stdin:
                if loop.is_closed():
                    return
                with contextlib.suppress(RuntimeError):  # closed since
                    loop.call_soon_threadsafe(commands.put_nowait, line.strip())

        threading.Thread(target=read_stdin, daemon=True).start()
        return await EventClient(spec, commands).run()

    emit({"results": asyncio.run(main())})
    return 0


class Client:
    """The main process's handle on one client process: its lines, and `go` / `stop`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, spec: dict[str, Any]) -> Client:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--client",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            limit=1 << 26,  # the results line holds every latency
        )
        client = cls(proc)
        client.tell(json.dumps(spec))
        await client.expect("ready", timeout=180)
        return client

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write((line + "\n").encode())

    async def expect(self, key: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=timeout)
            if not line:
                raise RuntimeError(f"the event client exited before {key!r}")
            data = dict(json.loads(line))
            if key in data:
                return data

    async def finish(self) -> dict[str, Any]:
        results = (await self.expect("results", timeout=60))["results"]
        await self.proc.wait()
        return dict(results)


# --- the app side ------------------------------------------------------------------------------------


@dataclass
class Workspace:
    info: dict[str, Any]
    admin: str
    channels: list[tuple[str, str]]  # the bot's channels: (id, channel_type)
    users: list[str]  # people who post


async def describe_workspace(info: dict[str, Any]) -> Workspace:
    async def call(http: aiohttp.ClientSession, method: str, **data: str) -> dict[str, Any]:
        async with http.post(
            f"{info['url']}{method}",
            data=data,
            headers={"Authorization": f"Bearer {info['bot_token']}"},
        ) as resp:
            return dict(await resp.json())

    async with aiohttp.ClientSession() as http:
        convs = await call(
            http, "conversations.list", types="public_channel,private_channel", limit="999"
        )
        people = await call(http, "users.list", limit="999")
    channels = [
        (c["id"], "group" if c.get("is_private") else "channel")
        for c in convs["channels"]
        if c.get("is_member") and not c.get("is_archived")
    ]
    users = [
        u["id"]
        for u in people["members"]
        if not u.get("is_bot") and not u.get("deleted") and u["id"] != "USLACKBOT"
    ]
    return Workspace(info, await primary_owner(info), channels, users)


class Databases:
    """A fresh database for each app: a SQLite file, or a new database on one PostgreSQL."""

    def __init__(self, postgres_base: str | None) -> None:
        self.postgres_base = postgres_base
        self.count = 0

    async def fresh(self, workdir: Path) -> tuple[str, dict[str, Any]]:
        """`DATABASE_URL` and how the client reads it."""
        self.count += 1
        if self.postgres_base is None:
            path = workdir / "backfill.db"
            return f"sqlite+aiosqlite:///{path}", {"sqlite_path": str(path)}
        import asyncpg

        name = f"bench_mirror_{self.count}"
        dsn = self.postgres_base.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(f"{dsn}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"{self.postgres_base}/{name}", {"pg_dsn": f"{dsn}/{name}"}


@contextlib.asynccontextmanager
async def fresh_app(ws: Workspace, dbs: Databases) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    from app.runtime import running_app
    from app.settings import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    database_url, reader = await dbs.fresh(workdir)
    try:
        settings = load_settings(
            {
                "SLACK_BOT_TOKEN": ws.info["bot_token"],
                "SLACK_SIGNING_SECRET": ws.info["signing_secret"],
                "SLACK_API_URL": ws.info["url"],
                "PORT": str(free_port()),
                "DATABASE_URL": database_url,
                "CHROMA_PATH": str(workdir / "chroma"),
                "EMBEDDING": "hashing",
                "LOG_LEVEL": "WARNING",
            },
            env_file=None,
        )
        async with running_app(settings, rate_minute_seconds=60.0 / TIME_COMPRESSION) as rt:
            yield rt, reader
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def client_spec(
    args: argparse.Namespace,
    ws: Workspace,
    rt: Any,
    reader: dict[str, Any],
    phase: str,
) -> dict[str, Any]:
    return {
        "url": f"http://127.0.0.1:{rt.port}/slack/events",
        "secret": ws.info["signing_secret"],
        "team_id": rt.team_id,
        "channels": ws.channels,
        "users": ws.users,
        "rate": args.rate,
        "seconds": args.seconds,
        "seed": args.seed,
        "phase": phase,
        "poll_s": args.poll_ms / 1000,
        "cold": args.cold,
        "mix": args.mix,
        **reader,
    }


class Backlog:
    """Samples the inbox's backlog while events come in (each second), and times its drain."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def now(self) -> int:
        return int((await self.rt.deps.mirror.status(self.rt.team_id)).backlog)

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.samples.append(await self.now())

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def drain_time(self, cap: float) -> tuple[int, float | None, int, float]:
        """The backlog now, the seconds until it is 0 (None: not within `cap`), what was left
        then, and the drain rate (events a second)."""
        start = time.monotonic()
        at_end = left = await self.now()
        while left > 0 and time.monotonic() - start < cap:
            await asyncio.sleep(0.05)
            left = await self.now()
        took = time.monotonic() - start
        rate = (at_end - left) / took if took > 0 else 0.0
        return at_end, (took if left == 0 else None), left, rate


async def stream(
    args: argparse.Namespace,
    ws: Workspace,
    rt: Any,
    reader: dict[str, Any],
    phase: str,
    start_run: Any = None,
) -> dict[str, Any]:
    """One phase's event stream against the running app: start the client, start the run (if
    any) and let the client go at once, stop it at `--seconds` or when the run ends, then time
    the backlog's drain (and wait for the run)."""
    client = await Client.start(client_spec(args, ws, rt, reader, phase))
    backlog = Backlog(rt)
    applied_before = rt.deps.mirror.applied
    cpu0, wall0 = time.process_time(), time.monotonic()
    with LoopLag() as lag:
        run_row = await start_run() if start_run is not None else None
        client.tell("go")
        backlog.start()
        sent = asyncio.create_task(client.expect("sent_done", timeout=args.seconds + 120))
        run_done = None
        if run_row is not None:
            run_done = asyncio.create_task(wait_run(rt, run_row.job_run_id))
            await asyncio.wait({run_done, sent}, return_when=asyncio.FIRST_COMPLETED)
            if run_done.done():
                client.tell("stop")
        await sent
        cpu_share = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        backlog.stop()
        at_end, zero_after, left, rate = await backlog.drain_time(args.drain_cap)
    client.tell("finish")
    results = await client.finish()
    return {
        "client": results,
        "backlog_at_end": at_end,
        "backlog_zero_after_s": zero_after,
        "backlog_left": left,
        "drain_cap_s": args.drain_cap,
        "drain_rate": rate,
        "backlog_max": max([*backlog.samples, at_end]),
        "applied": rt.deps.mirror.applied - applied_before,
        "cpu_share": cpu_share,
        "loop_lag_p99_ms": percentile(lag.lags or [0.0], 99),
        "loop_lag_max_ms": max(lag.lags or [0.0]),
        "run": await run_done if run_done is not None else None,
    }


async def wait_run(rt: Any, job_run_id: int, limit: float = 1800) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        row = await rt.deps.runs.get(job_run_id)
        if row is not None and row.status != "running" and row.completed_at is not None:
            return row
        await asyncio.sleep(0.25)
    raise TimeoutError(f"run {job_run_id} still going after {limit} s")


def run_starter(rt: Any, ws: Workspace, days: int) -> Any:
    async def start() -> Any:
        return await rt.deps.runs.start_manual(rt.team_id, ws.admin, days=days)

    return start


# --- figures --------------------------------------------------------------------------------------------


def against(value: float | None, bound: float, unit: str, *, strict: bool = True) -> str:
    """`value (target < bound unit: ratio× the bound, met|missed)`; None or inf: not reached."""
    sign = "<" if strict else "≤"
    if value is None or value == float("inf"):
        return f"not reached (target {sign} {bound:g}{unit}: missed)"
    ok = value < bound if strict else value <= bound
    verdict = "met" if ok else "missed"
    return f"{value:.1f} (target {sign} {bound:g}{unit}: {value / bound:.2f}× the bound, {verdict})"


def latency_figures(
    name: str, seconds: list[float], unapplied: int, bound_ms: float | None = None
) -> dict[str, Any]:
    """p50, p99 and max in ms; a change not seen applied when the bench stopped waiting counts as
    infinitely late (so a p99 is never flattered by leaving out what did not arrive)."""
    ms = sorted(x * 1000 for x in seconds) + [float("inf")] * unapplied
    if not ms:
        return {}

    def fmt(v: float) -> str | float:
        return "not applied when the wait ended" if v == float("inf") else v

    p99 = percentile(ms, 99)
    return {
        f"{name}_p50_ms": fmt(percentile(ms, 50)),
        f"{name}_p99_ms": against(p99, bound_ms, " ms") if bound_ms else fmt(p99),
        f"{name}_max_ms": fmt(ms[-1]),
    }


def stream_figures(prefix: str, s: dict[str, Any]) -> dict[str, Any]:
    c = s["client"]
    acks = c["acks"] or [0.0]
    ok = int(c["statuses"].get("200", 0))
    kinds, seen, unseen = c["kinds"], c["seen"], c["unseen"]
    drained = s["backlog_zero_after_s"] is not None
    out: dict[str, Any] = {
        f"{prefix}_events_sent": c["sent"],
        f"{prefix}_events_seconds": c["sent_seconds"],
        f"{prefix}_events_rate_per_s": c["sent"] / max(c["sent_seconds"], 1e-9),
        f"{prefix}_events_mix": " ".join(f"{k}={kinds.get(k, 0)}" for k in KINDS),
        f"{prefix}_http_200": f"{ok} of {len(c['acks'])}",
        f"{prefix}_client_send_late_p99_ms": percentile(c["lateness"] or [0.0], 99),
        f"{prefix}_ack_p50_ms": statistics.median(acks),
        f"{prefix}_ack_p99_ms": against(percentile(acks, 99), ACK_BOUND_MS, " ms"),
        f"{prefix}_ack_max_ms": max(acks),
        **latency_figures(
            f"{prefix}_event_to_stored", seen["stored"], unseen["stored"], STORED_BOUND_S * 1000
        ),
        **latency_figures(f"{prefix}_edit_to_applied", seen["edit"], unseen["edit"]),
        **latency_figures(f"{prefix}_delete_to_applied", seen["delete"], unseen["delete"]),
        # With the inbox empty, a change still not seen is one the app lost.
        f"{prefix}_{'lost' if drained else 'unapplied_when_the_wait_ended'}": " ".join(
            f"{k}={v}" for k, v in unseen.items()
        ),
        f"{prefix}_backlog_max_sampled": s["backlog_max"],
        f"{prefix}_backlog_at_end": s["backlog_at_end"],
        f"{prefix}_backlog_zero_after_s": against(
            s["backlog_zero_after_s"], BACKLOG_BOUND_S, " s", strict=False
        )
        + ("" if drained else f"; {s['backlog_left']} left after {s['drain_cap_s']:g} s"),
        f"{prefix}_backlog_drain_rate_per_s": s["drain_rate"],
        f"{prefix}_mirror_events_applied": s["applied"],
        # This process's CPU (its event loop and the SQLite threads) while the events came in.
        f"{prefix}_app_process_cpu_cores": s["cpu_share"],
        f"{prefix}_app_loop_lag_p99_ms": s["loop_lag_p99_ms"],
        f"{prefix}_app_loop_lag_max_ms": s["loop_lag_max_ms"],
    }
    return out


def show(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float):
            print(f"{name}: {value:.2f}" if abs(value) < 10 else f"{name}: {value:.1f}", flush=True)
        else:
            print(f"{name}: {value}", flush=True)


def run_seconds(row: Any) -> float:
    return float((row.completed_at - row.started_at).total_seconds())


# --- the benchmark -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    parse_mix(args.mix)  # a bad --mix fails here, not in the client
    async with contextlib.AsyncExitStack() as stack:
        postgres_base = None
        if args.postgres:
            from tests.support.servers import postgres_server

            postgres_base = stack.enter_context(postgres_server())
        dbs = Databases(postgres_base)
        fake_proc, info = await start_fakeslack(args)

        async def stop_fake() -> None:
            fake_proc.terminate()
            await fake_proc.wait()

        stack.push_async_callback(stop_fake)
        ws = await describe_workspace(info)
        show(
            {
                "database": "postgresql" if args.postgres else "sqlite",
                "rate_per_s": args.rate,
                "intake_seconds": args.seconds,
                "bot_channels": len(ws.channels),
                "workspace_messages": args.messages,
                "run_days": args.days,
                "client_poll_ms": args.poll_ms,
            }
        )

        if "intake" in phases:
            async with fresh_app(ws, dbs) as (rt, reader):
                intake = await stream(args, ws, rt, reader, "intake")
            show(stream_figures("intake", intake))

        if "run" in phases:
            async with fresh_app(ws, dbs) as (rt, _reader):
                row = await run_starter(rt, ws, args.days)()
                alone = await wait_run(rt, row.job_run_id)
            show(
                {
                    "baseline_run_status": alone.status,
                    "baseline_run_messages_stored": alone.messages_collected,
                    "baseline_backfill_wall_s": run_seconds(alone),
                }
            )
            async with fresh_app(ws, dbs) as (rt, reader):
                loaded = await stream(
                    args, ws, rt, reader, "during_run", run_starter(rt, ws, args.days)
                )
            with_events = loaded["run"]
            show(stream_figures("during_run", loaded))
            wall = run_seconds(with_events)
            ratio = wall / run_seconds(alone)
            show(
                {
                    "during_run_run_status": with_events.status,
                    "during_run_run_messages_stored": with_events.messages_collected,
                    "during_run_share_of_run_with_events": min(
                        1.0, loaded["client"]["sent_seconds"] / wall
                    ),
                    "during_run_backfill_wall_s": wall,
                    "baseline_backfill_wall_s": run_seconds(alone),
                    "backfill_wall_ratio_with_vs_without_events": f"{ratio:.2f} (target ≤ "
                    f"{WALL_BOUND}: {ratio / WALL_BOUND:.2f}× the bound, "
                    f"{'met' if ratio <= WALL_BOUND else 'missed'})",
                }
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
