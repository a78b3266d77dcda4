"""Many installed workspaces whose schedules all fire at the same minute (issue 14), served by
several real app processes on one PostgreSQL, against the same with one process.

    .venv/bin/python bench/bench_workspaces.py [--workspaces 1000] [--processes 3]
        [--run-concurrency 2] [--messages 60] [--lead 60] [--timeout 1800] [--seed 14]
        [--quiet-flag /tmp/bench_quiet] [--chroma server|embedded] [--slack-latency-ms 100]
        [--keep-logs DIR]

What is measured, once with 1 process (the baseline) and once with `--processes` processes, each
phase from scratch: its own throwaway PostgreSQL (`tests/support/servers.py`), its own Chroma
server (`CHROMA_URL`, as the design's scale-out has one for all processes), its own fakeslack
serving `--workspaces` generated workspaces of one app (7 channels, the generator's minimum, 6
people and about `--messages` messages each over the last 7 days: small data), so no phase starts
from the other's checkpoints, joined channels or stored documents.

Setup (not timed): the database is migrated; each workspace is installed (fakeslack's
`oauth.v2.access` answer stored as an encrypted `installations` row, as the OAuth redirect does,
`tests/support/installs.py`); each gets one schedule (`ScheduleService.save`, the path the modal
and the slash command take), all with the same cron in UTC, `M H * * *`, for the first whole
minute at least `--lead` seconds ahead: every process loads the table when it starts, so all of
them hold every job before the fire. Then the processes start (`python -m app run` in
multi-workspace mode: `SLACK_CLIENT_ID`/`SECRET`, `TOKEN_ENCRYPTION_KEY`, no bot token,
`RUN_CONCURRENCY=--run-concurrency`, `EMBEDDING=hashing`); a phase whose processes are not all
healthy (schedules loaded) before the fire minute is reported as such and not measured.

From the fire minute T: every process fires every schedule and, when it has a free run slot
(else it waits for one), tries to claim it (a unique (schedule_id, fire_time) row); the winner
runs it. The benchmark polls the runs table until every schedule's run for T has ended (or
`--timeout`), then reads:
- fires: schedules whose fire at T was claimed (a run row with that schedule and fire time);
- runs: those runs that ended, and how (success, failed, cancelled);
- duplicates: extra runs of one (schedule, fire time) in the table, plus workspaces where Slack
  saw more than one run: a run DMs its summary to the schedule's creator once, so more than one
  summary DM (`chat.postMessage` in fakeslack's call log) is a run made twice. Must be 0;
- missed: workspaces with no run for T, or whose run did not end in success. Must be 0;
- last run ended: the latest `completed_at` minus T (and the last summary DM Slack received);
- each process's share of the runs (a run's owner is cleared when it ends: the share comes
  from each process's log, which names every run it ended, at the default `LOG_LEVEL=INFO`);
- peak database connections per process: `pg_stat_activity` sampled every 0.2 s, each backend
  attributed to a process by its client port (the process that holds that TCP socket, from
  /proc); open connections (idle ones in the pools included) and those active at that instant.
`--chroma embedded` (a diagnostic, not the design's deployment: it splits the documents between
processes) gives each process its own embedded store instead of the shared server, to tell how
much of the time the one Chroma server accounts for.
The ratio is the baseline's time to the last run's end over the multi-process one; target: at
least 2.5x faster with 3 processes.

fakeslack's rate limits are on, at Slack's real minute (no time compression; `python -m app run`
paces with the real minute too): Slack's tiers are per workspace per method, and a small
workspace's run makes a few calls of each method, well within a minute's allowance, so the app's
pacer never waits and Slack never answers 429, as with real small workspaces; the limits are there
to show it (`ratelimited` counts fakeslack's 429s, expected 0).

Slack answers each Web API call over the internet; fakeslack answers on loopback in about a
millisecond. `--slack-latency-ms` (default 100) holds every answer that long (fakeslack's `delay`
fault, armed once setup is done), so a run spends its time as a real one does: mostly waiting
for Slack, which is what more processes (more run slots) overlap. With 0 the benchmark measures
how fast this machine's cores do the rest (the apps, PostgreSQL, the one Chroma server and
fakeslack all share them), not how the runs spread over processes.

fakeslack runs in a thread of this process, next to the sampler; on a small machine the apps,
PostgreSQL, Chroma and fakeslack share the cores, so the CPU time of each side is printed too
(apps: /proc of the app processes; this process: fakeslack and the sampler), with the machine's
CPU use over the phase. Before each phase of more than 50 workspaces the benchmark waits while
`--quiet-flag` exists or another benchmark (bench_search) runs, and prints the load it ran under.
Prints `name: value` lines; a figure with a target gives its bound, the ratio and met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import fakeslack
from db.migrate import migrate
from db.session import create_engine, make_sessionmaker
from db.token_crypto import TokenCipher, generate_key
from scheduler.cron import ScheduleSpec
from scheduler.schedules import ScheduleService
from tests.support.app_process import AppProcess, new_workdir
from tests.support.installs import install
from tests.support.servers import chroma_server, postgres_server

SPEEDUP_TARGET = 2.5
SAMPLE_S = 0.2
POLL_S = 0.5
SETTLE_S = 5.0  # after the last run ended: a late duplicate would show by then
QUIET_POLL_S = 30.0
QUIET_ABOVE = 50  # workspaces: smaller runs go ahead whatever else runs
DAYS = 7
FIRE_RAN = re.compile(r'Running job "backfill T')  # APScheduler runs a schedule's job
RUN_ENDED = re.compile(r"run #(\d+) (?:success|failed|cancelled):")


def show(name: str, value: Any) -> None:
    if isinstance(value, float):
        value = f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def load_now() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def wait_quiet(flag: Path, workspaces: int) -> None:
    """Hold a large phase while another benchmark measures (`flag` exists, bench_search runs)."""
    if workspaces <= QUIET_ABOVE:
        return
    said = False
    while True:
        other = subprocess.run(
            ["pgrep", "-f", "bench_search"], capture_output=True, text=True, check=False
        ).stdout.split()
        if not flag.exists() and not other:
            return
        if not said:
            print(f"# waiting: {flag} exists or bench_search runs", flush=True)
            said = True
        time.sleep(QUIET_POLL_S)


# --- CPU and sockets from /proc ----------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and its descendants: their own, live ones read now, and those of
    children already gone (a parent's cutime/cstime holds the children it reaped)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat(int(name))[1]), []).append(int(name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(pid)
            total += sum(int(x) for x in fields[11:15]) / TICK
            todo += children.get(pid, [])
    return total


def find_process(*words: str) -> int | None:
    """The first process whose command line holds every one of `words`."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if all(w in cmd.split() for w in words):
                    return int(name)
    return None


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return float(sum(parts) - idle), float(sum(parts))


