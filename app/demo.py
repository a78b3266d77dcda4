"""`python -m app demo`: the whole app against fakeslack with a generated workspace, no Slack needed.

It plays a workspace admin through real signed requests: creates a schedule, opens App Home,
starts a run and shows its progress, prints the DM and the Home tab as text, searches the Chroma
collection, and checks the stored count against the generator's ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from app.demo_workspaces import run_workspaces_demo
from app.runtime import Runtime, running_app
from app.settings import Settings, load_settings
from app.terminal import render_message, render_view
from db.messages import count_messages, stored_messages
from fakeslack import FakeSlack, generate, ground_truth
from fakeslack.outgoing import event_body, form_headers, json_headers, slash_command_body

DEMO_DIR = Path("data/demo")
# fakeslack runs Slack's rate-limit minute in one second, and the app paces itself to match.
TIME_COMPRESSION = 60.0
RUN_DAYS = 60


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app demo", description=__doc__)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep serving and read /backfill commands from a prompt",
    )
    parser.add_argument(
        "--as",
        dest="role",
        choices=("admin", "member"),
        default="admin",
        help="who types at the prompt (default: admin)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--channels", type=int, default=12)
    parser.add_argument("--days", type=int, default=RUN_DAYS)
    parser.add_argument(
        "--workspaces",
        type=int,
        default=1,
        help="more than 1: multi-workspace mode, each installed through the OAuth redirect",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.workspaces <= 50:
        parser.error("--workspaces must be from 1 to 50")
    return args


def demo_settings(fake: FakeSlack, port: int) -> Settings:
    """The embedded defaults (SQLite, embedded Chroma), in a demo folder of their own."""
    overrides = {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": fake.signing_secret,
        "SLACK_API_URL": fake.base_url,
        "PORT": str(port),
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or f"sqlite+aiosqlite:///{DEMO_DIR / 'backfill.db'}",
        "CHROMA_PATH": os.environ.get("CHROMA_PATH") or str(DEMO_DIR / "chroma"),
        # The default embedding downloads a model once; the demo works offline unless told.
        "EMBEDDING": os.environ.get("EMBEDDING") or "hashing",
    }
    environ = {**os.environ, **overrides}
    environ.pop("SLACK_APP_TOKEN", None)  # the demo drives the app over HTTP
    return load_settings(environ, env_file=None)


class DemoSlack:
    """Plays Slack's side: signs requests to the app and reads what the app sent back."""

    def __init__(self, fake: FakeSlack, runtime: Runtime, http: aiohttp.ClientSession) -> None:
        self.fake, self.rt, self.http = fake, runtime, http
        self.url = f"http://127.0.0.1:{runtime.port}/slack/events"

    async def command(self, text: str, user_id: str) -> str:
        """Send `/backfill <text>`; return what the user sees (the ack, then response_url posts)."""
        seen = len(self.fake.response_posts)
        body = slash_command_body(
            text,
            team_id=self.fake.team_id,
            user_id=user_id,
            response_url=self.fake.new_response_url(user_id, "C0DEMO"),
            trigger_id=self.fake.new_trigger_id(user_id),
        )
        started = time.monotonic()
        async with self.http.post(
            self.url, data=body, headers=form_headers(body, self.fake.signing_secret)
        ) as resp:
            ack_ms = (time.monotonic() - started) * 1000
            shown: list[str] = [f"(acknowledged in {ack_ms:.0f} ms, HTTP {resp.status})"]
            if resp.content_type == "application/json":
                shown.append(render_message(await resp.json()))
        await asyncio.sleep(0.5)  # let the listener finish its response_url posts and views
        for post in self.fake.response_posts[seen:]:
            shown.append(render_message(post["body"]))
        modal = self.fake.modal_stack(user_id)
        if modal:
            shown.append(render_view(modal[-1]))
        return self.render("\n".join(s for s in shown if s))

    async def open_home(self, user_id: str) -> str:
        published = self._home_publishes(user_id)
        body = event_body(
            {
                "type": "app_home_opened",
                "user": user_id,
                "tab": "home",
                "channel": "D0DEMO",
                "event_ts": f"{time.time():.6f}",
            },
            team_id=self.fake.team_id,
        )
        async with self.http.post(
            self.url, data=body, headers=json_headers(body, self.fake.signing_secret)
        ):
            pass
        for _ in range(100):
            view = self.fake.home_view(user_id)
            if view is not None and self._home_publishes(user_id) > published:
                return self.render(render_view(view))
            await asyncio.sleep(0.1)
        return "(no Home tab was published)"

    def _home_publishes(self, user_id: str) -> int:
        return sum(
            1 for v in self.fake.view_events if v["kind"] == "publish" and v.get("user") == user_id
        )

    def render(self, text: str) -> str:
        """Show `@U123` mentions the way Slack does, with the person's name."""
        for user in self.fake.workspace.users.values():
            name = user.get("profile", {}).get("display_name") or user.get("real_name")
            if name:
                text = text.replace(f"@{user['id']}", f"@{name}")
        return text


