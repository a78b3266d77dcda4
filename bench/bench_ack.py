"""Ack latency of `/backfill status` under load: bursts of 200 concurrent signed requests over
HTTP, first with no run going, then while a large backfill runs in the same process.

The app runs in this process exactly as in the scenario tests (`running_app`, SQLite, embedded
Chroma with the hashing embedding, `rate_minute_seconds` matched to fakeslack's time compression).
fakeslack serves a generated workspace from its own process (Slack is remote: its CPU is not the
app's). The requests come from a client process of its own that opens every connection first and
then writes all the requests at once through raw asyncio transports, so what it measures (from a
request's write to its response's last byte: the ack, as Slack sees it) is the app's time, not the
client's: an aiohttp client serialises 200 requests through its own loop and adds tens of ms.

Three measurements in the same run, each `--bursts` bursts (pooled p50/p99, and each burst's p99):
- `floor`: a bare aiohttp handler answering 200 at once, in this process, with the same client:
  what the kernel, aiohttp and the client cost before any app code runs;
- `idle`: the app with no run going, one burst a second;
- `during_run`: the app while a 30-day run of a 60k-message workspace is writing pages.

    .venv/bin/python bench/bench_ack.py [--messages 60000] [--requests 200] [--bursts 5]

Prints `name: value` lines. Target: p99 < 100 ms during the run (Slack's limit is 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import aiohttp

TIME_COMPRESSION = 60.0  # fakeslack's rate-limit minute lasts one second; the app paces to match


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=60_000)
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--bursts", type=int, default=5, help="bursts idle, and again during the run")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # internal
    return p.parse_args(argv)


# --- the load client (its own process) -------------------------------------------------------------


class _OneRequest(asyncio.Protocol):
    """One pre-opened connection: writes its request at the start line, then reads the response
    until its declared length. Raw asyncio, so the client's own cost per request is a few tens of
    microseconds and the latency it reports is the server's, not this process's queueing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0.0
        self.done: asyncio.Future[tuple[float, int]] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = bytes(self.buffer).partition(b"\r\n\r\n")
        if not sep or self.done.done():
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(body) >= length:
            status = int(head.split(b" ", 2)[1])
            self.done.set_result(((time.perf_counter() - self.sent_at) * 1000, status))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(((time.perf_counter() - self.sent_at) * 1000, 0))


def raw_request(host: str, port: int, path: str, body: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: close",
        f"Content-Length: {len(body.encode())}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def client_burst(spec: dict[str, Any]) -> dict[str, Any]:
    """Open `n` connections, then send `n` signed `/backfill status` at once (as Slack would, from
    many machines); return each latency (ms, from the request's write to its response's last
    byte) and status."""
    from urllib.parse import urlsplit

    from fakeslack.outgoing import form_headers, slash_command_body

    url = urlsplit(spec["url"])
    host, port = url.hostname or "127.0.0.1", int(url.port or 80)
    loop = asyncio.get_running_loop()
    requests = []
    for i in range(spec["n"]):
        body = slash_command_body(
            spec.get("text", "status"),
            team_id=spec["team_id"],
            user_id=spec["user_id"],
            response_url=f"{spec['fake_url']}/_fake/response_url/bench{spec['round']}x{i}",
            trigger_id=f"1.2.bench{i}",
            channel_id="C0BENCH",
        )
        requests.append(raw_request(host, port, url.path, body, form_headers(body, spec["secret"])))
    conns = []
    for _ in requests:
        _transport, proto = await loop.create_connection(_OneRequest, host, port)
        conns.append(proto)
    await asyncio.sleep(0.05)  # the server has accepted every connection
    wall = time.perf_counter()
    for proto, request in zip(conns, requests):
        proto.send(request)
    try:
        results = await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), timeout=30)
    finally:
        for proto in conns:
            if proto.transport is not None:
                proto.transport.close()
    wall_ms = (time.perf_counter() - wall) * 1000
    return {
        "latencies": [r[0] for r in results],
        "statuses": [r[1] for r in results],
        "wall_ms": wall_ms,
    }


def client_main() -> int:
    spec = json.loads(sys.stdin.readline())
    sys.stdout.write(json.dumps(asyncio.run(client_burst(spec))) + "\n")
    return 0


async def burst(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await proc.communicate((json.dumps(spec) + "\n").encode())
    if proc.returncode != 0 or not out:
        raise RuntimeError("the load client failed")
    return dict(json.loads(out))


# --- fakeslack (its own process) -----------------------------------------------------------------------


async def start_fakeslack(
    args: argparse.Namespace,
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeslack",
        "--seed",
        str(args.seed),
        "--messages",
        str(args.messages),
        "--channels",
        str(args.channels),
        "--users",
        str(args.users),
        "--days",
        str(args.days),
        "--time-compression",
        str(TIME_COMPRESSION),
        "--log-level",
        "WARNING",
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=600)
    if not line:
        raise RuntimeError("fakeslack exited before listening")
    return proc, json.loads(line)


async def primary_owner(info: dict[str, Any]) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{info['url']}users.list",
            data={"limit": "1000"},
            headers={"Authorization": f"Bearer {info['bot_token']}"},
        ) as resp,
    ):
        data = await resp.json()
    return str(next(u["id"] for u in data["members"] if u.get("is_primary_owner")))


