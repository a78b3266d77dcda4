"""Runs one backfill job in its own process, so a test can SIGKILL it mid-run and start it again
with the same job id: `python tests/engine/engine_runner.py --base-url … --token … --database-url
… --chroma … --workspace … --job 1 --days 7 --now …`. Prints the result as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from db.migrate import migrate
from db.session import create_engine, make_sessionmaker
from db.vectors import ChromaVectorStore
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import INTERNAL


async def main(args: argparse.Namespace) -> None:
    await migrate(args.database_url)
    engine = create_engine(args.database_url)
    vectors = await ChromaVectorStore.open(args.chroma, None, "hashing")
    profile = dataclasses.replace(INTERNAL.scaled(args.minute), history_page_size=args.page_size)
    gateway = SlackGateway(args.token, base_url=args.base_url, profile=profile, backoff_base=0.02)
    try:
        result = await BackfillEngine(
            gateway, make_sessionmaker(engine), vectors, EngineConfig()
        ).run(RunRequest(args.workspace, args.job, days=args.days, now=args.now))
    finally:
        await vectors.close()
        await engine.dispose()
    print(json.dumps(dataclasses.asdict(result)), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--chroma", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--job", type=int, required=True)
    p.add_argument("--days", type=float, default=7)
    p.add_argument("--now", type=float, required=True)
    p.add_argument("--page-size", type=int, default=25)
    p.add_argument("--minute", type=float, default=0.05)
    asyncio.run(main(p.parse_args()))
