"""Multi-workspace mode end to end (issue 14), SQLite and PostgreSQL: the app runs with
`SLACK_CLIENT_ID`/`SLACK_CLIENT_SECRET`/`TOKEN_ENCRYPTION_KEY` and no bot token; workspaces
install it through the real OAuth redirect against fakeslack (Bolt's `/slack/install` page, the
authorize step, `/slack/oauth_redirect`), and each then runs backfills with its own token, its own
rows and its own replies; a workspace that never installed it is refused and changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from app.cli import rotate_key
from app.runtime import Runtime, StartupError, running_app
from app.settings import Settings, load_settings
from blocks import ids
from db.token_crypto import generate_key
from fakeslack import FakeSlack, OAuthConfig, Workspace, generate_workspaces
from fakeslack.browser import install_through_browser
from fakeslack.outgoing import (
    event_body,
    form_headers,
    interaction_body,
    json_headers,
    slash_command_body,
)
from tests.scenarios.harness import free_port
from tests.support.raw_dumps import dump_everything
from tests.support.waiting import eventually


@dataclass
class Multi:
    fake: FakeSlack
    rt: Runtime
    http: aiohttp.ClientSession
    workspaces: list[Workspace]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.rt.port}"

    async def install(self, ws: Workspace) -> str:
        """A workspace admin installs the app in the browser; the page the app shows at the end."""
        return await install_through_browser(self.http, self.base, ws.team_id)

    async def command(
        self, ws: Workspace, text_: str, user: str, *, org: str | None = None
    ) -> tuple[int, str]:
        """`/backfill text_` from `user` of `ws` (`org`: of this Grid organisation, which
        installed the app org-wide)."""
        body = slash_command_body(
            text_,
            team_id=ws.team_id,
            user_id=user,
            channel_id="C0SCENARIO",
            response_url=self.fake.new_response_url(user, "C0SCENARIO"),
            trigger_id=self.fake.team(ws.team_id).new_trigger_id(user),
            enterprise_id=org,
            is_enterprise_install=org is not None,
        )
        headers = form_headers(body, self.fake.signing_secret)
        async with self.http.post(f"{self.base}/slack/events", data=body, headers=headers) as r:
            return r.status, await r.text()

    async def open_home(self, ws: Workspace, user: str) -> str:
        """`app_home_opened` in `ws`; the text of the Home tab published for `user` there."""
        body = event_body(
            {
                "type": "app_home_opened",
                "user": user,
                "tab": "home",
                "channel": "D0SCENARIO",
                "event_ts": f"{time.time():.6f}",
            },
            team_id=ws.team_id,
        )
        headers = json_headers(body, self.fake.signing_secret)
        team = self.fake.team(ws.team_id)
        before = json.dumps(team.home_view(user))
        async with self.http.post(f"{self.base}/slack/events", data=body, headers=headers) as r:
            assert r.status == 200

        def published() -> str | None:
            now = json.dumps(team.home_view(user))
            return now if now != before else None

        return str(await eventually(published, 10, "the Home tab"))

    async def interact(self, ws: Workspace, user: str, kind: str, **fields: Any) -> tuple[int, str]:
        """An interaction payload of `kind` from `user` of `ws`, signed; (status, ack body)."""
        payload = {
            "type": kind,
            "team": {"id": ws.team_id, "domain": "fake"},
            "user": {"id": user, "username": user, "name": user, "team_id": ws.team_id},
            "api_app_id": ws.app_id,
            "token": "deprecated",
            "trigger_id": self.fake.team(ws.team_id).new_trigger_id(user),
            "is_enterprise_install": False,
            "enterprise": None,
            **fields,
        }
        body = interaction_body(payload)
        headers = form_headers(body, self.fake.signing_secret)
        async with self.http.post(f"{self.base}/slack/events", data=body, headers=headers) as r:
            return r.status, await r.text()

    async def click(self, ws: Workspace, user: str, action_id: str, value: str = "1") -> int:
        action = {"action_id": action_id, "block_id": "b", "type": "button", "value": value}
        view = {"id": "V0HOME", "type": "home", "blocks": [], "hash": "x", "team_id": ws.team_id}
        status, _ = await self.interact(
            ws,
            user,
            "block_actions",
            actions=[action],
            container={"type": "view", "view_id": "V0HOME"},
            view=view,
        )
        return status

    async def submit(self, ws: Workspace, user: str, callback_id: str) -> int:
        view = {
            "id": "V0MODAL",
            "type": "modal",
            "callback_id": callback_id,
            "blocks": [],
            "hash": "x",
            "team_id": ws.team_id,
            "private_metadata": "",
            "state": {"values": {}},
        }
        status, _ = await self.interact(ws, user, "view_submission", view=view, response_urls=[])
        return status

    async def snapshot(self) -> list[list[dict[str, Any]]]:
        return [
            await self.rows(f"SELECT * FROM {table}")
            for table in (
                "backfill_schedules",
                "backfill_job_runs",
                "messages",
                "installations",
                "channel_checkpoints",
            )
        ]

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.rt.sessions() as session:
            result = await session.execute(text(sql), params)
            return [dict(row._mapping) for row in result]

    async def runs_of(self, ws: Workspace) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT job_run_id, status, error_message FROM backfill_job_runs "
            "WHERE workspace_id = :w ORDER BY job_run_id",
            w=ws.team_id,
        )

    async def messages_of(self, ws: Workspace) -> int:
        found = await self.rows(
            "SELECT count(*) AS n FROM messages WHERE workspace_id = :w", w=ws.team_id
        )
        return int(found[0]["n"])


def admin_of(ws: Workspace) -> str:
    return next(
        u["id"]
        for u in ws.users.values()
        if u.get("is_primary_owner") and not u.get("is_bot") and not u.get("deleted")
    )


def multi_settings(
    fake: FakeSlack, port: int, database_url: str, tmp_path: Path, key: str
) -> Settings:
    config = fake.oauth_config
    return load_settings(
        {
            "SLACK_CLIENT_ID": config.client_id,
            "SLACK_CLIENT_SECRET": config.client_secret,
            "TOKEN_ENCRYPTION_KEY": key,
            "SLACK_SIGNING_SECRET": fake.signing_secret,
            "SLACK_API_URL": fake.base_url,
            "PORT": str(port),
            "DATABASE_URL": database_url,
            "CHROMA_PATH": str(tmp_path / "chroma"),
            "EMBEDDING": "hashing",
            "LOG_LEVEL": "WARNING",
        },
        env_file=None,
    )


@asynccontextmanager
async def serving_fake(
    port: int, *, grid: tuple[str, str] | None = None
) -> AsyncIterator[tuple[FakeSlack, list[Workspace]]]:
    """Three workspaces (of the Enterprise Grid organisation `grid` = (id, name) if given)."""
    # Their history ends now: a run's window (the last N days) holds it.
    workspaces = generate_workspaces(
        3, seed=40, users=8, channels=7, messages=150, now=time.time(), enterprise=grid is not None
    )
    config = OAuthConfig(redirect_urls=(f"http://127.0.0.1:{port}/slack/oauth_redirect",))
    async with FakeSlack.serving(
        workspaces, rate_limits=False, oauth=config, enterprise=grid
    ) as fake:
        yield fake, workspaces


@pytest.fixture
async def multi(database_url: str, tmp_path: Path) -> AsyncIterator[Multi]:
    port = free_port()
    async with serving_fake(port) as (fake, workspaces):
        settings = multi_settings(fake, port, database_url, tmp_path, generate_key())
        async with (
            running_app(settings, rate_minute_seconds=1.0) as rt,
            aiohttp.ClientSession() as http,
        ):
            yield Multi(fake, rt, http, workspaces)


async def test_workspaces_install_through_oauth_and_each_backfills_its_own_history(
    multi: Multi,
) -> None:
    first, second, never = multi.workspaces
    for ws in (first, second):
        page = await multi.install(ws)
        assert "Thank you" in page
    installed = await multi.rows("SELECT team_id, status FROM installations ORDER BY team_id")
    assert installed == sorted(
        [
            {"team_id": first.team_id, "status": "active"},
            {"team_id": second.team_id, "status": "active"},
        ],
        key=lambda r: r["team_id"],
    )

    for ws in (first, second):
        status, ack = await multi.command(ws, "run days=30", admin_of(ws))
        assert status == 200, ack

    async def both_done() -> bool:
        runs = [await multi.runs_of(ws) for ws in (first, second)]
        return all(r and r[-1]["status"] in ("success", "failed") for r in runs)

    await eventually(both_done, 60, "both workspaces' runs to end")
    for ws in (first, second):
        runs = await multi.runs_of(ws)
        assert [r["status"] for r in runs] == ["success"], runs
        assert await multi.messages_of(ws) > 0
        # Its own token read it: every call of its run is in its own workspace's log.
        history = multi.fake.team(ws.team_id).calls_of("conversations.history")
        assert history and all(c.status == 200 for c in history)

    # The workspace that never installed it: Bolt's authorize refuses, nothing is stored.
    status, ack = await multi.command(never, "run days=30", admin_of(never))
    assert status == 200

    def told() -> list[str]:
        texts = [json.dumps(p["body"]) for p in multi.fake.response_posts]
        return [t for t in texts if "not installed on this workspace" in t]

    assert await eventually(told, 10, "the refusal") and "Nothing was changed" in told()[0]
    assert await multi.runs_of(never) == []
    assert multi.fake.team(never.team_id).calls == []

    # No token, refresh token or client secret in any table.
    dump = await dump_everything(multi.rt.settings.database_url)
    assert "xoxb-" not in dump and "xoxe" not in dump
    assert multi.fake.oauth_config.client_secret not in dump


async def test_a_wrong_encryption_key_stops_the_start_with_one_line(
    multi: Multi, database_url: str, tmp_path: Path
) -> None:
    await multi.install(multi.workspaces[0])
    # Another process (its own port and Chroma folder) started with a key that is not the store's.
    wrong = multi_settings(
        multi.fake, free_port(), database_url, tmp_path / "second", generate_key()
    )
    with pytest.raises(StartupError) as refused:
        async with running_app(wrong):
            pass
    line = str(refused.value)
    assert "TOKEN_ENCRYPTION_KEY" in line and "\n" not in line


async def test_uninstall_mid_run_stops_the_run_pauses_the_schedule_and_spares_the_others(
    multi: Multi,
) -> None:
    gone, kept, _ = multi.workspaces
    for ws in (gone, kept):
        await multi.install(ws)
    multi.fake.configure_events(
        mode="http", url=f"{multi.base}/slack/events", retry_delays=(0.05, 0.05, 0.05)
    )
    for ws in (gone, kept):
        status, _ack = await multi.command(ws, 'schedule "0 3 * * *" days=30', admin_of(ws))
        assert status == 200
    await eventually(
        lambda: multi.rows("SELECT workspace_id FROM backfill_schedules WHERE is_active"),
        10,
        "schedules",
    )
    multi.fake.faults.slow(0.3, method="conversations.history")  # runs last long enough
    for ws in (gone, kept):
        await multi.command(ws, "run days=30", admin_of(ws))

    async def running(ws: Workspace) -> bool:
        runs = await multi.runs_of(ws)
        return bool(runs) and runs[-1]["status"] == "running"

    await eventually(lambda: running(gone), 20, "the run to start")
    pages_before = len(multi.fake.team(gone.team_id).calls_of("conversations.history"))
    multi.fake.uninstall(gone.team_id)

    async def ended(ws: Workspace) -> dict[str, Any] | None:
        runs = await multi.runs_of(ws)
        return runs[-1] if runs and runs[-1]["status"] != "running" else None

    stopped = await eventually(lambda: ended(gone), 30, "the uninstalled workspace's run to stop")
    assert stopped["status"] == "failed", stopped
    # Its next call had no token any more (or Slack refused the revoked one): said in words.
    assert (
        "not_installed" in stopped["error_message"] or "token_revoked" in stopped["error_message"]
    )
    # Within a page: at most the page in flight and one refused call after the uninstall.
    pages_after = multi.fake.team(gone.team_id).calls_of("conversations.history")
    assert len([c for c in pages_after if c.status == 200]) <= pages_before + 1

    async def tokens_gone() -> bool:
        rows = await multi.rows(
            "SELECT status, bot_token_encrypted FROM installations WHERE team_id = :t",
            t=gone.team_id,
        )
        return rows == [{"status": "revoked", "bot_token_encrypted": None}]

    await eventually(tokens_gone, 10, "the tokens to be deleted")
    schedules = await multi.rows(
        "SELECT workspace_id, is_active, paused_reason FROM backfill_schedules ORDER BY workspace_id"
    )
    by_team = {r["workspace_id"]: r for r in schedules}
    assert by_team[gone.team_id]["is_active"] in (False, 0)
    # Paused by the uninstall, or by the run that met the missing token: either says why.
    reason = by_team[gone.team_id]["paused_reason"] or ""
    assert "uninstalled" in reason or "not_installed" in reason or "token_revoked" in reason
    assert by_team[kept.team_id]["is_active"] in (True, 1)

    # The other workspace is unaffected: its run completes with its own token.
    multi.fake.faults.clear()
    kept_run = await eventually(lambda: ended(kept), 60, "the other workspace's run")
    assert kept_run["status"] == "success"
    # And the removed workspace is now refused, changing nothing.
    before = await multi.runs_of(gone)
    await multi.command(gone, "run days=30", admin_of(gone))
    assert await multi.runs_of(gone) == before


async def test_a_run_refused_invalid_auth_marks_the_install_and_app_home_says_to_reinstall(
    multi: Multi,
) -> None:
    ws, other, _ = multi.workspaces
    for each in (ws, other):
        await multi.install(each)
    assert "must be reinstalled" not in await multi.open_home(ws, admin_of(ws))
    multi.fake.faults.api_error("invalid_auth", method="conversations.history", count=1)
    await multi.command(ws, "run days=30", admin_of(ws))

    async def ended() -> dict[str, Any] | None:
        runs = await multi.runs_of(ws)
        return runs[-1] if runs and runs[-1]["status"] != "running" else None

    run = await eventually(ended, 30, "the run to end")
    assert run["status"] == "failed" and "invalid_auth" in run["error_message"]

    async def marked() -> dict[str, Any] | None:
        # The install is marked right after the run's end is written (its own transaction).
        rows = await multi.rows(
            "SELECT team_id, status, status_reason FROM installations ORDER BY team_id"
        )
        found = {r["team_id"]: r for r in rows}
        return found if found[ws.team_id]["status"] != "active" else None

    by_team = await eventually(marked, 10, "the install to be marked")
    assert (by_team[ws.team_id]["status"], by_team[ws.team_id]["status_reason"]) == (
        "needs_reinstall",
        "invalid_auth",
    )
    assert by_team[other.team_id]["status"] == "active"
    home = await multi.open_home(ws, admin_of(ws))
    assert "must be reinstalled" in home and "invalid_auth" in home
    assert "must be reinstalled" not in await multi.open_home(other, admin_of(other))


# Every sub-command, and every button and form the app shows, as a workspace may send them.
COMMANDS = (
    "",
    "help",
    "schedule",
    'schedule "0 4 * * *" days=3',
    "run",
    "run days=3",
    "status",
    "list",
    "pause",
    "resume",
    "delete",
    "cancel",
    "history 3",
    "search deploy",
    "purge",
)
BUTTONS = (
    ids.HOME_SCHEDULE_CREATE,
    ids.HOME_SCHEDULE_EDIT,
    ids.HOME_SCHEDULE_PAUSE,
    ids.HOME_SCHEDULE_RESUME,
    ids.HOME_SCHEDULE_DELETE,
    ids.HOME_RUN_NOW,
    ids.HOME_CANCEL_RUN,
    ids.HOME_REFRESH,
    ids.HOME_SEARCH_OPEN,
    ids.DM_RETRY_RUN,
    ids.DM_CANCEL_RUN,
    ids.REPLY_CANCEL_RUN,
    ids.SEARCH_MORE,
    ids.PURGE_CONFIRM,
    ids.PURGE_CANCEL,
)
FORMS = (ids.SCHEDULE_MODAL, ids.RUN_MODAL, ids.SEARCH_MODAL)


async def test_a_workspace_that_never_installed_is_refused_everything_and_nothing_changes(
    multi: Multi,
) -> None:
    installed, _, never = multi.workspaces
    await multi.install(installed)
    await multi.command(installed, 'schedule "0 3 * * *" days=30', admin_of(installed))
    await multi.command(installed, "run days=30", admin_of(installed))

    async def settled() -> bool:
        runs = await multi.runs_of(installed)
        return bool(runs) and runs[-1]["status"] == "success"

    await eventually(settled, 30, "the installed workspace's run")
    before = await multi.snapshot()
    admin = admin_of(never)
    for text_ in COMMANDS:
        status, _ = await multi.command(never, text_, admin)
        assert status == 200, text_
    for action_id in BUTTONS:
        assert await multi.click(never, admin, action_id) == 200, action_id
    for callback_id in FORMS:
        assert await multi.submit(never, admin, callback_id) == 200, callback_id
    home = event_body(
        {"type": "app_home_opened", "user": admin, "tab": "home", "channel": "D0X"},
        team_id=never.team_id,
    )
    async with multi.http.post(
        f"{multi.base}/slack/events",
        data=home,
        headers=json_headers(home, multi.fake.signing_secret),
    ) as r:
        assert r.status == 200
    assert await multi.snapshot() == before
    # Nothing was asked of Slack in its name: no token of it exists.
    assert multi.fake.team(never.team_id).calls == []
    assert multi.fake.team(never.team_id).home_view(admin) is None


async def test_each_workspace_is_answered_with_its_own_data_only(multi: Multi) -> None:
    first, second, _ = multi.workspaces
    for ws in (first, second):
        await multi.install(ws)
        await multi.command(ws, "run days=30", admin_of(ws))

    async def done(ws: Workspace) -> bool:
        runs = await multi.runs_of(ws)
        return bool(runs) and runs[-1]["status"] == "success"

    for ws in (first, second):
        await eventually(lambda ws=ws: done(ws), 30, "its run")
    await multi.command(first, 'schedule "0 5 * * *" days=2', admin_of(first))
    await eventually(
        lambda: multi.rows("SELECT workspace_id FROM backfill_schedules"), 10, "the schedule"
    )
    assert await multi.rows("SELECT workspace_id FROM backfill_schedules") == [
        {"workspace_id": first.team_id}
    ]
    own = {ws.team_id: (await multi.runs_of(ws))[0]["job_run_id"] for ws in (first, second)}

    async def reply(ws: Workspace, text_: str) -> str:
        seen = len(multi.fake.response_posts)
        await multi.command(ws, text_, admin_of(ws))

        def posted() -> str | None:
            new = multi.fake.response_posts[seen:]
            return json.dumps(new[0]["body"]) if new else None

        return str(await eventually(posted, 10, f"the reply to {text_}"))

    for ws, other in ((first, second), (second, first)):
        history = await reply(ws, "history 5")
        listing = await reply(ws, "list")
        assert f"#{own[ws.team_id]}" in history and f"#{own[other.team_id]}" not in history
        if ws is first:
            assert "0 5 * * *" in listing or "5:00" in listing
        else:
            assert "no schedule" in listing.lower()
        home = await multi.open_home(ws, admin_of(ws))
        assert f"#{own[ws.team_id]}" in home and f"#{own[other.team_id]}" not in home
    # A request signed for one workspace that names another one in its payload is refused.
    before = await multi.snapshot()
    status, _ = await multi.interact(
        first,
        admin_of(first),
        "block_actions",
        actions=[{"action_id": ids.HOME_RUN_NOW, "block_id": "b", "type": "button"}],
        container={"type": "view", "view_id": "V0HOME"},
        view={"id": "V0HOME", "type": "home", "blocks": [], "team_id": second.team_id},
    )
    assert status == 200
    assert await multi.snapshot() == before
    assert multi.fake.team(first.team_id).modal_stack(admin_of(first)) == []


async def test_key_rotation_keeps_every_installation_working(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    old, new = generate_key(), generate_key()
    async with serving_fake(port) as (fake, workspaces), aiohttp.ClientSession() as http:
        first, second, _ = workspaces
        settings = multi_settings(fake, port, database_url, tmp_path, old)
        async with running_app(settings, rate_minute_seconds=1.0) as rt:
            for ws in (first, second):
                await install_through_browser(http, f"http://127.0.0.1:{rt.port}", ws.team_id)
        both = multi_settings(fake, port, database_url, tmp_path, f"{new},{old}")
        assert await rotate_key(both) == 2
        # The old key can go: the app starts with the new one alone, and both workspaces work.
        only_new = multi_settings(fake, port, database_url, tmp_path, new)
        async with running_app(only_new, rate_minute_seconds=1.0) as rt:
            multi = Multi(fake, rt, http, workspaces)
            for ws in (first, second):
                await multi.command(ws, "run days=30", admin_of(ws))

            async def done() -> bool:
                runs = [await multi.runs_of(ws) for ws in (first, second)]
                return all(r and r[-1]["status"] == "success" for r in runs)

            await eventually(done, 60, "both runs with the rotated key")
        # And the old key alone no longer starts the app.
        with pytest.raises(StartupError):
            async with running_app(multi_settings(fake, port, database_url, tmp_path, old)):
                pass


async def test_an_org_wide_install_serves_each_workspace_of_the_organisation(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    org = ("E0GRID0001", "Grid Org")
    async with (
        serving_fake(port, grid=org) as (fake, workspaces),
        aiohttp.ClientSession() as http,
    ):
        settings = multi_settings(fake, port, database_url, tmp_path, generate_key())
        async with running_app(settings, rate_minute_seconds=1.0) as rt:
            multi = Multi(fake, rt, http, workspaces)
            await install_through_browser(http, multi.base, workspaces[0].team_id, org=True)
            installed = await multi.rows(
                "SELECT install_key, team_id, is_enterprise_install FROM installations"
            )
            assert [(r["install_key"], r["team_id"]) for r in installed] == [(f"{org[0]}:", None)]
            first, second, _ = workspaces
            for ws in (first, second):
                status, _ack = await multi.command(ws, "run days=30", admin_of(ws), org=org[0])
                assert status == 200

            async def done() -> bool:
                runs = [await multi.runs_of(ws) for ws in (first, second)]
                return all(r and r[-1]["status"] in ("success", "failed") for r in runs)

            await eventually(done, 60, "both workspaces' runs")
            for ws in (first, second):
                runs = await multi.runs_of(ws)
                assert [r["status"] for r in runs] == ["success"], runs
                assert await multi.messages_of(ws) > 0
            # Each workspace's row names its organisation (how a scheduled run finds the token).
            rows = await multi.rows("SELECT workspace_id, enterprise_id FROM workspaces")
            assert {r["workspace_id"]: r["enterprise_id"] for r in rows} == {
                first.team_id: org[0],
                second.team_id: org[0],
            }
