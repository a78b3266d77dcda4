"""The run lease's same-host rule, one `RunService` against rows whose owners are real processes
of this host (issue 12, point 2): a run whose owner is dead is resumed by the first sweep,
however fresh its heartbeat; one whose owner lives is never taken (until that owner dies); an
owner in a pid namespace out of sight counts as dead only at start; old owner names and other
hosts wait for the heartbeat rule. The staleness timeout is a minute, so nothing here is stale.
The OS-process test of the same is `test_same_host_restart.py`."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import fakeslack
from db import runs as repo
from db.migrate import migrate
from db.session import create_engine, make_sessionmaker
from fakeslack import FakeSlack
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.progress import RunResult
from scheduler.process_identity import OwnerName, ProcessMark, read_mark
from tests.scheduler.run_service_process import Node, open_node, shifted_clock

NOW = 1_750_000_000.0
CLOCK = shifted_clock(NOW)
HOST = socket.gethostname()
WS = fakeslack.generate(5, users=4, channels=2, messages=20, days=3, now=NOW)
USER = next(iter(WS.users))  # who hears about the runs
STALE_AFTER_S = 60.0  # never reached here: every takeover seen is the same-host rule's


class StubEngine:
    """Quacks like `BackfillEngine.run`: a few quick pages, no progress, no Slack; records the
    runs it started."""

    def __init__(self, pages: int = 4, page_s: float = 0.01) -> None:
        self.pages, self.page_s = pages, page_s
        self.started: list[int] = []

    async def run(
        self, request: RunRequest, *, progress: Any = None, cancel: asyncio.Event | None = None
    ) -> RunResult:
        self.started.append(request.job_run_id)
        result = RunResult()
        for _ in range(self.pages):
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
            await asyncio.sleep(self.page_s)
            result.messages_collected += 10
        return result


def owner_of(pid: int, mark: ProcessMark | None, host: str = HOST) -> str:
    return str(OwnerName(host, pid, "5eed5eed", mark))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def dead_owner(sleeper: subprocess.Popen[bytes]) -> str:
    owner = owner_of(sleeper.pid, read_mark(sleeper.pid))
    sleeper.kill()
    sleeper.wait()
    return owner


class Sweeps:
    """Counts the lease's takeover passes (each reads the runs owned on this host)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = repo.running_runs_owned_from

        async def counted(session: Any, prefix: str) -> list[Any]:
            found = await real(session, prefix)
            self.count += 1
            return found

        monkeypatch.setattr(repo, "running_runs_owned_from", counted)

    async def wait(self, n: int, timeout: float = 60) -> None:
        """Wait until `n` more passes have been made."""
        target, deadline = self.count + n, time.monotonic() + timeout
        while self.count < target:
            assert time.monotonic() < deadline, f"only {self.count} sweeps"
            await asyncio.sleep(0.02)


async def insert_running(url: str, workspace_id: str, owner: str) -> int:
    """A `running` row owned by `owner`, beaten just now."""
    engine = create_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await repo.ensure_workspace_row(session, workspace_id)
            run = await repo.insert_run(
                session,
                workspace_id=workspace_id,
                job_type="manual",
                owner=owner,
                now=CLOCK(),
                triggered_by=USER,
                days=3,
            )
        return run.job_run_id
    finally:
        await engine.dispose()


async def read_run(node: Node, job_run_id: int) -> Any:
    async with node.sessions() as session:
        return await repo.get_run(session, job_run_id)


async def started(stub: StubEngine) -> bool:
    return bool(stub.started)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def node_on(url: str, tmp_path: Path, stub: StubEngine) -> AsyncIterator[Node]:
    async with (
        FakeSlack(WS, rate_limits=False) as fake,
        open_node(
            url,
            tmp_path / "chroma",
            slack_url=fake.base_url,
            token=fake.bot_token,
            clock=CLOCK,
            engine=stub,
            migrate_first=False,
            stale_after_s=STALE_AFTER_S,
        ) as node,
    ):
        yield node


