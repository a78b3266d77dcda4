"""Plays Slack's side for scenario tests: the app in-process (real HTTP, real stores) against
fakeslack, signed requests sent as a given user, and what Slack received afterwards.

`start_scenario(...)` yields a `Scenario`: `.command(text, user)`, `.click(...)`, `.submit(...)`,
`.home_opened(user)` each return a `Seen` (the HTTP status, the ack body, then the response_url
posts, views, messages and ephemerals that reached fakeslack once the app went quiet).
Every view and message fakeslack received is validated through `slack_sdk.models` on exit.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlalchemy import text

from app.runtime import Runtime, running_app
from app.settings import load_settings
from blocks import ids
from fakeslack import FakeSlack, generate
from fakeslack.outgoing import (
    event_body,
    form_headers,
    interaction_body,
    json_headers,
    slash_command_body,
)
from tests.support import waiting
from tests.support.block_trees import strings

OTHER_TEAM = "T0OTHERTEAM"
QUIET_S = 0.2  # the app is done with a request once nothing new reached Slack for this long
MAX_WAIT_S = 8.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- what Slack received -------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def validate_view(view: dict[str, Any]) -> None:
    """Slack's limits on a view (title, blocks, metadata…): raises if `to_dict()` refuses it."""
    View(**view).to_dict()


def validate_blocks(blocks: Any) -> None:
    for raw in _json(blocks) or []:
        block = Block.parse(raw)
        assert block is not None, f"unknown block type: {raw}"
        block.to_dict()  # runs slack_sdk's validators (text lengths, ids, …)


def block_text(blocks: Any) -> str:
    """Every string inside `blocks` (texts, button labels, values), joined: for `in` checks."""
    return "\n".join(strings(_json(blocks)))


def find_element(blocks: Any, action_id: str) -> tuple[str, dict[str, Any]] | None:
    """`(block_id, element)` of the interactive element with `action_id`, if shown."""
    for block in _json(blocks) or []:
        candidates = list(block.get("elements") or [])
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    return None


def action_ids(blocks: Any) -> set[str]:
    found: set[str] = set()
    for block in _json(blocks) or []:
        for element in list(block.get("elements") or []) + [block.get("accessory") or {}]:
            if isinstance(element, dict) and element.get("action_id"):
                found.add(str(element["action_id"]))
    return found


@dataclass
class Seen:
    """One request as Slack lived it."""

    status: int
    ack: Any  # the parsed JSON body of the acknowledgement, "" when empty
    ack_ms: float
    responses: list[dict[str, Any]] = field(default_factory=list)  # response_url bodies
    views: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "user", "view"}
    posts: list[dict[str, Any]] = field(default_factory=list)  # messages, updates, ephemerals

    @property
    def ack_text(self) -> str:
        if isinstance(self.ack, dict):
            return f"{self.ack.get('text', '')}\n{block_text(self.ack.get('blocks'))}"
        return str(self.ack or "")

    def reply_text(self) -> str:
        """The ack and every response_url post, as text."""
        parts = [self.ack_text]
        for body in self.responses:
            parts.append(f"{body.get('text', '')}\n{block_text(body.get('blocks'))}")
        return "\n".join(parts)

    def views_of(self, kind: str) -> list[dict[str, Any]]:
        return [v["view"] for v in self.views if v["kind"] == kind]

    @property
    def opened(self) -> list[dict[str, Any]]:
        return self.views_of("open")

    @property
    def updated(self) -> list[dict[str, Any]]:
        return self.views_of("update")

    @property
    def published(self) -> list[dict[str, Any]]:
        return self.views_of("publish")

    def messages(self, kind: str = "message") -> list[dict[str, Any]]:
        return [p for p in self.posts if p["kind"] == kind]

    def nothing_reached_slack(self) -> bool:
        return not (self.responses or self.views or self.posts)


# --- the scenario --------------------------------------------------------------------------------


