"""Ack latency of `/backfill status` under load: 200 concurrent signed requests over HTTP, first with
no run going (baseline), then while a large backfill runs in the same process.

The app runs in this process exactly as in the scenario tests (`running_app`, SQLite, embedded
Chroma with the hashing embedding, `rate_minute_seconds` matched to fakeslack's time compression).
fakeslack serves a generated workspace from its own process (Slack is remote: its CPU is not the
app's), and the 200 requests come from a client process of their own, so the latencies measured
are the app's alone: from sending the signed request to the end of the HTTP response (the ack).

    .venv/bin/python bench/bench_ack.py [--messages 60000] [--requests 200]

Prints `name: value` lines. Target: p99 < 100 ms (Slack's limit is 3 s).
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import aiohttp  # noqa: E402

TIME_COMPRESSION = 60.0  # fakeslack's rate-limit minute lasts one second; the app paces to match


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=60_000)
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # internal
    return p.parse_args(argv)


# --- the load client (its own process) -------------------------------------------------------------


async def client_burst(spec: dict[str, Any]) -> dict[str, Any]:
    """Send `n` signed `/backfill status` at once; return each latency (ms) and status."""
    from fakeslack.outgoing import form_headers, slash_command_body

    requests = []
    for i in range(spec["n"]):
        body = slash_command_body(
            spec.get("text", "status"), team_id=spec["team_id"], user_id=spec["user_id"],
            response_url=f"{spec['fake_url']}/_fake/response_url/bench{spec['round']}x{i}",
            trigger_id=f"1.2.bench{i}", channel_id="C0BENCH")
        requests.append((body, form_headers(body, spec["secret"])))
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        start = asyncio.Event()

        async def one(body: str, headers: dict[str, str]) -> tuple[float, int]:
            await start.wait()
            t0 = time.perf_counter()
            try:
                async with http.post(spec["url"], data=body, headers=headers) as resp:
                    await resp.read()
                    return (time.perf_counter() - t0) * 1000, resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return (time.perf_counter() - t0) * 1000, 0

        tasks = [asyncio.create_task(one(b, h)) for b, h in requests]
        await asyncio.sleep(0.05)  # every task is waiting on the start line
        wall = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        wall_ms = (time.perf_counter() - wall) * 1000
    return {"latencies": [r[0] for r in results], "statuses": [r[1] for r in results],
            "wall_ms": wall_ms}


def client_main() -> int:
    spec = json.loads(sys.stdin.readline())
    sys.stdout.write(json.dumps(asyncio.run(client_burst(spec))) + "\n")
    return 0


async def burst(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--client",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await proc.communicate((json.dumps(spec) + "\n").encode())
    if proc.returncode != 0 or not out:
        raise RuntimeError("the load client failed")
    return dict(json.loads(out))


# --- fakeslack (its own process) -----------------------------------------------------------------------


async def start_fakeslack(args: argparse.Namespace) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakeslack", "--seed", str(args.seed),
        "--messages", str(args.messages), "--channels", str(args.channels),
        "--users", str(args.users), "--days", str(args.days),
        "--time-compression", str(TIME_COMPRESSION), "--log-level", "WARNING",
        cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=600)
    if not line:
        raise RuntimeError("fakeslack exited before listening")
    return proc, json.loads(line)


async def primary_owner(info: dict[str, Any]) -> str:
    async with aiohttp.ClientSession() as http, http.post(
        f"{info['url']}users.list", data={"limit": "1000"},
        headers={"Authorization": f"Bearer {info['bot_token']}"},
    ) as resp:
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

    def __enter__(self) -> LoopLag:
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


def figures(prefix: str, result: dict[str, Any]) -> dict[str, float]:
    lat = result["latencies"]
    ok = sum(1 for s in result["statuses"] if s == 200)
    out = {
        f"{prefix}_requests": len(lat),
        f"{prefix}_http_200": ok,
        f"{prefix}_ack_p50_ms": statistics.median(lat),
        f"{prefix}_ack_p99_ms": percentile(lat, 99),
        f"{prefix}_ack_max_ms": max(lat),
        f"{prefix}_burst_wall_ms": result["wall_ms"],
    }
    return out


def show(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float):
            print(f"{name}: {value:.1f}", flush=True)
        else:
            print(f"{name}: {value}", flush=True)


# --- the benchmark -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    from app.runtime import running_app
    from app.settings import load_settings

    fake_proc, info = await start_fakeslack(args)
    fake_url = info["url"].removesuffix("/").removesuffix("/api")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    try:
        settings = load_settings({
            "SLACK_BOT_TOKEN": info["bot_token"], "SLACK_SIGNING_SECRET": info["signing_secret"],
            "SLACK_API_URL": info["url"], "PORT": str(free_port()),
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'backfill.db'}",
            "CHROMA_PATH": str(workdir / "chroma"), "EMBEDDING": "hashing",
            "LOG_LEVEL": "WARNING",
        }, env_file=None)
        admin = await primary_owner(info)
        async with running_app(settings, rate_minute_seconds=60.0 / TIME_COMPRESSION) as rt:
            spec = {"url": f"http://127.0.0.1:{rt.port}/slack/events", "secret": info["signing_secret"],
                    "team_id": info["team_id"], "user_id": admin, "fake_url": fake_url,
                    "n": args.requests}
            # The admin check's users.info answer is cached for a minute: warm it, as any
            # admin who typed a command in the last minute has.
            await burst({**spec, "n": 1, "round": "warm"})

            with LoopLag() as base_lag:
                baseline = await burst({**spec, "round": "base"})
            base = figures("baseline", baseline)
            base["baseline_loop_lag_max_ms"] = max(base_lag.lags or [0.0])
            await asyncio.sleep(1.0)  # let the baseline's response_url posts finish

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
                idle_until = time.monotonic() + 2.0  # the run alone, before the burst
                while time.monotonic() < idle_until:
                    await asyncio.sleep(0.05)
                alone = list(run_lag.lags)
                loaded = await burst({**spec, "round": "load"})
            current = await runs.current(rt.team_id)
            after = runs.progress(rt.team_id)
            load = figures("during_run", loaded)
            load["run_alone_loop_lag_p99_ms"] = percentile(alone or [0.0], 99)
            load["run_alone_loop_lag_max_ms"] = max(alone or [0.0])

            show({"workspace_messages": args.messages, "run_days": args.days})
            show(base)
            show(load)
            show({
                "run_going_through_burst": "yes" if current is not None else "no",
                "run_messages_stored_at_burst_start": before.messages_stored if before else 0,
                "run_messages_stored_at_burst_end": after.messages_stored if after else 0,
                "p50_ratio_run_vs_baseline": load["during_run_ack_p50_ms"] / base["baseline_ack_p50_ms"],
                "p99_ratio_run_vs_baseline": load["during_run_ack_p99_ms"] / base["baseline_ack_p99_ms"],
                "target_p99_under_100ms": "met" if load["during_run_ack_p99_ms"] < 100 else "missed",
            })
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