class CpuMeter:
    """CPU seconds spent between `start` and `stop` by each app process, PostgreSQL (all its
    backends), the Chroma server and this process (fakeslack's thread and the sampler), and how
    busy the whole machine was meanwhile."""

    def __init__(self, apps: list[int], postgres: int | None, chroma: int | None) -> None:
        self.roots = {f"p{i + 1}": pid for i, pid in enumerate(apps)}
        if postgres is not None:
            self.roots["postgres"] = postgres
        if chroma is not None:
            self.roots["chroma"] = chroma
        self.spent: dict[str, float] = {}
        self.busy = 0.0
        self.wall = 0.0
        self._start: tuple[dict[str, float], float, tuple[float, float], float] | None = None

    def _read(self) -> tuple[dict[str, float], float, tuple[float, float], float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return (
            {name: tree_cpu(pid) for name, pid in self.roots.items()},
            usage.ru_utime + usage.ru_stime,
            machine_cpu(),
            time.monotonic(),
        )

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> None:
        if self._start is None or self.spent:
            return
        trees0, own0, (busy0, total0), wall0 = self._start
        trees1, own1, (busy1, total1), wall1 = self._read()
        self.spent = {name: trees1[name] - trees0[name] for name in trees0}
        self.spent["this process (fakeslack)"] = own1 - own0
        self.busy = (busy1 - busy0) / max(1.0, total1 - total0)
        self.wall = wall1 - wall0


def client_sockets(server_port: int) -> dict[int, int]:
    """Local port -> socket inode of every TCP connection to `server_port` on this machine."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if int(cols[2].rsplit(":", 1)[1], 16) == server_port:
                    found[int(cols[1].rsplit(":", 1)[1], 16)] = int(cols[9])
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    return inodes


class ConnectionSampler:
    """Samples `pg_stat_activity` and attributes each client backend to an app process by the
    client port of its connection (the process holding that socket); keeps the peaks."""

    def __init__(self, conn: asyncpg.Connection, pg_port: int, pids: list[int]) -> None:
        self.conn, self.pg_port, self.pids = conn, pg_port, pids
        self.owner: dict[tuple[int, int], int | None] = {}  # (backend pid, client port) -> pid
        self.peak_open: Counter[int | None] = Counter()
        self.peak_active: Counter[int | None] = Counter()
        self.peak_total = 0
        self.samples = 0

    def _resolve(self, keys: list[tuple[int, int]]) -> None:
        ports = client_sockets(self.pg_port)
        held = {pid: socket_inodes(pid) for pid in self.pids}
        for key in keys:
            inode = ports.get(key[1])
            who = next((p for p, s in held.items() if inode in s), None)
            if who is not None:  # else closing (its socket gone already), or not ours
                self.owner[key] = who

    async def sample(self) -> None:
        rows = await self.conn.fetch(
            "SELECT pid, client_port, state FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        keys = [(r["pid"], r["client_port"] or 0) for r in rows]
        unknown = [k for k in keys if k not in self.owner]
        if unknown:
            self._resolve(unknown)
        opened: Counter[int | None] = Counter()
        active: Counter[int | None] = Counter()
        for key, row in zip(keys, rows, strict=True):
            who = self.owner.get(key)
            opened[who] += 1
            if row["state"] not in (None, "idle"):
                active[who] += 1
        for who, n in opened.items():
            self.peak_open[who] = max(self.peak_open[who], n)
        for who, n in active.items():
            self.peak_active[who] = max(self.peak_active[who], n)
        self.peak_total = max(self.peak_total, len(rows))
        self.samples += 1


# --- a phase -----------------------------------------------------------------------------------


@dataclass
class Phase:
    processes: int
    ready: bool = False
    fire: datetime | None = None
    setup_s: float = 0.0
    ready_before_s: float = 0.0  # how long before the fire minute the last process was healthy
    schedules: int = 0
    fires: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    duplicate_rows: int = 0
    duplicate_dms: int = 0
    missed: int = 0
    last_end_s: float | None = None
    last_dm_s: float | None = None
    first_start_s: float | None = None
    last_start_s: float | None = None
    timed_out: bool = False
    shares: list[int] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)  # fires each process's APScheduler ran
    unowned: int = 0
    peak_open: list[int] = field(default_factory=list)
    peak_active: list[int] = field(default_factory=list)
    peak_total: int = 0
    other_open: int = 0
    samples: int = 0
    cpu: CpuMeter | None = None
    ratelimited: int = 0
    slack_calls: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)
    load: str = ""  # at the end
    load_at_fire: str = ""


def primary_owner(ws: fakeslack.Workspace) -> str:
    return next(
        u["id"]
        for u in ws.users.values()
        if u.get("is_primary_owner") and not u.get("is_bot") and not u.get("deleted")
    )


def fire_minute(lead_s: float) -> datetime:
    at = datetime.now(UTC) + timedelta(seconds=lead_s)
    return at.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def prepare(
    url: str,
    fake: fakeslack.FakeSlack,
    workspaces: list[fakeslack.Workspace],
    key: str,
    lead_s: float,
) -> datetime:
    """Migrate, install every workspace, give each the same schedule; the fire minute."""
    await migrate(url)
    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    cipher = TokenCipher(key)
    try:
        for ws in workspaces:
            await install(fake, sessions, cipher, ws.team_id)
        fire = fire_minute(lead_s)
        spec = ScheduleSpec(
            cron_expression=f"{fire.minute} {fire.hour} * * *",
            timezone="UTC",
            days_to_backfill=DAYS,
        )

        async def on_fire(*_: object) -> None:  # this service never fires: not started
            raise AssertionError("the benchmark's own scheduler fired")

        service = ScheduleService(sessions, AsyncIOScheduler(timezone=UTC), on_fire)
        for ws in workspaces:
            row = await service.save(
                ws.team_id, spec, primary_owner(ws), workspace_name=ws.team_name
            )
            if row.next_run_at != fire:
                raise AssertionError(f"schedule of {ws.team_id} fires at {row.next_run_at}")
        return fire
    finally:
        await engine.dispose()


def app_settings(
    fake: fakeslack.FakeSlack,
    config: fakeslack.OAuthConfig,
    key: str,
    url: str,
    chroma: str,
    concurrency: int,
) -> dict[str, str]:
    return {
        "SLACK_CLIENT_ID": config.client_id,
        "SLACK_CLIENT_SECRET": config.client_secret,
        "TOKEN_ENCRYPTION_KEY": key,
        "SLACK_SIGNING_SECRET": fake.signing_secret,
        "SLACK_API_URL": fake.base_url,
        "DATABASE_URL": url,
        "EMBEDDING": "hashing",
        "LOG_LEVEL": "INFO",  # each run's end is logged: the share of each process
        "RUN_CONCURRENCY": str(concurrency),
    } | ({"CHROMA_URL": chroma} if chroma else {})


@contextlib.contextmanager
def app_processes(
    settings: dict[str, str], count: int, keep: Path | None
) -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    workdirs: list[Path] = []
    try:
        for _ in range(count):
            workdir = new_workdir()
            workdirs.append(workdir)
            started.append(AppProcess(dict(settings), workdir))
        yield started
    finally:
        for n, app in enumerate(started, 1):
            app.stop()
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(app.output_path, keep / f"{count}-processes-p{n}.log")
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


async def watch(
    phase: Phase,
    url: str,
    pg_port: int,
    apps: list[AppProcess],
    fire: datetime,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Sample connections and poll the runs of `fire` until every schedule's run has ended (or
    `timeout_s` after the fire); the fire's run rows."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        sampler = ConnectionSampler(conn, pg_port, [a.proc.pid for a in apps])
        query = (
            "SELECT job_run_id, workspace_id, schedule_id, status, started_at, "
            "completed_at, error_message, messages_collected FROM backfill_job_runs "
            "WHERE fire_time = $1"
        )
        deadline = fire.timestamp() + timeout_s
        next_poll = 0.0
        ended_at: float | None = None
        while True:
            await sampler.sample()
            now = time.time()
            if now >= next_poll:
                next_poll = now + POLL_S
                rows = await conn.fetch(query, fire)
                ended = {r["schedule_id"] for r in rows if r["status"] != "running"}
                running = sum(1 for r in rows if r["status"] == "running")
                if len(ended) >= phase.schedules and not running:
                    if ended_at is None and phase.cpu is not None:
                        phase.cpu.stop()  # the work is done: the settling wait is not counted
                    ended_at = ended_at or now
                    if now - ended_at >= SETTLE_S:
                        break
                if now > deadline:
                    phase.timed_out = True
                    break
                for app in apps:
                    if app.proc.poll() is not None:
                        phase.errors.append(f"app {app.proc.pid} exited {app.proc.returncode}")
                if phase.errors:
                    break
            await asyncio.sleep(SAMPLE_S)
        rows = [dict(r) for r in await conn.fetch(query, fire)]
        pids = [a.proc.pid for a in apps]
        phase.peak_open = [sampler.peak_open[p] for p in pids]
        phase.peak_active = [sampler.peak_active[p] for p in pids]
        phase.other_open = sampler.peak_open[None]
        phase.peak_total = sampler.peak_total
        phase.samples = sampler.samples
        phase.schedules = await conn.fetchval("SELECT count(*) FROM backfill_schedules")
        phase.messages = await conn.fetchval("SELECT count(*) FROM messages")
        return rows
    finally:
        await conn.close()


def tally(
    phase: Phase,
    rows: list[dict[str, Any]],
    fire: datetime,
    fake: fakeslack.FakeSlack,
    workspaces: list[fakeslack.Workspace],
    outputs: list[str],
) -> None:
    t0 = fire.timestamp()
    per_fire = Counter(r["schedule_id"] for r in rows)
    phase.fires = len(per_fire)
    phase.duplicate_rows = sum(n - 1 for n in per_fire.values())
    phase.statuses = Counter(r["status"] for r in rows)
    succeeded = {r["workspace_id"] for r in rows if r["status"] == "success"}
    phase.missed = sum(1 for ws in workspaces if ws.team_id not in succeeded)
    ends = [r["completed_at"].timestamp() for r in rows if r["completed_at"] is not None]
    starts = [r["started_at"].timestamp() for r in rows if r["started_at"] is not None]
    phase.last_end_s = max(ends) - t0 if ends else None
    phase.first_start_s = min(starts) - t0 if starts else None
    phase.last_start_s = max(starts) - t0 if starts else None
    # A run's owner is cleared when it ends: each process's log names the runs it ended.
    ours = {r["job_run_id"] for r in rows}
    ended_by = [{int(n) for n in RUN_ENDED.findall(out)} & ours for out in outputs]
    phase.shares = [len(ids) for ids in ended_by]
    phase.unowned = len(ours - set().union(*ended_by))
    phase.fired = [len(FIRE_RAN.findall(out)) for out in outputs]
    dm_times: list[float] = []
    for ws in workspaces:
        team = fake.team(ws.team_id)
        creator = primary_owner(ws)
        dms = [c for c in team.calls_of("chat.postMessage") if c.args.get("channel") == creator]
        phase.duplicate_dms += max(0, len(dms) - 1)
        dm_times += [c.t_wall for c in dms]
        phase.slack_calls += len(team.calls)
        phase.ratelimited += sum(c.get("ratelimited", 0) for c in team.counters.values())
    phase.last_dm_s = max(dm_times) - t0 if dm_times else None
    for r in rows:
        if r["status"] != "success" and len(phase.errors) < 5:
            phase.errors.append(f"run #{r['job_run_id']} {r['status']}: {r['error_message']}")


def run_phase(args: argparse.Namespace, processes: int) -> Phase:
    phase = Phase(processes)
    wait_quiet(Path(args.quiet_flag), args.workspaces)
    started = time.monotonic()
    workspaces = fakeslack.generate_workspaces(
        args.workspaces,
        args.seed,
        users=6,
        channels=7,
        messages=args.messages,
        days=DAYS,
        now=time.time(),
    )
    config = fakeslack.OAuthConfig()
    key = generate_key()
    with (
        postgres_server() as base,
        chroma_server() as chroma,
        fakeslack.FakeSlack.serving(workspaces, rate_limits=True, oauth=config) as fake,
    ):
        url = f"{base}/postgres"
        pg_port = int(base.rsplit(":", 1)[1])
        fire = asyncio.run(prepare(url, fake, workspaces, key, args.lead))
        if args.slack_latency_ms > 0:
            fake.faults.slow(args.slack_latency_ms / 1000)  # every later call, until the end
        phase.fire = fire
        phase.schedules = len(workspaces)
        shared = chroma if args.chroma == "server" else ""  # embedded: one per process
        settings = app_settings(fake, config, key, url, shared, args.run_concurrency)
        keep = Path(args.keep_logs) if args.keep_logs else None
        with app_processes(settings, processes, keep) as apps:
            for app in apps:
                app.wait_healthy(timeout=max(120.0, fire.timestamp() - time.time() + 60))
            phase.setup_s = time.monotonic() - started
            phase.ready_before_s = fire.timestamp() - time.time()
            if phase.ready_before_s <= 1.0:
                return phase  # not measured: the fire came before every process held its jobs
            phase.ready = True
            time.sleep(max(0.0, fire.timestamp() - time.time() - 0.5))
            phase.cpu = CpuMeter(
                [a.proc.pid for a in apps],
                find_process("-p", str(pg_port)),
                find_process("run", "--port", chroma.rsplit(":", 1)[1]),
            )
            phase.load_at_fire = load_now()
            phase.cpu.start()
            rows = asyncio.run(watch(phase, url, pg_port, apps, fire, args.timeout))
            phase.cpu.stop()
            phase.load = load_now()
            tally(phase, rows, fire, fake, workspaces, [a.output() for a in apps])
            if phase.errors:
                for app in apps:
                    tail = app.output()[-3000:]
                    if tail.strip():
                        print(f"# app {app.proc.pid} output:\n{tail}", file=sys.stderr)
    return phase


def report(label: str, phase: Phase) -> None:
    p = f"{label}: "
    assert phase.fire is not None
    show(
        p + "fire minute",
        f"{phase.fire:%H:%M} UTC (setup {phase.setup_s:.0f} s, processes "
        f"healthy {phase.ready_before_s:.0f} s before it)",
    )
    if not phase.ready:
        show(p + "not measured", "a process became healthy after the fire minute: raise --lead")
        return
    show(p + "schedules", phase.schedules)
    show(p + "fires", f"{phase.fires} claimed (run rows of (schedule, fire time))")
    ended = sum(n for s, n in phase.statuses.items() if s != "running")
    detail = ", ".join(f"{s} {n}" for s, n in sorted(phase.statuses.items()))
    show(p + "runs", f"{ended} ended ({detail or 'none'})")
    show(
        p + "duplicates",
        f"{phase.duplicate_rows + phase.duplicate_dms} (rows "
        f"{phase.duplicate_rows}, workspaces with a second summary DM {phase.duplicate_dms})",
    )
    show(p + "missed", phase.missed)
    fired = ", ".join(f"p{i + 1} {n}" for i, n in enumerate(phase.fired))
    show(p + "fires handled per process (each tries to claim)", fired)
    show(
        p + "last run ended after",
        fmt_s(phase.last_end_s) + (" (timed out)" if phase.timed_out else ""),
    )
    show(p + "last summary DM reached Slack after", fmt_s(phase.last_dm_s))
    show(
        p + "fires claimed",
        f"first {fmt_s(phase.first_start_s)}, last "
        f"{fmt_s(phase.last_start_s)} after the fire minute",
    )
    total = sum(phase.shares) or 1
    shares = ", ".join(
        f"p{i + 1} {n} ({100 * n / total:.0f} %)" for i, n in enumerate(phase.shares)
    )
    show(p + "runs per process", shares + (f", in no log {phase.unowned}" if phase.unowned else ""))
    conns = ", ".join(
        f"p{i + 1} {o} open / {a} active"
        for i, (o, a) in enumerate(zip(phase.peak_open, phase.peak_active, strict=True))
    )
    show(p + "peak db connections per process", conns)
    show(
        p + "peak db connections in all",
        f"{phase.peak_total} (the benchmark's sampler not "
        f"counted; at most {phase.other_open} at once held by no process: closing; "
        f"{phase.samples} samples)",
    )
    if phase.cpu is not None:
        spent = ", ".join(f"{name} {sec:.1f} s" for name, sec in phase.cpu.spent.items())
        show(
            p + "cpu from the fire to the last run's end",
            f"{spent}; machine {100 * phase.cpu.busy:.0f} % busy over {phase.cpu.wall:.1f} s "
            f"({os.cpu_count()} cores)",
        )
    show(p + "slack calls", f"{phase.slack_calls} ({phase.ratelimited} answered 429)")
    show(p + "messages stored", phase.messages)
    show(p + "load at the fire", phase.load_at_fire)
    show(p + "load at the end", phase.load)
    for line in phase.errors:
        show(p + "error", line)


def fmt_s(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--run-concurrency", type=int, default=2, help="RUN_CONCURRENCY")
    parser.add_argument("--messages", type=int, default=60, help="about, per workspace")
    parser.add_argument("--lead", type=float, default=60.0, help="seconds to the fire minute")
    parser.add_argument("--timeout", type=float, default=1800.0, help="after the fire minute")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--quiet-flag", default="/tmp/bench_quiet")
    parser.add_argument(
        "--chroma",
        choices=("server", "embedded"),
        default="server",
        help="one Chroma server for all (the design's scale-out), or each process its own "
        "embedded store (a diagnostic: it splits the documents between processes)",
    )
    parser.add_argument(
        "--slack-latency-ms",
        type=float,
        default=100.0,
        help="how long fakeslack holds each answer (Slack's round trip; 0: none)",
    )
    parser.add_argument("--keep-logs", help="copy each app's output into this folder")
    parser.add_argument("--only", choices=("baseline", "scaled"), help="one phase (develop)")
    args = parser.parse_args(argv)

    show("workspaces", args.workspaces)
    show(
        "data per workspace",
        f"7 channels, 6 people, about {args.messages} messages over {DAYS} days",
    )
    show("run concurrency", args.run_concurrency)
    show(
        "chroma",
        "one server for all processes"
        if args.chroma == "server"
        else "embedded, one store per process (diagnostic)",
    )
    show("slack rate limits", "on, Slack's tiers at the real minute (per workspace, per method)")
    show("slack latency", f"{args.slack_latency_ms:g} ms per call")
    show("load at start", load_now())
    phases: dict[int, Phase] = {}
    for processes in (1, args.processes):
        if args.only == ("scaled" if processes == 1 else "baseline"):
            continue
        phases[processes] = phase = run_phase(args, processes)
        report(f"{processes} process" + ("es" if processes > 1 else ""), phase)
    base, scaled = phases.get(1), phases.get(args.processes)
    if base is None or scaled is None or args.processes == 1:
        return 0
    if base.last_end_s and scaled.last_end_s and base.ready and scaled.ready:
        ratio = base.last_end_s / scaled.last_end_s
        verdict = "met" if ratio >= SPEEDUP_TARGET else "missed"
        show(
            f"speedup with {args.processes} processes",
            f"{ratio:.2f}x faster to the last run's end (target >= {SPEEDUP_TARGET:g}x: "
            f"{ratio / SPEEDUP_TARGET:.2f}x the bound, {verdict})",
        )
    else:
        show(f"speedup with {args.processes} processes", "not measured")
    correct = all(
        p.ready
        and not p.timed_out
        and not p.errors
        and p.missed == 0
        and p.duplicate_rows + p.duplicate_dms == 0
        and p.fires == p.schedules
        for p in (base, scaled)
    )
    show("every fire ran exactly once", "yes" if correct else "no")
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