async def test_same_host_takeover_dead_owner_resumed_by_the_first_sweep(
    database_url: str, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    await migrate(database_url)
    run_id = await insert_running(database_url, "T0DEAD", dead_owner(sleeper))
    stub = StubEngine(pages=4, page_s=0.01)
    async with node_on(database_url, tmp_path, stub) as node:
        await until(lambda: started(stub), "the run to resume", 30)
        assert stub.started == [run_id]
        await node.service.wait_idle()
        done = await read_run(node, run_id)
        assert done.status == "success" and done.interruptions == 1 and done.owner is None


async def test_same_host_takeover_live_owner_kept_until_it_dies(
    database_url: str,
    tmp_path: Path,
    sleeper: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await migrate(database_url)
    live = owner_of(sleeper.pid, read_mark(sleeper.pid))
    run_id = await insert_running(database_url, "T0LIVE", live)
    sweeps = Sweeps(monkeypatch)
    stub = StubEngine(pages=4, page_s=0.01)
    async with node_on(database_url, tmp_path, stub) as node:
        await sweeps.wait(5)  # the start and four more: its owner lives, so it stays its own
        kept = await read_run(node, run_id)
        assert (kept.owner, kept.interruptions, stub.started) == (live, 0, [])
        sleeper.kill()
        sleeper.wait()
        # Any sweep, not only the first, takes a run whose owner is seen dead.
        await until(lambda: started(stub), "the run to resume", 30)
        await node.service.wait_idle()
        done = await read_run(node, run_id)
        assert done.status == "success" and done.interruptions == 1


async def test_same_host_takeover_out_of_sight_owner_taken_only_at_start(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = read_mark()
    if mine is None:
        pytest.skip("needs a Linux /proc")
    # The process a container ran before a restart in place: same host, same boot, started
    # earlier, in a pid namespace gone from sight (it may even have had our pid).
    before = ProcessMark(mine.boot_id, mine.start_ticks - 1, "1")
    await migrate(database_url)
    first = await insert_running(database_url, "T0SIGHT", owner_of(1, before, HOST))
    sweeps = Sweeps(monkeypatch)
    stub = StubEngine(pages=4, page_s=0.01)
    async with node_on(database_url, tmp_path, stub) as node:
        await until(lambda: started(stub), "the run to resume", 30)
        await node.service.wait_idle()
        assert (await read_run(node, first)).status == "success"
        # Once this process runs, such an owner may be a live sibling: the heartbeat rule.
        later = await insert_running(database_url, "T0SIGHT", owner_of(1, before, HOST))
        await sweeps.wait(5)
        kept = await read_run(node, later)
        assert (kept.status, kept.interruptions, stub.started) == ("running", 0, [first])


async def test_same_host_takeover_unjudged_owners_wait_for_the_heartbeat_rule(
    database_url: str,
    tmp_path: Path,
    sleeper: subprocess.Popen[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mark = read_mark(sleeper.pid)
    dead_owner(sleeper)  # every name below points at a dead process: only the names stop us
    await migrate(database_url)
    owners = {
        "T0OLDNAME": f"{HOST}:{sleeper.pid}:5eed5eed",  # written before owners had a mark
        "T0ELSEWHERE": owner_of(sleeper.pid, mark, host=f"other-{HOST}"),
        "T0REBOOTED": owner_of(
            sleeper.pid, ProcessMark("00000000-0000-4000-8000-000000000000", 1, "1")
        ),
    }
    ids = {ws: await insert_running(database_url, ws, owner) for ws, owner in owners.items()}
    sweeps = Sweeps(monkeypatch)
    stub = StubEngine(pages=4, page_s=0.01)
    async with node_on(database_url, tmp_path, stub) as node:
        await sweeps.wait(5)
        for ws, run_id in ids.items():
            kept = await read_run(node, run_id)
            assert (kept.owner, kept.interruptions) == (owners[ws], 0), ws
        assert stub.started == []
