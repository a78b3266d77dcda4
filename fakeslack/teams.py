"""One workspace as FakeSlack serves it: its data, its Web API, views, call log and changes.

`TeamState` is what every served workspace offers tests (the primary one is `FakeSlack` itself,
others are `Team`s made by `FakeSlack.add_workspace`); all of them share the app's one event
delivery and Socket Mode server, since one app has one Request URL. Imports nothing of the app.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fakeslack.api import Api
from fakeslack.events import EventDelivery
from fakeslack.live import LiveWorkspace
from fakeslack.pagination import Cursors
from fakeslack.recorder import Call, Recorder
from fakeslack.socket_mode import SocketModeServer
from fakeslack.spec import Profile
from fakeslack.views import ViewStore
from fakeslack.workspace import Message, Workspace


class TeamState(LiveWorkspace):
    """A served workspace: read what the app did there (calls, posts, DMs, views) and change
    it as people would (`LiveWorkspace`'s methods, whose events carry this team's id)."""

    api: Api
    recorder: Recorder
    view_store: ViewStore
    enterprise_id: str | None = None
    enterprise_name: str | None = None

    @property
    def team_id(self) -> str:
        return self.workspace.team_id

    def new_trigger_id(self, user_id: str) -> str:
        """A trigger id for `user_id`, as Slack puts in an interaction payload (3 s, single use)."""
        return self.view_store.new_trigger_id(user_id)

    @property
    def calls(self) -> list[Call]:
        return self.recorder.calls

    def calls_of(self, method: str) -> list[Call]:
        return self.recorder.calls_of(method)

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        return self.recorder.counters_dict()

    @property
    def posts(self) -> list[dict[str, Any]]:
        return self.recorder.posts

    @property
    def view_events(self) -> list[dict[str, Any]]:
        return self.recorder.views

    def dms(self, user_id: str) -> list[Message]:
        """Messages currently in the bot's DM with `user_id`, oldest first (updates applied)."""
        with self.workspace.lock:
            dm_id = self.workspace.dm_by_user.get(user_id)
            ch = self.workspace.channels.get(dm_id) if dm_id else None
            return [dict(m) for m in ch.by_ts.values()] if ch else []

    def ephemerals(self, user_id: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.recorder.posts
            if p["kind"] == "ephemeral" and (user_id is None or p["user"] == user_id)
        ]

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        return self.view_store.home(user_id)

    def modal_stack(self, user_id: str) -> list[dict[str, Any]]:
        return self.view_store.stack(user_id)

    def reset_recording(self) -> None:
        self.recorder.reset()


class Team(TeamState):
    """A workspace added next to FakeSlack's first one: its own Web API state, views and call
    log; the app reaches it with a token installed there (or an org token of its enterprise)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        events: EventDelivery,
        socket: SocketModeServer,
        profile: Profile,
        scopes: Callable[[], frozenset[str]],
        token: Callable[[], str | None],
        trigger_ttl: float = 3.0,
        enterprise: tuple[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.events = events
        self.socket = socket
        self.told = set()
        self.foreign = set()
        self.enterprise_id, self.enterprise_name = enterprise or (None, None)
        self._token = token
        self.recorder = Recorder()
        self.view_store = ViewStore(
            team_id=workspace.team_id,
            app_id=workspace.app_id,
            bot_id=workspace.bot_id,
            trigger_ttl=trigger_ttl,
        )
        self.api = Api(
            workspace,
            scopes=scopes,
            profile=profile,
            recorder=self.recorder,
            views=self.view_store,
            # Cursors are bound to their workspace: another's key makes them `invalid_cursor`.
            cursors=Cursors(secrets.token_bytes(16)),
            changed=self.record_change,
        )

    @property
    def bot_token(self) -> str:
        """The newest working token for this workspace (its install's, or its org's); raises
        `LookupError` when the app is not installed here."""
        token = self._token()
        if token is None:
            raise LookupError(f"the app is not installed on {self.team_id}")
        return token
