"""`python -m fakeslack`: serve a generated workspace until SIGTERM/SIGINT.

Prints one JSON line on stdout once listening (url, bot_token, team_id, port, signing_secret);
logs go to stderr. With `--events-url`, changes made through `POST /_fake/changes` reach that URL
as signed Events API requests, with Slack's retries (`/_fake/events/config` changes it later).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from fakeslack.events import EventsConfig
from fakeslack.generator import generate
from fakeslack.server import FakeSlack
from fakeslack.spec import PROFILES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fakeslack", description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--channels", type=int, default=12)
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument(
        "--now", type=float, default=None, help="unix time the workspace ends at (default: now)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--time-compression", type=float, default=1.0)
    p.add_argument("--profile", choices=sorted(PROFILES), default="internal")
    p.add_argument("--no-rate-limits", action="store_true")
    p.add_argument(
        "--burst",
        type=int,
        default=None,
        help="also tolerate only a burst of N calls per method (a leaky bucket of N draining at "
        "the tier's rate), as a Slack stricter than its documented minute",
    )
    p.add_argument(
        "--events-url",
        default=None,
        help="the app's Events API request URL (e.g. http://127.0.0.1:3000/slack/events)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    ws = generate(
        args.seed,
        users=args.users,
        channels=args.channels,
        messages=args.messages,
        days=args.days,
        now=args.now,
    )
    fake = FakeSlack(
        ws,
        profile=args.profile,
        time_compression=args.time_compression,
        rate_limits=not args.no_rate_limits,
        burst=args.burst,
        host=args.host,
        port=args.port,
        events=EventsConfig(mode="http", url=args.events_url) if args.events_url else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        line = {
            "url": fake.base_url,
            "bot_token": fake.bot_token,
            "team_id": fake.team_id,
            "port": fake.port,
            "signing_secret": fake.signing_secret,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        logging.getLogger("fakeslack").info("workspace %s: %s", ws.team_id, ws.stats())
        await stop.wait()
    logging.getLogger("fakeslack").info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
