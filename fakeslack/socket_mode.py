"""Socket Mode: the WebSocket side of Slack's `apps.connections.open`.

What the real service does, as the app sees it (docs.slack.dev "Using Socket Mode", and what
slack_sdk's `socket_mode` clients expect):

* `apps.connections.open` (app-level `xapp-` token with `connections:write`) answers a temporary
  URL; here `ws://HOST:PORT/_fake/socket/<ticket>?app_id=A…`. A ticket is good for one
  connection and expires after `ticket_ttl` seconds (an emulator choice: Slack documents the URL
  as temporary without a number). A used, unknown or expired ticket is refused with HTTP 401.
* On connect the server sends `{"type": "hello", "num_connections": N, "debug_info": {...},
  "connection_info": {"app_id": ...}}`.
* It then pushes envelopes `{"envelope_id", "type", "accepts_response_payload", "payload"}`;
  `events_api` envelopes also carry `retry_attempt` / `retry_reason`. The app acks with
  `{"envelope_id", "payload"?}`; every ack is recorded with its time and payload.
* Ping frames from the client are answered with a pong carrying the same data (slack_sdk sends
  `sdk-ping-pong:<time>` and reads its time back) and are counted per connection.
* `{"type": "disconnect", "reason": "refresh_requested", "debug_info": {...}}` asks the client
  to reconnect through a new `apps.connections.open`; the server closes the old socket a little
  later, as Slack does. More than `max_connections` (Slack: "up to 10") get
  `too_many_websockets` and are closed.

Stdlib and aiohttp only; never imports the app's packages.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger("fakeslack.socket_mode")

ENVELOPE_TYPES = ("events_api", "slash_commands", "interactive")
# Interactive payloads whose ack body Slack uses (view_submission's response_action, the options
# of a block_suggestion); for the others the ack only stops the retry/timeout.
INTERACTIVE_WITH_RESPONSE = frozenset({"view_submission", "block_suggestion", "dialog_suggestion"})
DEFAULT_MAX_CONNECTIONS = 10


class SocketModeTimeout(TimeoutError):
    """No connection to deliver to, or no ack for an envelope, within the timeout."""


@dataclass
class Connection:
    id: str
    token: str
    ws: web.WebSocketResponse
    connected_at: float = field(default_factory=time.time)
    pings: list[bytes] = field(default_factory=list)
    disconnect_sent: str | None = None  # the reason, once a `disconnect` message was sent
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connected_at": self.connected_at,
            "closed_at": self.closed_at,
            "pings": len(self.pings),
            "disconnect_sent": self.disconnect_sent,
            "open": self.open,
        }


@dataclass
class _Ticket:
    token: str
    created: float


class SocketModeServer:
    """Tickets, live connections, envelopes out and acks in, for one app in one workspace."""

    def __init__(
        self,
        *,
        app_id: str,
        base_ws_url: Callable[[], str],
        ticket_ttl: float = 60.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        disconnect_grace: float = 1.0,
    ) -> None:
        self.app_id = app_id
        self._base_ws_url = base_ws_url
        self.ticket_ttl = ticket_ttl
        self.max_connections = max_connections
        self.disconnect_grace = disconnect_grace
        self._tickets: dict[str, _Ticket] = {}
        self.connections: dict[str, Connection] = {}  # every connection ever made, by id
        self.envelopes: list[dict[str, Any]] = []  # every envelope sent, with where and when
        self.acks: list[dict[str, Any]] = []  # every ack received (also for unknown envelopes)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._sent_at: dict[str, tuple[float, str, str]] = {}  # envelope id -> (mono, type, conn)
        self._rr = itertools.count()
        self._changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn_no = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- wiring -------------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        app.router.add_get("/_fake/socket/{ticket}", self.handle_ws)
        app.router.add_post("/_fake/socket_mode/deliver", self._post_deliver)
        app.router.add_post("/_fake/socket_mode/disconnect", self._post_disconnect)
        app.router.add_get("/_fake/socket_mode", self._get_state)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_startup(self, app: web.Application) -> None:
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    async def _on_shutdown(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *(c.ws.close(code=WSCloseCode.GOING_AWAY) for c in self.live()),
            return_exceptions=True,
        )

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    # -- apps.connections.open ----------------------------------------------------------------
    def new_url(self, token: str) -> str:
        """A fresh single-use URL for `token` (the method handler has checked token and scope)."""
        now = time.monotonic()
        for key in [k for k, t in self._tickets.items() if now - t.created > self.ticket_ttl]:
            del self._tickets[key]
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = _Ticket(token, now)
        return f"{self._base_ws_url()}/_fake/socket/{ticket}?app_id={self.app_id}"

    # -- the WebSocket ------------------------------------------------------------------------
    def live(self) -> list[Connection]:
        return [c for c in self.connections.values() if c.open]

    def _routable(self) -> list[Connection]:
        return [c for c in self.live() if c.disconnect_sent is None]

    def _debug_info(self) -> dict[str, Any]:
        return {"host": f"fakeslack-applink-{self.app_id.lower()}", "build_number": 1}

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ticket = self._tickets.pop(request.match_info["ticket"], None)
        if ticket is None or time.monotonic() - ticket.created > self.ticket_ttl:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        # autoping off so pings can be counted; each is answered below with the same data.
        ws = web.WebSocketResponse(autoping=False, timeout=2.0)
        await ws.prepare(request)
        if len(self.live()) >= self.max_connections:
            await ws.send_json(
                {
                    "type": "disconnect",
                    "reason": "too_many_websockets",
                    "debug_info": self._debug_info(),
                }
            )
            await ws.close(code=WSCloseCode.POLICY_VIOLATION)
            return ws
        conn = Connection(f"conn-{next(self._conn_no)}", ticket.token, ws)
        self.connections[conn.id] = conn
        hello = {
            "type": "hello",
            "num_connections": len(self.live()),
            "debug_info": {**self._debug_info(), "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        await ws.send_json(hello)
        log.info("socket mode: %s connected (%d open)", conn.id, len(self.live()))
        self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    conn.pings.append(msg.data)
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    log.info("socket mode: %s error %s", conn.id, ws.exception())
                    break
        finally:
            conn.closed_at = time.time()
            log.info("socket mode: %s closed (%d open)", conn.id, len(self.live()))
            self._notify()
        return ws

    def _on_text(self, conn: Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("socket mode: %s sent a non-JSON frame", conn.id)
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not envelope_id:
            log.warning("socket mode: %s sent a message without envelope_id", conn.id)
            return
        sent = self._sent_at.get(envelope_id)
        ack = {
            "envelope_id": envelope_id,
            "type": sent[1] if sent else None,
            "payload": message.get("payload"),
            "connection_id": conn.id,
            "delivered_to": sent[2] if sent else None,
            "t_wall": time.time(),
            "latency": time.monotonic() - sent[0] if sent else None,
            "known": sent is not None,
        }
        self.acks.append(ack)
        future = self._pending.get(envelope_id)
        if future is not None and not future.done():
            future.set_result(ack)

    # -- pushing to the app -------------------------------------------------------------------
    async def wait_for_connections(self, count: int = 1, timeout: float = 5.0) -> int:
        """Wait until at least `count` connections are open and routable; returns how many."""
        deadline = time.monotonic() + timeout
        while len(self._routable()) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._changed is None:
                raise SocketModeTimeout(
                    f"{len(self._routable())} Socket Mode connection(s) open, wanted {count}"
                )
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass
        return len(self._routable())

    async def deliver(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        timeout: float = 5.0,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        connection_id: str | None = None,
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        """Send one envelope to a connected app and return its ack (see `_on_text`).

        Waits up to `timeout` for a connection, then up to `timeout` for the ack; raises
        `SocketModeTimeout` otherwise. Connections take turns unless `connection_id` is given.
        """
        if envelope_type not in ENVELOPE_TYPES:
            raise ValueError(f"envelope type must be one of {', '.join(ENVELOPE_TYPES)}")
        if accepts_response_payload is None:
            accepts_response_payload = envelope_type == "slash_commands" or (
                envelope_type == "interactive" and payload.get("type") in INTERACTIVE_WITH_RESPONSE
            )
        start = time.monotonic()
        if connection_id is None:
            await self.wait_for_connections(1, timeout)
            targets = self._routable()
            conn = targets[next(self._rr) % len(targets)]
        else:
            conn = self.connections.get(connection_id)  # type: ignore[assignment]
            if conn is None or not conn.open:
                raise SocketModeTimeout(f"connection {connection_id} is not open")
        envelope_id = envelope_id or f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-" + (
            f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        )
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = future
        self._sent_at[envelope_id] = (time.monotonic(), envelope_type, conn.id)
        self.envelopes.append(
            {"envelope": envelope, "connection_id": conn.id, "t_wall": time.time()}
        )
        try:
            await conn.ws.send_json(envelope)
            remaining = max(0.0, timeout - (time.monotonic() - start)) or 0.001
            try:
                return await asyncio.wait_for(asyncio.shield(future), remaining)
            except TimeoutError:
                raise SocketModeTimeout(
                    f"no ack for {envelope_type} envelope {envelope_id} within {timeout} s"
                ) from None
        finally:
            self._pending.pop(envelope_id, None)

    async def disconnect(
        self,
        reason: str = "refresh_requested",
        *,
        connection_id: str | None = None,
        close_after: float | None = None,
    ) -> int:
        """Send `disconnect` to one or every open connection; close each `close_after` s later
        (default `disconnect_grace`) unless the client has gone first. Returns how many."""
        grace = self.disconnect_grace if close_after is None else close_after
        targets = [c for c in self.live() if connection_id in (None, c.id)]
        for conn in targets:
            conn.disconnect_sent = reason
            try:
                await conn.ws.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": self._debug_info()}
                )
            except (ConnectionError, RuntimeError):
                continue
            task = asyncio.ensure_future(self._close_later(conn, grace))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._notify()
        return len(targets)

    async def _close_later(self, conn: Connection, delay: float) -> None:
        await asyncio.sleep(delay)
        if conn.open:
            await conn.ws.close(code=WSCloseCode.GOING_AWAY)

    # -- HTTP control routes (for a fakeslack running as a separate process) -------------------
    async def _post_deliver(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            ack = await self.deliver(
                body["type"],
                body["payload"],
                timeout=float(body.get("timeout", 5.0)),
                accepts_response_payload=body.get("accepts_response_payload"),
                retry_attempt=int(body.get("retry_attempt", 0)),
                retry_reason=str(body.get("retry_reason", "")),
            )
        except SocketModeTimeout as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=504)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "ack": ack})

    async def _post_disconnect(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        count = await self.disconnect(
            str(body.get("reason", "refresh_requested")),
            close_after=body.get("close_after"),
        )
        return web.json_response({"ok": True, "connections": count})

    async def _get_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "open": len(self.live()),
                "connections": [c.to_dict() for c in self.connections.values()],
                "acks": self.acks,
            }
        )