def pick_user(fake: FakeSlack, role: str) -> dict[str, Any]:
    users = [
        u for u in fake.workspace.users.values() if not u.get("is_bot") and not u.get("deleted")
    ]
    if role == "admin":
        return next(u for u in users if u.get("is_primary_owner"))
    return next(u for u in users if not u.get("is_admin"))


def progress_bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


async def watch_run(rt: Runtime) -> None:
    """A live progress line in the terminal (a line every few seconds when not a terminal)."""
    runs = rt.deps.runs
    live = sys.stdout.isatty()
    last_line = 0.0
    while True:
        current = await runs.current(rt.team_id)
        progress = runs.progress(rt.team_id)
        if progress is not None:
            eta = f"{progress.eta_s:.0f}s" if progress.eta_s is not None else "…"
            line = (
                f"  {progress_bar(progress.channels_done, progress.channels_total)} "
                f"{progress.channels_done}/{progress.channels_total} channels · "
                f"{progress.messages_stored:,} messages · {progress.calls} calls · ETA {eta}"
            )
            if live:
                sys.stdout.write(f"\r{line}   ")
                sys.stdout.flush()
            elif time.monotonic() - last_line > 5:
                print(line, flush=True)
                last_line = time.monotonic()
        if current is None:
            break
        await asyncio.sleep(0.5)
    if live:
        sys.stdout.write("\n")


def section(title: str) -> None:
    print(f"\n\033[1m== {title} ==\033[0m")


async def run_demo(args: argparse.Namespace) -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    if args.workspaces > 1:
        return await run_workspaces_demo(args, str(DEMO_DIR), _free_port(), section)
    print(
        f"Generating a workspace: {args.channels} channels, ~{args.messages:,} messages "
        f"over {args.days} days …"
    )
    workspace = generate(
        seed=args.seed, users=40, channels=args.channels, messages=args.messages, days=args.days
    )
    fake = FakeSlack(workspace, time_compression=TIME_COMPRESSION)
    await fake.start()
    port = _free_port()
    settings = demo_settings(fake, port)
    admin = pick_user(fake, "admin")
    try:
        async with (
            running_app(settings, rate_minute_seconds=60.0 / TIME_COMPRESSION) as rt,
            aiohttp.ClientSession() as http,
        ):
            slack = DemoSlack(fake, rt, http)
            print(
                f"fakeslack serves workspace {fake.team_id} at {fake.base_url}; the app listens "
                f"on port {rt.port}. The admin is {admin['real_name']} ({admin['id']})."
            )
            section('/backfill schedule "0 2 * * *" days=7')
            print(await slack.command('schedule "0 2 * * *" days=7', admin["id"]))
            section("App Home")
            print(await slack.open_home(admin["id"]))
            section(f"/backfill run days={args.days}")
            print(await slack.command(f"run days={args.days}", admin["id"]))
            await watch_run(rt)
            section("The DM the admin received")
            dms = fake.dms(admin["id"])
            print(slack.render(render_message(dms[-1])) if dms else "(no DM)")
            section("App Home after the run")
            print(await slack.open_home(admin["id"]))
            await search(rt)
            ok = await summary(rt, fake, args.days)
            ok = await live_mirror(rt, fake) and ok
            if args.keep_running:
                await prompt(slack, pick_user(fake, args.role))
            return 0 if ok else 1
    finally:
        await fake.stop()


