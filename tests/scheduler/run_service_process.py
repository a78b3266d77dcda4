"""Harness of the run-lifecycle tests, and a runner script for the multi-process ones.

As a module: `open_node(...)` builds what one app process holds (SQL engine, embedded Chroma
with the hashing embedding, the real gateway and engine on a fakeslack URL, a Notifier on an
`AsyncWebClient`, a `RunService`), and `StubEngine` stands in for the engine where only the
lifecycle matters.

As a script (`python tests/scheduler/run_service_process.py --database-url ... --slack-url ...`):
one app process. It migrates, starts a RunService, optionally fires a schedule or starts a
manual run, prints one JSON line per run event on stdout, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.migrate import migrate
from db.records import Progress
from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import INTERNAL
from scheduler.backfill.progress import RunResult
from scheduler.notify import Notifier
from scheduler.runs import RunEvent, RunService
from scheduler.schedules import ScheduleService

# Fast pacing against an unthrottled fakeslack, and small pages so runs span many pages.
FAST = dataclasses.replace(INTERNAL.scaled(0.05), history_page_size=25, replies_page_size=5)


def shifted_clock(at: float) -> Callable[[], datetime]:
    """A real, moving clock that reads `at` (epoch seconds) now: runs see the generated
    workspace's 'now' while heartbeats still age in real time. Processes given the same
    `offset` agree."""
    offset = at - time.time()
    return clock_with_offset(offset)


def clock_with_offset(offset: float) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(time.time() + offset, UTC)


@dataclass
class Node:
    """One 'app process'."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    vectors: ChromaVectorStore
    gateway: SlackGateway | None
    client: AsyncWebClient
    notifier: Notifier
    schedules: ScheduleService
    service: RunService
    events: list[RunEvent] = field(default_factory=list)


