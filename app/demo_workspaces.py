"""`python -m app demo --workspaces N`: the app in multi-workspace mode against fakeslack serving N
generated workspaces. Each is installed through the real OAuth redirect (Bolt's install page,
fakeslack's authorize page, the app's redirect URL), then every admin starts a backfill at the
same moment; the runs go side by side, each with its own token and its own Slack rate budget,
and each workspace's store is checked against its generator's ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable

import aiohttp

from app.runtime import Runtime, running_app
from app.settings import Settings, load_settings
from db.messages import count_messages
from db.token_crypto import generate_key
from fakeslack import FakeSlack, OAuthConfig, Workspace, generate_workspaces, ground_truth
from fakeslack.browser import install_through_browser
from fakeslack.outgoing import form_headers, slash_command_body


def settings_for(fake: FakeSlack, config: OAuthConfig, port: int, demo_dir: str) -> Settings:
    """Multi-workspace mode on the embedded defaults, in the demo's folder."""
    overrides = {
        "SLACK_CLIENT_ID": config.client_id,
        "SLACK_CLIENT_SECRET": config.client_secret,
        "TOKEN_ENCRYPTION_KEY": generate_key(),  # a fresh store: a fresh key
        "SLACK_SIGNING_SECRET": fake.signing_secret,
        "SLACK_API_URL": fake.base_url,
        "PORT": str(port),
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or f"sqlite+aiosqlite:///{demo_dir}/backfill.db",
        "CHROMA_PATH": os.environ.get("CHROMA_PATH") or f"{demo_dir}/chroma",
        "EMBEDDING": os.environ.get("EMBEDDING") or "hashing",
    }
    environ = {**os.environ, **overrides}
    for name in ("SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"):
        environ.pop(name, None)
    return load_settings(environ, env_file=None)


def admin_of(ws: Workspace) -> str:
    return next(
        str(u["id"]) for u in ws.users.values() if u.get("is_primary_owner") and not u.get("is_bot")
    )


async def start_run(
    http: aiohttp.ClientSession, rt: Runtime, fake: FakeSlack, ws: Workspace, days: int
) -> int:
    user = admin_of(ws)
    body = slash_command_body(
        f"run days={days}",
        team_id=ws.team_id,
        user_id=user,
        response_url=fake.new_response_url(user, "C0DEMO"),
        trigger_id=fake.team(ws.team_id).new_trigger_id(user),
    )
    url = f"http://127.0.0.1:{rt.port}/slack/events"
    async with http.post(url, data=body, headers=form_headers(body, fake.signing_secret)) as resp:
        return resp.status


async def run_workspaces_demo(
    args: argparse.Namespace, demo_dir: str, port: int, show: Callable[[str], None]
) -> int:
    count = args.workspaces
    per = max(200, args.messages // count)
    print(f"Generating {count} workspaces: {args.channels} channels, ~{per:,} messages each …")
    workspaces = generate_workspaces(
        count, seed=args.seed, users=20, channels=args.channels, messages=per, days=args.days
    )
    config = OAuthConfig(redirect_urls=(f"http://127.0.0.1:{port}/slack/oauth_redirect",))
    fake = FakeSlack.serving(workspaces, oauth=config, time_compression=60.0)
    await fake.start()
    try:
        settings = settings_for(fake, config, port, demo_dir)
        async with (
            running_app(settings, rate_minute_seconds=1.0) as rt,
            aiohttp.ClientSession() as http,
        ):
            base = f"http://127.0.0.1:{rt.port}"
            show("Installing the app in each workspace through the OAuth redirect")
            for ws in workspaces:
                page = await install_through_browser(http, base, ws.team_id)
                done = "Thank you" in page
                print(f"  {ws.team_id} ({ws.team_name}): {'installed' if done else page[:80]}")
            show(f"Every admin starts /backfill run days={args.days} at the same moment")
            started = time.monotonic()
            statuses = await asyncio.gather(
                *(start_run(http, rt, fake, ws, args.days) for ws in workspaces)
            )
            print(f"  acknowledged: {statuses}")
            runs = rt.workspaces.for_workspace(workspaces[0].team_id).runs
            while any([await runs.current(ws.team_id) for ws in workspaces]) or not all(
                [await runs.history(ws.team_id, 1) for ws in workspaces]
            ):
                await asyncio.sleep(0.5)
            print(f"  all runs ended in {time.monotonic() - started:.1f} s")
            show("Each workspace: its run, its store, its own Slack calls")
            ok = True
            for ws in workspaces:
                last = (await runs.history(ws.team_id, 1))[0]
                async with rt.sessions() as session:
                    stored = await count_messages(session, ws.team_id)
                expected = len(ground_truth(ws, args.days).must_store)
                calls = len(fake.team(ws.team_id).calls)
                same = stored == expected and last.status == "success"
                ok = ok and same
                print(
                    f"  {ws.team_id}: run #{last.job_run_id} {last.status}, {stored:,} stored "
                    f"(ground truth {expected:,}) {'OK' if same else 'MISMATCH'}, "
                    f"{calls} calls with its own token"
                )
            return 0 if ok else 1
    finally:
        await fake.stop()
