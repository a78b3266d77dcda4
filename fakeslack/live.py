"""`FakeSlack`'s live workspace: changes made by people in Slack (posts, thread replies, edits,
deletions, renames, joins, channels deleted) that change history AND reach the app as events.

Mixed into `FakeSlack` (server.py), which keeps transport and the Web API; Slack's semantics of
each change are in `changes.py`, delivery in `events.py`. Also records which messages the app was
told about, so `final_truth` can say what a perfect mirror holds, and serves `POST /_fake/changes`
for a fakeslack in another process. Imports nothing of the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fakeslack import changes
from fakeslack.change_stream import ChangeStream, change_stream
from fakeslack.changes import Change, Outcome
from fakeslack.events import EventDelivery, EventsConfig
from fakeslack.ground_truth import FinalTruth, GroundTruth, Key, final_truth
from fakeslack.workspace import Message, Workspace

if TYPE_CHECKING:
    from fakeslack.socket_mode import SocketModeServer


class LiveWorkspace:
    """The change methods of `FakeSlack`. Each mutates the workspace at once and queues the
    events; delivery runs in the background (`await events_settled()` to wait for it)."""

    workspace: Workspace
    socket: SocketModeServer
    events: EventDelivery
    # (channel, ts) of the messages whose post or edit event the app was sent.
    told: set[Key]
    # (team, channel, ts) of other workspaces' messages sent to the app (it must store none).
    foreign: set[tuple[str, str, str]]

    def _init_live(self, config: EventsConfig | None) -> None:
        ws = self.workspace
        self.events = EventDelivery(
            team_id=ws.team_id,
            app_id=ws.app_id,
            bot_user_id=ws.bot_user_id,
            signing_secret=lambda: ws.signing_secret,
            socket=self.socket,
            config=config or EventsConfig(),
        )
        self.told = set()
        self.foreign = set()

    def install_live(self, app: web.Application) -> None:
        self.events.install(app)  # /_fake/events, /_fake/events/config, /_fake/events/settled
        app.router.add_post("/_fake/changes", self._post_changes)

    def record_change(self, outcome: Outcome) -> Outcome:
        """Queue the outcome's events and remember what they told the app."""
        for event in outcome.events:
            channel = event.get("channel")
            if outcome.team is not None and isinstance(channel, str):
                self.foreign.add((outcome.team, channel, event["ts"]))
        self.told.update(outcome.told)
        self.events.emit(outcome.events, outcome.team or self.workspace.team_id)
        return outcome

    # -- settings and state -------------------------------------------------------------------
    def configure_events(self, **settings: Any) -> EventsConfig:
        """`mode` ("off", "http", "socket"), `url`, `ack_timeout`, `retry_delays`,
        `concurrency`, `shuffle_window`, `duplicate_rate`, `duplicate_delay`, `seed`."""
        return self.events.configure(**settings)

    @property
    def event_counters(self) -> dict[str, int]:
        return self.events.counters

    @property
    def event_envelopes(self) -> list[dict[str, Any]]:
        """Every envelope built for the app, in the order the changes happened."""
        return list(self.events.envelopes)

    async def events_settled(self, timeout: float = 10.0) -> dict[str, int]:
        """Wait until every event is acked or given up, retries included (on FakeSlack's loop)."""
        return await self.events.settled(timeout)

    def events_settled_sync(self, timeout: float = 10.0) -> dict[str, int]:
        """`events_settled` from another thread, for a FakeSlack started with `with`."""
        loop = self.socket.loop
        if loop is None:
            raise RuntimeError("FakeSlack is not started")
        future = asyncio.run_coroutine_threadsafe(self.events.settled(timeout), loop)
        return future.result(timeout + 5)

    def final_truth(
        self, initial: GroundTruth, *, channel_ids: Iterable[str] | None = None, **filters: Any
    ) -> FinalTruth:
        """What a perfect mirror holds now, after a backfill that stored `initial` and the events
        since (see `ground_truth.final_truth`); `filters`: `min_text_chars`, `include_bots`."""
        return final_truth(
            self.workspace,
            initial,
            self.told,
            foreign=self.foreign,
            channel_ids=channel_ids,
            **filters,
        )

    # -- the changes --------------------------------------------------------------------------
    def post_message(
        self,
        channel_id: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        subtype: str | None = None,
        ts: str | None = None,
        at: float | None = None,
        **fields: Any,
    ) -> Message:
        """A person posts (a thread reply with `thread_ts`; `subtype` e.g. `channel_join` or
        `bot_message` with `user=""` and `bot_id=...`, for noise); `message` event."""
        return self._message(
            changes.post(
                self.workspace,
                channel_id,
                text,
                user=user,
                thread_ts=thread_ts,
                broadcast=broadcast,
                subtype=subtype,
                ts=ts,
                at=at,
                **fields,
            )
        )

    def post_bot_message(
        self, channel_id: str, text: str, *, bot_user: str | None = None, at: float | None = None
    ) -> Message:
        """An integration posts a `bot_message` (noise unless the app keeps bots)."""
        fields = changes.bot_fields(self.workspace, bot_user)
        return self._message(changes.post(self.workspace, channel_id, text, at=at, **fields))

    def edit_message(
        self,
        channel_id: str,
        ts: str,
        text: str,
        *,
        user: str | None = None,
        at: float | None = None,
    ) -> Message:
        """The author edits: `message_changed` with `edited: {user, ts}`."""
        return self._message(changes.edit(self.workspace, channel_id, ts, text, user=user, at=at))

    def delete_message(self, channel_id: str, ts: str, *, at: float | None = None) -> None:
        """`message_deleted`, or for a thread parent with replies a tombstone
        (`message_changed`, `message.subtype == "tombstone"`) whose replies stay."""
        self.record_change(changes.delete(self.workspace, channel_id, ts, at=at))

    def rename_channel(
        self, channel_id: str, name: str, *, user: str | None = None, at: float | None = None
    ) -> None:
        """`channel_rename` (`group_rename` if private) and a `channel_name` line."""
        self.record_change(changes.rename(self.workspace, channel_id, name, user=user, at=at))

    def delete_channel(self, channel_id: str, *, at: float | None = None) -> None:
        """`channel_deleted` (`group_deleted` if private)."""
        self.record_change(changes.delete_channel(self.workspace, channel_id, at=at))

    def add_member(
        self,
        channel_id: str,
        user_id: str,
        *,
        inviter: str | None = None,
        at: float | None = None,
    ) -> None:
        """`user_id` joins: a `channel_join` line and `member_joined_channel`."""
        outcome = changes.add_member(self.workspace, channel_id, user_id, inviter=inviter, at=at)
        self.record_change(outcome)

    def add_bot(self, channel_id: str, *, inviter: str | None = None) -> None:
        """The app's bot is invited: `member_joined_channel` with `user` = the bot user id."""
        self.add_member(channel_id, self.workspace.bot_user_id, inviter=inviter)

    def emit_event(self, event: dict[str, Any], *, team_id: str | None = None) -> dict[str, Any]:
        """Send any inner event as is (e.g. one of another workspace: `team_id`); the envelope."""
        (envelope,) = self.events.emit([event], team_id or self.workspace.team_id)
        return envelope

    def apply_change(self, change: Change) -> Outcome:
        return self.record_change(changes.apply(self.workspace, change))

    def apply_changes(self, stream: Iterable[Change]) -> int:
        """Apply each change in order (events queued as they happen); how many."""
        count = 0
        for change in stream:
            self.apply_change(change)
            count += 1
        return count

    def play(self, stream: ChangeStream) -> int:
        """Deliver `stream`'s events out of order and with duplicates as its `delivery` says,
        and apply its changes; how many."""
        self.events.configure(**stream.delivery)
        return self.apply_changes(stream.changes)

    def _message(self, outcome: Outcome) -> Message:
        self.record_change(outcome)
        assert outcome.message is not None
        return outcome.message

    # -- POST /_fake/changes --------------------------------------------------------------------
    async def _post_changes(self, request: web.Request) -> web.Response:
        """`{"changes": [Change as dict, ...]}`, or `{"generate": {"n": 2000, "seed": 1, ...}}`
        (a `change_stream` over this workspace); answers how many were applied."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("want a JSON object")
            if "generate" in body:
                stream = change_stream(self.workspace, **dict(body["generate"])).changes
            else:
                stream = [Change.from_dict(c) for c in body.get("changes", [])]
            count = self.apply_changes(stream)
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "applied": count, "events": self.event_counters})