class LoopLag:
    """How late the app's event loop wakes a 5 ms sleep, sampled while a burst runs."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append((time.perf_counter() - t0 - 0.005) * 1000)

    def __enter__(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- figures --------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def figures(prefix: str, bursts: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled percentiles over every request of every burst, and the worst burst's p99."""
    lat = [x for b in bursts for x in b["latencies"]]
    ok = sum(1 for b in bursts for s in b["statuses"] if s == 200)
    return {
        f"{prefix}_bursts": len(bursts),
        f"{prefix}_requests": len(lat),
        f"{prefix}_http_200": ok,
        f"{prefix}_ack_p50_ms": statistics.median(lat),
        f"{prefix}_ack_p99_ms": percentile(lat, 99),
        f"{prefix}_ack_max_ms": max(lat),
        f"{prefix}_worst_burst_p99_ms": max(percentile(b["latencies"], 99) for b in bursts),
        f"{prefix}_each_burst_p99_ms": " ".join(
            f"{percentile(b['latencies'], 99):.1f}" for b in bursts
        ),
    }


def show(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float):
            print(f"{name}: {value:.1f}", flush=True)
        else:
            print(f"{name}: {value}", flush=True)


# --- the benchmark -----------------------------------------------------------------------------------------


async def floor_bursts(spec: dict[str, Any], rounds: int) -> list[dict[str, Any]]:
    """The measurement floor: a bare aiohttp handler answering 200 at once, in this process, with
    the same client (what the kernel, aiohttp and the client cost before any app code runs)."""
    from aiohttp import web

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=200)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", empty)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return [
            await burst(
                {**spec, "url": f"http://127.0.0.1:{port}/slack/events", "round": f"floor{i}"}
            )
            for i in range(rounds)
        ]
    finally:
        await runner.cleanup()


async def bursts_every(
    spec: dict[str, Any], rounds: int, label: str, pause: float
) -> list[dict[str, Any]]:
    results = []
    for i in range(rounds):
        results.append(await burst({**spec, "round": f"{label}{i}"}))
        await asyncio.sleep(pause)  # let the burst's replies go out before the next one
    return results


async def run(args: argparse.Namespace) -> int:
    from app.runtime import running_app
    from app.settings import load_settings

    fake_proc, info = await start_fakeslack(args)
    fake_url = info["url"].removesuffix("/").removesuffix("/api")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    try:
        settings = load_settings(
            {
                "SLACK_BOT_TOKEN": info["bot_token"],
                "SLACK_SIGNING_SECRET": info["signing_secret"],
                "SLACK_API_URL": info["url"],
                "PORT": str(free_port()),
                "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'backfill.db'}",
                "CHROMA_PATH": str(workdir / "chroma"),
                "EMBEDDING": "hashing",
                "LOG_LEVEL": "WARNING",
            },
            env_file=None,
        )
        admin = await primary_owner(info)
        async with running_app(settings, rate_minute_seconds=60.0 / TIME_COMPRESSION) as rt:
            spec = {
                "url": f"http://127.0.0.1:{rt.port}/slack/events",
                "secret": info["signing_secret"],
                "team_id": info["team_id"],
                "user_id": admin,
                "fake_url": fake_url,
                "n": args.requests,
            }
            floor = figures("floor", await floor_bursts(spec, args.bursts))
            # The admin check's users.info answer is cached for a minute: warm it, as any
            # admin who typed a command in the last minute has.
            await burst({**spec, "n": 1, "round": "warm"})

            with LoopLag() as base_lag:
                idle = await bursts_every(spec, args.bursts, "idle", 1.0)
            base = figures("idle", idle)
            base["idle_loop_lag_max_ms"] = max(base_lag.lags or [0.0])

            await burst({**spec, "n": 1, "round": "start", "text": f"run days={args.days}"})
            runs = rt.deps.runs
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # measure once the engine is writing pages
                progress = runs.progress(rt.team_id)
                if progress is not None and progress.messages_stored >= 2000:
                    break
                await asyncio.sleep(0.1)
            before = runs.progress(rt.team_id)
            with LoopLag() as run_lag:
                idle_until = time.monotonic() + 2.0  # the run alone, before the bursts
                while time.monotonic() < idle_until:
                    await asyncio.sleep(0.05)
                alone = list(run_lag.lags)
                loaded = await bursts_every(spec, args.bursts, "load", 0.5)
            current = await runs.current(rt.team_id)
            after = runs.progress(rt.team_id)
            load = figures("during_run", loaded)
            load["run_alone_loop_lag_p99_ms"] = percentile(alone or [0.0], 99)
            load["run_alone_loop_lag_max_ms"] = max(alone or [0.0])

            show(
                {
                    "workspace_messages": args.messages,
                    "run_days": args.days,
                    "requests_per_burst": args.requests,
                }
            )
            show(floor)
            show(base)
            show(load)
            show(
                {
                    "run_going_through_bursts": "yes" if current is not None else "no",
                    "run_messages_stored_at_first_burst": before.messages_stored if before else 0,
                    "run_messages_stored_after_last_burst": after.messages_stored if after else 0,
                    "p99_ratio_idle_vs_floor": base["idle_ack_p99_ms"] / floor["floor_ack_p99_ms"],
                    "p99_ratio_run_vs_idle": load["during_run_ack_p99_ms"]
                    / base["idle_ack_p99_ms"],
                    "target_p99_under_100ms": "met"
                    if load["during_run_ack_p99_ms"] < 100
                    else "missed",
                }
            )
            if current is not None:
                await runs.cancel(rt.team_id, admin, is_admin=True)
                await runs.wait_idle(120)
    finally:
        fake_proc.terminate()
        await fake_proc.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
