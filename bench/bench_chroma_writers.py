"""How writes to one Chroma server scale with the number of app processes writing at once: the
part of `bench_workspaces.py` that more processes cannot speed up.

    .venv/bin/python bench/bench_chroma_writers.py [--workspaces 300] [--messages 54]

A fresh `chroma run` server; each "process" is the app's own `ChromaVectorStore` on it (its own
worker process, as each app process has), writing a small workspace's messages the way a run's
writer does: `--messages` documents into the workspace's new collection `slack_<id>`, in calls of
the writer's `VECTOR_CHUNK`, with the `hashing` embedding. The same number of workspaces is
written by 1 writer, then (new collections) split over 3 writers at once. Prints the wall time of
each and their ratio: 3.0 would be writes that scale with processes, 1.0 or less a server that
applies them one at a time, as a single-node `chroma run` does (its CPU is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from db.records import MessageRecord
from db.vectors import ChromaVectorStore
from scheduler.backfill.writer import VECTOR_CHUNK
from tests.support.servers import chroma_server

WORDS = [
    "deploy",
    "error",
    "meeting",
    "lunch",
    "review",
    "ticket",
    "release",
    "rollback",
    "budget",
    "roadmap",
]
TICK = os.sysconf("SC_CLK_TCK")


def records(workspace_id: str, count: int) -> list[MessageRecord]:
    return [
        MessageRecord(
            workspace_id=workspace_id,
            channel_id=f"C{i % 7:08d}",
            channel_name=f"channel-{i % 7}",
            ts=f"{1_750_000_000 + i}.{i:06d}",
            thread_ts=None,
            user_id=f"U{i % 6:08d}",
            user_name=f"person {i % 6}",
            text=" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(12)),
        )
        for i in range(count)
    ]


def server_cpu(port: str) -> float:
    """CPU seconds of the `chroma run` process listening on `port`."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
                if b"run" in cmd and port.encode() in cmd:
                    fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                    return sum(int(x) for x in fields[11:13]) / TICK
            except OSError:
                continue
    return float("nan")


async def write(url: str, workspaces: list[str], messages: int) -> None:
    """One app process's store writing `workspaces` one after the other."""
    store = await ChromaVectorStore.open(None, url, "hashing")
    try:
        for workspace_id in workspaces:
            batch = records(workspace_id, messages)
            for start in range(0, len(batch), VECTOR_CHUNK):
                await store.upsert(batch[start : start + VECTOR_CHUNK])
    finally:
        await store.close()


async def phase(url: str, tag: str, writers: int, count: int, messages: int) -> tuple[float, float]:
    names = [f"T{tag}{i:06d}" for i in range(count)]
    port = url.rsplit(":", 1)[1]
    cpu0, start = server_cpu(port), time.perf_counter()
    await asyncio.gather(*(write(url, names[w::writers], messages) for w in range(writers)))
    return time.perf_counter() - start, server_cpu(port) - cpu0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workspaces", type=int, default=300)
    parser.add_argument("--messages", type=int, default=54, help="documents per workspace")
    args = parser.parse_args()
    print(f"workspaces per phase: {args.workspaces}, documents each: {args.messages}")
    print(f"documents per call: {VECTOR_CHUNK} (the writer's VECTOR_CHUNK)")
    with chroma_server() as url:
        one, one_cpu = asyncio.run(phase(url, "A", 1, args.workspaces, args.messages))
        three, three_cpu = asyncio.run(phase(url, "B", 3, args.workspaces, args.messages))
    print(
        f"1 writer: {one:.1f} s ({1000 * one / args.workspaces:.0f} ms a workspace), "
        f"server cpu {one_cpu:.1f} s"
    )
    print(
        f"3 writers at once: {three:.1f} s ({1000 * three / args.workspaces:.0f} ms a "
        f"workspace), server cpu {three_cpu:.1f} s"
    )
    print(f"speedup with 3 writers: {one / three:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
