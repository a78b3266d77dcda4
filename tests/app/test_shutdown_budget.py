"""The shutdown budget (issue 15, point 8), with real OS processes: `python -m app run` against
fakeslack, given `SHUTDOWN_TIMEOUT=5`, gets SIGTERM

- in the middle of a large run (fakeslack answering history and replies slowly, so the run would
  last minutes), in HTTP mode on SQLite and on PostgreSQL, and in Socket Mode;
- in the middle of a Chroma write that outlasts the budget (a proxy in front of a Chroma server
  holds an upsert, as a large batch on a slow embedding or a hung server would).

Each time the process exits with code 0 within the budget plus a few seconds (a contract bound,
not a performance figure), leaves no child process behind (the Chroma worker included), says
in one line what it cut short without a token in its output, and leaves the run `running` and
released (no owner, heartbeat at the epoch). A second process then resumes the run at once and
finishes it with every message of fakeslack's ground truth stored, once, in SQL and in Chroma.

Also here: the budget's own bounds, in-process, and the watchdog that ends a process whose event
loop does not get it out in time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

import fakeslack
from app.shutdown import ShutdownBudget
from db.models import BackfillJobRun, Message
from db.runs import RELEASED_HEARTBEAT
from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore
from fakeslack import FakeSlack
from fakeslack.outgoing import form_headers, slash_command_body
from tests.support.app_process import REPO, AppProcess, new_workdir, settings_for

BUDGET_S = 5  # SHUTDOWN_TIMEOUT given to the process that gets SIGTERM
MARGIN_S = 3.0  # the contract's slack: the interpreter's own start of exit, a loaded machine
RESUME_BOUND_S = 5.0  # a released run is resumed at the new process's first pass (stale: 20 s)
PATIENCE_S = 180.0  # anything else: generous, for a busy machine
DAYS = 10
T = TypeVar("T")


# -- outside views of the app: its database, its children, a Chroma server that stalls ---------


class Database:
    """Reads of the app's database from outside, on one pool of its own."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._engine = create_engine(url)
        self._sessions = make_sessionmaker(self._engine)

    def _read(self, stmt: Any) -> list[Any]:
        async def read() -> list[Any]:
            async with self._sessions() as session:
                return list((await session.execute(stmt)).all())

        return self._loop.run_until_complete(read())

    def runs(self) -> list[BackfillJobRun]:
        stmt = select(BackfillJobRun).order_by(BackfillJobRun.job_run_id)
        return [row[0] for row in self._read(stmt)]

    def run(self, job_run_id: int) -> BackfillJobRun:
        return next(r for r in self.runs() if r.job_run_id == job_run_id)

    def message_count(self) -> int:
        return int(self._read(select(func.count()).select_from(Message))[0][0])

    def message_keys(self, team_id: str) -> list[tuple[str, str]]:
        t = Message.__table__
        stmt = select(t.c.channel_id, t.c.ts).where(t.c.workspace_id == team_id)
        return [(r[0], r[1]) for r in self._read(stmt)]

    def close(self) -> None:
        self._loop.run_until_complete(self._engine.dispose())
        self._loop.close()


def children_of(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc): the Chroma worker, its fork server..."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class StallingProxy:
    """A TCP proxy in front of a Chroma server that, once armed, holds every request carrying
    `marker` (an upsert) after the first `let_through` of them, until released: a Chroma write
    that lasts as long as the test wants."""

    def __init__(self, upstream: str, marker: bytes = b"/upsert") -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._marker = marker
        self.let_through = 0
        self.armed = threading.Event()
        self.holding = threading.Event()  # a write is being held
        self._release = threading.Event()
        self._seen = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self._release.set()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(self._upstream)
            except OSError:
                return
            for src, dst, outbound in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, outbound), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, outbound: bool) -> None:
        try:
            while data := src.recv(65536):
                if outbound and self.armed.is_set() and self._marker in data and self._hold():
                    self.holding.set()
                    self._release.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _hold(self) -> bool:
        with self._lock:
            self._seen += 1
            return self._seen > self.let_through


# -- the scenario --------------------------------------------------------------------------------