async def live_mirror(rt: Runtime, fake: FakeSlack) -> bool:
    """Slack's events reach the store between runs: a new message, its edit, and a deletion."""
    section("The live mirror: a message posted, edited, and another deleted in Slack")
    fake.configure_events(mode="http", url=f"http://127.0.0.1:{rt.port}/slack/events")
    channel = next(
        c.id
        for c in fake.workspace.channels.values()
        if fake.workspace.bot_user_id in c.members and not c.is_archived
    )
    posted = str(fake.post_message(channel, "The release moves to Thursday, see the plan")["ts"])
    fake.edit_message(channel, posted, "The release moves to Friday, see the updated plan")
    doomed = str(fake.post_message(channel, "This message was posted by mistake")["ts"])
    fake.delete_message(channel, doomed)
    await fake.events_settled(timeout=30)
    mirror = rt.deps.mirror
    assert mirror is not None
    for _ in range(100):  # the drainer applies them within a few seconds
        if (await mirror.status(rt.team_id)).backlog == 0:
            break
        await asyncio.sleep(0.1)
    async with rt.sessions() as session:
        stored = await stored_messages(session, rt.team_id, channel, [posted, doomed])
    edited = stored.get(posted)
    print(f"  edited message, as stored: {edited.text if edited else '(missing)'}")
    print(f"  deleted message stored: {'yes' if doomed in stored else 'no'}")
    status = await mirror.status(rt.team_id)
    print(f"  events applied today: {status.applied_today}, waiting: {status.backlog}")
    ok = edited is not None and "Friday" in edited.text and doomed not in stored
    print("  OK: the edit and the deletion reached the store" if ok else "  MISMATCH")
    return ok


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def search(rt: Runtime, query: str = "deploy the release on friday") -> None:
    section(f"Search the Chroma collection: {query!r}")
    for hit in await rt.vectors.search(rt.team_id, query, limit=3):
        meta = hit.metadata
        text = hit.text if len(hit.text) <= 120 else hit.text[:119] + "…"
        print(f"  #{meta.get('channel_name')}  {meta.get('user_name')}: {text}")


async def summary(rt: Runtime, fake: FakeSlack, days: int) -> bool:
    async with rt.sessions() as session:
        stored = await count_messages(session, rt.team_id)
    truth = ground_truth(fake.workspace, days)
    expected = len(truth.must_store)
    last = next(iter(await rt.deps.runs.history(rt.team_id, 1)), None)
    section("Summary")
    print(f"  run #{last.job_run_id if last else '?'}: {last.status if last else 'none'}")
    print(f"  messages stored: {stored:,}")
    print(f"  ground truth for the {days}-day window: {expected:,}")
    ok = stored == expected and last is not None and last.status == "success"
    print("  OK: the store matches the ground truth" if ok else "  MISMATCH")
    return ok


async def prompt(slack: DemoSlack, user: dict[str, Any]) -> None:
    section(f"Type /backfill commands as {user['real_name']} (empty line or Ctrl-D to quit)")
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, _read_line)
        if not line:
            return
        text = line.removeprefix("/backfill").strip()
        print(await slack.command(text, user["id"]))


def _read_line() -> str:
    try:
        return input("/backfill ").strip()
    except EOFError:
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run_demo(parse_args(argv)))