class Scenario:
    """The running app, the fake Slack, and the people of the generated workspace."""

    def __init__(self, fake: FakeSlack, rt: Runtime, http: aiohttp.ClientSession) -> None:
        self.fake, self.rt, self.http = fake, rt, http
        self.url = f"http://127.0.0.1:{rt.port}/slack/events"
        humans = [
            u
            for u in fake.workspace.users.values()
            if not u.get("is_bot") and not u.get("deleted") and u["id"] != "USLACKBOT"
        ]
        self.admin = next(u["id"] for u in humans if u.get("is_primary_owner"))
        members = [
            u["id"]
            for u in humans
            if not (u.get("is_admin") or u.get("is_owner") or u.get("is_primary_owner"))
            and not u.get("is_restricted")
            and not u.get("is_ultra_restricted")
        ]
        self.member, self.member2 = members[0], members[1]
        self.channels = {
            c.name: c.id
            for c in fake.workspace.channels.values()
            if not c.is_im and not c.is_archived and not getattr(c, "is_private", False)
        }

    @property
    def team_id(self) -> str:
        return self.fake.team_id

    # -- sending ----------------------------------------------------------------------------------
    def _marks(self) -> tuple[int, int, int]:
        return (len(self.fake.response_posts), len(self.fake.view_events), len(self.fake.posts))

    async def settle(
        self,
        since: tuple[int, int, int] | None = None,
        *,
        quiet: float = QUIET_S,
        limit: float = MAX_WAIT_S,
        expect: bool = False,
    ) -> None:
        """Wait until nothing new reached Slack for `quiet` seconds (at most `limit`); with
        `expect`, first until something new arrived since `since` (the listener answers after
        its ack, and on SQLite its reads can queue behind a run's page commits)."""
        deadline = time.monotonic() + limit
        if expect and since is not None:
            # A command answers with a response_url post or a view; a DM alone is not the answer.
            while self._marks()[:2] == since[:2] and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        last, stable_since = self._marks(), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.03)
            now = self._marks()
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return

    def _seen_since(self, marks: tuple[int, int, int], status: int, ack: Any, ms: float) -> Seen:
        r, v, p = marks
        return Seen(
            status,
            ack,
            ms,
            responses=[x["body"] for x in self.fake.response_posts[r:]],
            views=list(self.fake.view_events[v:]),
            posts=list(self.fake.posts[p:]),
        )

    async def post(
        self,
        body: str,
        headers: dict[str, str],
        *,
        settle: bool = True,
        expect_after_empty_ack: bool = False,
    ) -> Seen:
        """Send one signed request. With `expect_after_empty_ack`, an empty ack means the
        listener answers afterwards: wait for that answer before waiting for quiet."""
        marks = self._marks()
        started = time.monotonic()
        async with self.http.post(self.url, data=body, headers=headers) as resp:
            raw = await resp.text()
            ms = (time.monotonic() - started) * 1000
            status = resp.status
        ack: Any = _json(raw) if raw else ""
        if settle:
            await self.settle(marks, expect=expect_after_empty_ack and ack == "" and status == 200)
        return self._seen_since(marks, status, ack, ms)

    async def command(
        self,
        text_: str,
        user: str,
        *,
        team_id: str | None = None,
        channel_id: str = "C0SCENARIO",
        settle: bool = True,
    ) -> Seen:
        body, headers = self.signed_command(text_, user, team_id=team_id, channel_id=channel_id)
        return await self.post(
            body, headers, settle=settle, expect_after_empty_ack=team_id in (None, self.team_id)
        )

    def signed_command(
        self,
        text_: str,
        user: str,
        *,
        team_id: str | None = None,
        channel_id: str = "C0SCENARIO",
    ) -> tuple[str, dict[str, str]]:
        """The form body of `/backfill text_` from `user` and its signed headers, unsent."""
        body = slash_command_body(
            text_,
            team_id=team_id or self.team_id,
            user_id=user,
            channel_id=channel_id,
            response_url=self.fake.new_response_url(user, channel_id),
            trigger_id=self.fake.new_trigger_id(user),
        )
        return body, form_headers(body, self.fake.signing_secret)

    async def home_opened(
        self, user: str, *, team_id: str | None = None, answered: bool | None = None
    ) -> Seen:
        """`app_home_opened` by `user`. Unless `answered` says otherwise, a Home tab is waited for
        when the event comes from this workspace."""
        body = event_body(
            {
                "type": "app_home_opened",
                "user": user,
                "tab": "home",
                "channel": "D0SCENARIO",
                "event_ts": f"{time.time():.6f}",
            },
            team_id=team_id or self.team_id,
        )
        if answered is None:
            answered = team_id in (None, self.team_id)
        return await self.post(
            body, json_headers(body, self.fake.signing_secret), expect_after_empty_ack=answered
        )

    async def open_home(self, user: str) -> dict[str, Any]:
        seen = await self.home_opened(user)
        assert seen.status == 200
        assert seen.published, "no Home tab was published on app_home_opened"
        home = self.fake.home_view(user)
        assert home is not None
        return home

    async def click(
        self,
        user: str,
        action_id: str,
        *,
        surface: dict[str, Any] | None = None,
        blocks: Any = None,
        value: str | None = None,
        selected: dict[str, Any] | None = None,
        container: str = "view",
        message: dict[str, Any] | None = None,
        team_id: str | None = None,
        ephemeral: bool = False,
        settle: bool = True,
        keep_view_team: bool = False,
    ) -> Seen:
        """A `block_actions` payload as Slack sends it when `user` clicks `action_id`.

        `surface` is the view (Home tab or modal) the button sits in; `message` the message
        (a DM, an ephemeral reply) for container "message". The button's block id and value
        are taken from what is shown unless given (forged payloads give them)."""
        team = team_id or self.team_id
        shown_blocks = (
            blocks
            if blocks is not None
            else (
                (surface or {}).get("blocks")
                if container == "view"
                else (message or {}).get("blocks")
            )
        )
        found = find_element(shown_blocks, action_id) if shown_blocks is not None else None
        block_id, element = found if found else ("forged", {"type": "button"})
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if value is not None or element.get("value") is not None:
            action["value"] = value if value is not None else element.get("value")
        if selected is not None:
            action["type"] = "static_select"
            action["selected_option"] = selected
        payload = {**self._interaction("block_actions", user, team), "actions": [action]}
        if container == "view":
            view = surface or {"id": "V0FORGED", "type": "home", "blocks": [], "hash": "x"}
            if team != self.team_id and not keep_view_team:  # a view of that other workspace
                view = {**view, "team_id": team, "app_installed_team_id": team}
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = view
        else:
            msg = message or {}
            channel = str(msg.get("channel") or "D0SCENARIO")
            payload["container"] = {
                "type": "message",
                "message_ts": msg.get("ts", "1.1"),
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            }
            payload["channel"] = {"id": channel, "name": "directmessage"}
            payload["message"] = {k: v for k, v in msg.items() if k in ("ts", "text", "blocks")}
            payload["response_url"] = self.fake.new_response_url(user, channel)
        return await self._interact(payload, team, settle)

    async def submit(
        self,
        user: str,
        view: dict[str, Any],
        values: dict[str, Any],
        *,
        team_id: str | None = None,
        settle: bool = True,
        keep_view_team: bool = False,
    ) -> Seen:
        """A `view_submission` of `view` (as fakeslack holds it) with `values` as its state."""
        team = team_id or self.team_id
        submitted = {**view, "state": {"values": values}}
        if team != self.team_id and not keep_view_team:  # a view of that other workspace
            submitted.update(team_id=team, app_installed_team_id=team)
        payload = {
            **self._interaction("view_submission", user, team),
            "view": submitted,
            "response_urls": [],
        }
        return await self._interact(payload, team, settle)

    async def click_retry(self, user: str, job_run_id: int, *, team_id: str | None = None) -> Seen:
        """A click on the Retry now button of run `job_run_id`'s failure DM (a message of the
        bot's DM with `user`, as any client could send it)."""
        return await self.click(
            user,
            ids.DM_RETRY_RUN,
            container="message",
            message={"ts": "1.1", "blocks": []},
            value=str(job_run_id),
            team_id=team_id,
        )

    def _interaction(self, kind: str, user: str, team: str) -> dict[str, Any]:
        """The fields of every interaction payload `user` of workspace `team` sends."""
        return {
            "type": kind,
            "team": {"id": team, "domain": "fake"},
            "user": {"id": user, "username": user, "name": user, "team_id": team},
            "api_app_id": self.fake.workspace.app_id,
            "token": "deprecated",
            "trigger_id": self.fake.new_trigger_id(user),
            "is_enterprise_install": False,
            "enterprise": None,
        }

    async def _interact(self, payload: dict[str, Any], team: str, settle: bool) -> Seen:
        body = interaction_body(payload)
        return await self.post(
            body,
            form_headers(body, self.fake.signing_secret),
            settle=settle,
            expect_after_empty_ack=team == self.team_id,
        )

    # -- waiting on the app -----------------------------------------------------------------------
    async def eventually(
        self, predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition"
    ) -> Any:
        return await waiting.eventually(predicate, timeout, what)

    async def wait_run_status(
        self, job_run_id: int, *statuses: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            row = await self.run_row(job_run_id)
            return row if row and row["status"] in statuses else None

        return await self.eventually(
            check, timeout=timeout, what=f"run #{job_run_id} to become {statuses}"
        )

    async def wait_running(self, timeout: float = 10.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            rows = [r for r in await self.runs() if r["status"] == "running"]
            return rows[0] if rows else None

        return await self.eventually(check, timeout=timeout, what="a running run")

    async def idle(self, timeout: float = 60.0) -> None:
        await self.rt.deps.runs.wait_idle(timeout)
        await self.settle()

    def slow_history(self, seconds: float = 0.4) -> None:
        """Every conversations.history page answers late: runs last long enough to act on them."""
        self.fake.faults.slow(seconds, method="conversations.history")

    def fast_again(self) -> None:
        self.fake.faults.clear()

    # -- the database -----------------------------------------------------------------------------
    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.rt.sessions() as session:
            result = await session.execute(text(sql), params)
            return [dict(r._mapping) for r in result]

    async def inbox_rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """`rows` from the live mirror's inbox tables (a SQLite store's inbox is its own file)."""
        async with self.rt.inbox_sessions() as session:
            result = await session.execute(text(sql), params)
            return [dict(r._mapping) for r in result]

    async def schedules(self) -> list[dict[str, Any]]:
        return await self.rows("SELECT * FROM backfill_schedules ORDER BY schedule_id")

    async def runs(self) -> list[dict[str, Any]]:
        return await self.rows("SELECT * FROM backfill_job_runs ORDER BY job_run_id")

    async def run_row(self, job_run_id: int) -> dict[str, Any] | None:
        rows = await self.rows(
            "SELECT * FROM backfill_job_runs WHERE job_run_id = :id", id=job_run_id
        )
        return rows[0] if rows else None

    async def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Both contract tables, for "nothing changed" checks."""
        return await self.schedules(), await self.runs()

    # -- what the app sent, for validation --------------------------------------------------------
    def dm_messages(self, user: str) -> list[dict[str, Any]]:
        """The bot's DM with `user` as it reads now (updates applied), oldest first, each with
        its `channel` so a button in it can be clicked."""
        channel = self.fake.workspace.dm_by_user.get(user)
        return [{**m, "channel": channel} for m in self.fake.dms(user)]

    async def dm_with(self, user: str, needle: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """The newest DM to `user` whose text holds `needle` (waits for it)."""

        def find() -> dict[str, Any] | None:
            hits = [
                m
                for m in self.dm_messages(user)
                if needle in f"{m.get('text', '')}\n{block_text(m.get('blocks'))}"
            ]
            return hits[-1] if hits else None

        return await self.eventually(find, timeout=timeout, what=f"a DM to {user} with {needle!r}")

    def validate_everything(self) -> int:
        """Validate every view and every message block the app sent; return how many."""
        checked = 0
        for method in ("views.open", "views.update", "views.publish", "views.push"):
            for call in self.fake.calls_of(method):
                view = _json(call.args.get("view"))
                if isinstance(view, dict):
                    validate_view(view)
                    checked += 1
        for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            for call in self.fake.calls_of(method):
                if call.args.get("blocks") is not None:
                    validate_blocks(call.args["blocks"])
                    checked += 1
        for post in self.fake.response_posts:
            body = post["body"]
            if isinstance(body, dict) and body.get("blocks") is not None:
                validate_blocks(body["blocks"])
                checked += 1
        return checked


def scenario_settings(fake: FakeSlack, database_url: str, tmp_path: Path, **env: str) -> Any:
    return load_settings(
        {
            "SLACK_BOT_TOKEN": fake.bot_token,
            "SLACK_SIGNING_SECRET": fake.signing_secret,
            "SLACK_API_URL": fake.base_url,
            "PORT": str(free_port()),
            "DATABASE_URL": database_url,
            "CHROMA_PATH": str(tmp_path / "chroma"),
            "EMBEDDING": "hashing",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        env_file=None,
    )


@asynccontextmanager
async def start_scenario(
    database_url: str, tmp_path: Path, *, seed: int = 11, messages: int = 1500, **env: str
) -> AsyncIterator[Scenario]:
    workspace = generate(seed=seed, users=30, channels=6, messages=messages, days=20)
    fake = FakeSlack(workspace, time_compression=60)
    await fake.start()
    try:
        settings = scenario_settings(fake, database_url, tmp_path, **env)
        async with (
            running_app(settings, rate_minute_seconds=1.0) as rt,
            aiohttp.ClientSession() as http,
        ):
            scenario = Scenario(fake, rt, http)
            # Progress DMs change at most every 3 s (Slack's chat.update tier); 1 s keeps the
            # suite short and still exercises the pacing.
            notifier = getattr(rt.deps.runs, "_notifier", None)
            if notifier is not None:
                notifier.progress_interval_s = 1.0
            try:
                yield scenario
            finally:
                fake.faults.clear()
                await scenario.settle(quiet=0.05, limit=1.0)
        scenario.validate_everything()
    finally:
        await fake.stop()