def wait_for(check: Callable[[], T | None], what: str, apps: list[AppProcess]) -> T:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            outputs = "\n".join(f"--- app {a.proc.pid} ---\n{a.output()[-4000:]}" for a in apps)
            raise AssertionError(f"timed out after {PATIENCE_S} s waiting for {what}\n{outputs}")
        time.sleep(0.05)


class Scenario:
    """Two app processes, one after the other, on one database and one Chroma store."""

    def __init__(self, fake: FakeSlack, database_url: str, *, socket_mode: bool = False) -> None:
        self.fake = fake
        self.socket_mode = socket_mode
        self.database_url = database_url
        self.shared = new_workdir()
        self.chroma: dict[str, str] = {"CHROMA_PATH": str(self.shared / "chroma")}
        self.apps: list[AppProcess] = []
        self.workdirs: list[Path] = [self.shared]
        self.admin = next(
            uid for uid, u in fake.workspace.users.items() if u.get("is_primary_owner")
        )
        self.db = Database(database_url)

    def start(self, **settings: str) -> AppProcess:
        workdir = new_workdir()
        self.workdirs.append(workdir)
        values = settings_for(self.fake, workdir, socket_mode=self.socket_mode)
        values |= {"DATABASE_URL": self.database_url, "LOG_LEVEL": "INFO", **self.chroma}
        app = AppProcess(values | settings, workdir)
        self.apps.append(app)
        app.wait_healthy()
        if self.socket_mode:
            self.fake.wait_socket_connections_sync(1, timeout=30)
        return app

    def backfill(self, app: AppProcess, text: str) -> None:
        """`/backfill text` as the admin, over HTTP or Socket Mode as the app serves Slack."""
        fake = self.fake
        channel = next(c.id for c in fake.workspace.channels.values() if not c.is_im)
        response_url = fake.new_response_url(self.admin, channel)
        body = slash_command_body(
            text,
            team_id=fake.team_id,
            user_id=self.admin,
            channel_id=channel,
            response_url=response_url,
        )
        if self.socket_mode:
            from urllib.parse import parse_qsl

            ack = fake.deliver_sync("slash_commands", dict(parse_qsl(body)), timeout=10)
            assert ack["type"] == "slash_commands", ack
            return
        status, ack = app.post("/slack/events", body, form_headers(body, fake.signing_secret))
        assert status == 200, ack

    def running_run(self) -> BackfillJobRun:
        return wait_for(
            lambda: next((r for r in self.db.runs() if r.status == "running"), None),
            "the run to start",
            self.apps,
        )

    def sigterm(self, app: AppProcess) -> float:
        """SIGTERM `app`; the seconds it took to exit. Its children must go with it."""
        children = children_of(app.proc.pid)
        started = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        try:
            code = app.proc.wait(BUDGET_S + MARGIN_S + 60)  # a miss is measured, not hung on
        except subprocess.TimeoutExpired:
            app.proc.kill()
            raise AssertionError(f"no exit a minute past the budget\n{app.output()}") from None
        took = time.monotonic() - started
        print(f"exited {took:.2f} s after SIGTERM (SHUTDOWN_TIMEOUT={BUDGET_S})")  # -s shows it
        assert code == 0, f"exit code {code}\n{app.output()}"
        assert took <= BUDGET_S + MARGIN_S, f"exited {took:.1f} s after SIGTERM\n{app.output()}"
        deadline = time.monotonic() + MARGIN_S
        while (left := {pid for pid in children if alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"children left behind: {sorted(left)}\n{app.output()}"
        output = app.output()
        for secret in (self.fake.bot_token, self.fake.signing_secret, self.fake.app_token):
            assert secret not in output
        return took

    def assert_released(self, job_run_id: int) -> BackfillJobRun:
        run = self.db.run(job_run_id)
        assert (run.status, run.owner, run.heartbeat_at) == ("running", None, RELEASED_HEARTBEAT)
        return run

    def resume_and_finish(self, job_run_id: int, **settings: str) -> BackfillJobRun:
        """A second process takes the released run over at once (not after the 20 s a stale
        heartbeat takes) and finishes it."""
        app = self.start(**settings)
        ready = time.monotonic()
        wait_for(
            lambda: (run := self.db.run(job_run_id)).owner or run.status != "running",
            "the run to be taken over",
            self.apps,
        )
        taken_after = time.monotonic() - ready
        assert taken_after <= RESUME_BOUND_S, f"resumed {taken_after:.1f} s after /healthz"
        done = wait_for(
            lambda: (run := self.db.run(job_run_id)).status != "running" and run,
            "the resumed run to finish",
            self.apps,
        )
        assert app.stop() == 0, app.output()
        assert (done.status, done.error_message) == ("success", None), app.output()
        # A release is not an interruption: the run was let go of, not lost.
        assert done.interruptions == 0
        return done

    def assert_every_message_stored_once(self, done: BackfillJobRun, chroma_count: int) -> None:
        truth = fakeslack.ground_truth(self.fake.workspace, DAYS, now=done.started_at.timestamp())
        keys = self.db.message_keys(self.fake.team_id)
        assert len(keys) == len(set(keys)) and set(keys) == truth.must_store
        assert chroma_count == len(keys)  # the interrupted write was redone, once

    def close(self) -> None:
        for app in self.apps:
            app.stop()
        self.db.close()
        for workdir in self.workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def chroma_count(team_id: str, *, path: str | None = None, url: str | None = None) -> int:
    async def count() -> int:
        async with await ChromaVectorStore.open(path, url, "hashing") as store:
            return await store.count(team_id)

    return asyncio.run(count())


@pytest.fixture
def workspace() -> fakeslack.Workspace:
    # The apps' clock is the real clock, and so is the generated workspace's "now".
    return fakeslack.generate(43, users=12, channels=6, messages=1200, days=DAYS)


# -- (a) in the middle of a large run -----------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "socket_mode"),
    [("sqlite", False), ("postgresql", False), ("sqlite", True)],
    ids=["http-sqlite", "http-postgresql", "socket-sqlite"],
)
def test_shutdown_budget_mid_run_exits_in_time_and_the_run_resumes(
    workspace: fakeslack.Workspace,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    store: str,
    socket_mode: bool,
) -> None:
    database_url = (
        f"sqlite+aiosqlite:///{tmp_path}/backfill.db"
        if store == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    with FakeSlack(workspace, rate_limits=False) as fake:
        scenario = Scenario(fake, database_url, socket_mode=socket_mode)
        try:
            # Slow pages and threads: the run would last many times the budget.
            fake.faults.slow(3.0, method="conversations.history")
            fake.faults.slow(0.3, method="conversations.replies")
            first = scenario.start(SHUTDOWN_TIMEOUT=str(BUDGET_S))
            scenario.backfill(first, f"run days={DAYS}")
            run = scenario.running_run()
            wait_for(lambda: scenario.db.message_count() > 0, "some pages stored", scenario.apps)

            scenario.sigterm(first)
            said = [line for line in first.output().splitlines() if "cut short" in line]
            assert len(said) <= 1, said  # one line, if anything was
            scenario.assert_released(run.job_run_id)
            assert scenario.db.message_count() < len(
                fakeslack.ground_truth(fake.workspace, DAYS).must_store
            ), "the run ended before SIGTERM: make it slower"

            fake.faults.clear()
            done = scenario.resume_and_finish(run.job_run_id)
            stored = chroma_count(fake.team_id, path=scenario.chroma["CHROMA_PATH"])
            scenario.assert_every_message_stored_once(done, stored)
        finally:
            scenario.close()


# -- (b) in the middle of a Chroma write --------------------------------------------------------


@pytest.fixture
def stalling_chroma(chroma_url: str) -> Iterator[StallingProxy]:
    proxy = StallingProxy(chroma_url)
    try:
        yield proxy
    finally:
        proxy.release()


def test_shutdown_budget_mid_chroma_write_exits_in_time_and_the_write_is_redone(
    workspace: fakeslack.Workspace,
    tmp_path: Path,
    chroma_url: str,
    stalling_chroma: StallingProxy,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/backfill.db"
    with FakeSlack(workspace, rate_limits=False) as fake:
        # The Chroma server is shared by the session: this workspace's collection starts empty.
        asyncio.run(_drop_collection(chroma_url, fake.team_id))
        scenario = Scenario(fake, database_url)
        scenario.chroma = {"CHROMA_URL": stalling_chroma.url}
        try:
            # Pages one at a time, so a batch is written before the one that is held.
            fake.faults.slow(0.3, method="conversations.history")
            first = scenario.start(SHUTDOWN_TIMEOUT=str(BUDGET_S))
            stalling_chroma.let_through = 1
            stalling_chroma.armed.set()
            scenario.backfill(first, f"run days={DAYS}")
            run = scenario.running_run()
            wait_for(stalling_chroma.holding.is_set, "a Chroma write to be held", scenario.apps)
            time.sleep(0.5)  # well inside the write

            scenario.sigterm(first)
            cut = [line for line in first.output().splitlines() if "cut short" in line]
            assert len(cut) == 1 and "the vector store" in cut[0], first.output()
            scenario.assert_released(run.job_run_id)

            fake.faults.clear()
            scenario.chroma = {"CHROMA_URL": chroma_url}  # the server itself, nothing held
            done = scenario.resume_and_finish(run.job_run_id)
            stored = chroma_count(fake.team_id, url=chroma_url)
            scenario.assert_every_message_stored_once(done, stored)
        finally:
            scenario.close()


async def _drop_collection(url: str, team_id: str) -> None:
    async with await ChromaVectorStore.open(None, url, "hashing") as store:
        await store.delete_workspace(team_id)


# -- the budget itself ---------------------------------------------------------------------------


async def test_shutdown_budget_cuts_a_hung_step_and_names_it() -> None:
    budget = ShutdownBudget(2)
    order: list[str] = []
    hung = asyncio.Event()

    async def quick() -> None:
        order.append("quick")

    async def forever() -> None:
        order.append("forever")
        await hung.wait()

    async def runs() -> str:
        order.append("runs")
        return "run #7 released before a safe point"

    finish_runs = budget.at_begin("runs", runs)
    started = time.monotonic()
    budget.begin()
    await budget.step("the HTTP server", quick)()
    await budget.step("a hung store", forever, keep=0)()
    await finish_runs()
    took = time.monotonic() - started
    assert order == ["runs", "quick", "forever"]  # the runs began with the exit
    assert took < 2, took
    assert budget.cut_short == ["a hung store", "run #7 released before a safe point"]
    assert budget.left_behind == ["a hung store"]
    summary = budget.summary()
    assert summary is not None and summary.count("\n") == 0
    assert "a hung store" in summary and "SHUTDOWN_TIMEOUT=2s" in summary


async def test_shutdown_budget_keeps_time_for_the_steps_after() -> None:
    budget = ShutdownBudget(10, clock=lambda: 100.0)
    budget.start_clock()
    assert budget.closing_s == 1.0  # a tenth of the budget, at most 2 s
    assert budget.left() == 9.5  # less the exit's own margin
    assert budget.left(budget.closing_s) == 8.5
    assert ShutdownBudget(60).closing_s == 2.0


def test_shutdown_budget_arms_its_watchdog_only_on_a_signal() -> None:
    """The exit of an app run in a test's process, or of a start-up that failed, starts the clock
    but never arms what would end the whole process."""
    budget = ShutdownBudget(1)
    budget.start_clock()
    assert not budget.signalled


def test_shutdown_budget_watchdog_ends_a_stuck_process_with_code_0() -> None:
    """An event loop that never gets the process out (here: blocked outright) is ended by the
    watchdog when the budget is spent, exit code 0, with one line saying what was still going."""
    script = textwrap.dedent(
        """
        import asyncio, logging, sys, time
        from app.shutdown import ShutdownBudget
        logging.basicConfig(stream=sys.stdout, level=logging.INFO)

        async def main():
            budget = ShutdownBudget(1)
            budget.on_signal()  # as SIGTERM does

            async def stuck():
                time.sleep(60)  # a blocking call: the loop itself is stuck

            await budget.step("a stuck close", stuck)()

        asyncio.run(main())
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert took < 1 + MARGIN_S + 5, took  # the interpreter's start-up included
    lines = [line for line in done.stdout.splitlines() if "budget spent" in line]
    assert len(lines) == 1 and "a stuck close (still going)" in lines[0], done.stdout