class StubEngine:
    """Quacks like `BackfillEngine.run`: `pages` pages of `page_s` seconds each, stopping at a
    page boundary when `cancel` is set. Records the order runs started in."""

    def __init__(
        self,
        pages: int = 5,
        page_s: float = 0.05,
        error: str | None = None,
        error_kind: str | None = None,
    ) -> None:
        self.pages, self.page_s = pages, page_s
        self.error, self.error_kind = error, error_kind
        self.started: list[int] = []
        self.pages_after_cancel: dict[int, int] = {}
        self.running = 0
        self.max_running = 0

    async def run(
        self, request: RunRequest, *, progress: Any = None, cancel: asyncio.Event | None = None
    ) -> RunResult:
        self.started.append(request.job_run_id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        result = RunResult()
        try:
            for page in range(self.pages):
                if cancel is not None and cancel.is_set():
                    result.cancelled = True
                    break
                await asyncio.sleep(self.page_s)
                result.messages_collected += 10
                if progress is not None:
                    await progress(
                        Progress(
                            channels_done=page // 2,
                            channels_total=self.pages // 2,
                            messages_stored=result.messages_collected,
                            messages_written=result.messages_collected,
                            current_channel="general",
                            calls=page,
                        )
                    )
            result.channels_processed = self.pages // 2
            if self.error and not result.cancelled:
                result.error, result.error_kind = self.error, self.error_kind
            return result
        finally:
            self.running -= 1


@asynccontextmanager
async def open_node(
    database_url: str,
    chroma_path: Path,
    *,
    slack_url: str,
    token: str,
    clock: Callable[[], datetime],
    engine: Any = None,
    progress_interval_s: float = 3.0,
    gateway_attempts: int = 6,
    migrate_first: bool = True,
    **service_kw: Any,
) -> AsyncIterator[Node]:
    """One app process's objects; the RunService is started, and stopped (gracefully) on exit
    unless the test already stopped or crashed it."""
    if migrate_first:
        await migrate(database_url)
    sql = create_engine(database_url)
    sessions = make_sessionmaker(sql)
    vectors = await ChromaVectorStore.open(str(chroma_path), None, "hashing")
    gateway: SlackGateway | None = None
    if engine is None:
        gateway = SlackGateway(
            token,
            base_url=slack_url,
            profile=FAST,
            backoff_base=0.02,
            max_attempts=gateway_attempts,
        )
        engine = BackfillEngine(gateway, sessions, vectors, EngineConfig())
    client = AsyncWebClient(token=token, base_url=slack_url)
    notifier = Notifier(client, progress_interval_s=progress_interval_s, clock=clock)
    scheduler = AsyncIOScheduler(timezone=UTC)  # never started: tests fire by hand

    async def on_fire(workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        await service.on_schedule_fire(workspace_id, schedule_id, fire_time)

    schedules = ScheduleService(sessions, scheduler, on_fire, clock=clock)
    service_kw.setdefault("heartbeat_s", 0.3)
    service_kw.setdefault("stale_after_s", 1.5)
    service_kw.setdefault("retry_backoff", (0.2, 0.4))
    service = RunService(
        sessions=sessions,
        engine=engine,
        notifier=notifier,
        schedules=schedules,
        clock=clock,
        **service_kw,
    )
    node = Node(sql, sessions, vectors, gateway, client, notifier, schedules, service)
    service.add_listener(node.events.append)
    await service.start()
    try:
        yield node
    finally:
        await schedules.close()  # a no-op unless a test started its scheduler
        await service.stop()
        await vectors.close()
        await sql.dispose()


async def crash(service: RunService) -> None:
    """Stop `service` the way SIGKILL would: tasks die, nothing is written (no release)."""
    service._stopping = True
    await service._pulse.stop()
    for job in service._jobs.values():
        job.lost = True
    for task in service._workers:
        task.cancel()
    await asyncio.gather(*service._workers, return_exceptions=True)
    service._workers = []
    service._jobs.clear()
    service._started = False


# -- the runner script ------------------------------------------------------------------------


def _row(event: RunEvent) -> dict[str, Any]:
    run = event.run
    return {
        "kind": event.kind,
        "job_run_id": run.job_run_id if run else None,
        "status": run.status if run else None,
        "messages": event.progress.messages_stored if event.progress else None,
    }


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    clock = clock_with_offset(args.offset)
    async with open_node(
        args.database_url,
        Path(args.chroma),
        slack_url=args.slack_url,
        token=args.token,
        clock=clock,
        heartbeat_s=args.heartbeat,
        stale_after_s=args.stale_after,
        migrate_first=True,
    ) as node:
        node.service.add_listener(
            lambda e: print(json.dumps(_row(e)), flush=True) if e.kind != "progress" else None
        )
        out: dict[str, Any] = {"kind": "ready"}
        if args.fire_time is not None:
            fire = datetime.fromtimestamp(args.fire_time, UTC)
            if args.start_at:
                await asyncio.sleep(max(0.0, args.start_at - time.time()))
            row = await node.service.on_schedule_fire(args.workspace, args.schedule_id, fire)
            out = {"kind": "fired", "job_run_id": row.job_run_id if row else None}
        elif args.manual_user:
            row = await node.service.start_manual(args.workspace, args.manual_user, days=args.days)
            out = {"kind": "manual", "job_run_id": row.job_run_id}
        print(json.dumps(out), flush=True)
        if args.until_finished:
            while not any(e.kind == "finished" for e in node.events):
                await asyncio.sleep(0.05)
            await node.service.wait_idle(timeout=600)
        elif args.exit_when_idle:
            await node.service.wait_idle(timeout=600)
        else:
            await stop.wait()
    print(json.dumps({"kind": "stopped"}), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--database-url", required=True)
    p.add_argument("--slack-url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--chroma", required=True)
    p.add_argument("--offset", type=float, default=0.0)
    p.add_argument("--heartbeat", type=float, default=0.5)
    p.add_argument("--stale-after", type=float, default=3.0)
    p.add_argument("--schedule-id", type=int, default=0)
    p.add_argument("--fire-time", type=float, default=None)
    p.add_argument("--start-at", type=float, default=None, help="wall time to fire at (sync)")
    p.add_argument("--manual-user", default=None)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--exit-when-idle", action="store_true")
    p.add_argument("--until-finished", action="store_true", help="exit once a run has ended here")
    asyncio.run(_main(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
