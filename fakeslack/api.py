"""The Web API methods themselves: argument checks, Slack's documented semantics and error codes.

Transport, auth, rate limits and faults live in `server.py`; each handler here takes the parsed
arguments and returns the JSON body, or raises `ApiError` for an `ok: false` answer.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from typing import Any

from fakeslack import blockkit, changes
from fakeslack.changes import Outcome
from fakeslack.errors import ApiError
from fakeslack.pagination import Cursors, InvalidCursor
from fakeslack.recorder import Recorder
from fakeslack.spec import HISTORY_SCOPE, READ_SCOPE, TYPE_SCOPE, Profile
from fakeslack.views import ViewStore
from fakeslack.workspace import Channel, Message, Workspace, key_to_ts, ts_key

Args = dict[str, Any]
MAX_LIMIT = 999
NOT_THREADABLE = {"channel_join", "channel_leave"}


def _str(a: Args, key: str) -> str | None:
    v = a.get(key)
    if v is None or v == "":
        return None
    return v if isinstance(v, str) else str(v)


def _bool(a: Args, key: str) -> bool:
    v = a.get(key)
    if isinstance(v, bool):
        return v
    return str(v).lower() in ("1", "true", "yes") if v is not None else False


def _kind(ch: Channel) -> str:
    return "im" if ch.is_im else "private" if ch.is_private else "public"


class Api:
    def __init__(
        self,
        ws: Workspace,
        *,
        scopes: Callable[[], frozenset[str]],
        profile: Profile,
        recorder: Recorder,
        views: ViewStore,
        cursors: Cursors,
        socket_url: Callable[[], str] | None = None,
        changed: Callable[[Outcome], object] | None = None,
    ) -> None:
        self.ws = ws
        self.scopes = scopes
        self.profile = profile
        self.rec = recorder
        self.views = views
        self.cursors = cursors
        self.socket_url = socket_url
        # Hears what the app's own calls change (its posts, edits, joins), for event delivery.
        self.changed: Callable[[Outcome], object] = changed or (lambda outcome: None)
        self.handlers: dict[str, Callable[[Args], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "conversations.list": self.conversations_list,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.info": self.conversations_info,
            "users.conversations": self.users_conversations,
            "conversations.join": self.conversations_join,
            "conversations.open": self.conversations_open,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "chat.postMessage": self.chat_post_message,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.update": self.chat_update,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "apps.connections.open": self.apps_connections_open,
        }

    def call(self, method: str, a: Args) -> dict[str, Any]:
        handler = self.handlers.get(method)
        if handler is None:
            raise ApiError("unknown_method")
        return handler(a)

    # -- shared checks ------------------------------------------------------------------------
    def need_scope(self, scope: str) -> None:
        have = self.scopes()
        if scope not in have:
            raise ApiError("missing_scope", needed=scope, provided=",".join(sorted(have)))

    def _channel_arg(self, a: Args) -> Channel:
        cid = _str(a, "channel")
        ch = self.ws.channel(cid) if cid else None
        if ch is None:
            raise ApiError("channel_not_found")
        return ch

    def _visible(self, ch: Channel) -> bool:
        """Whether a bot token can see the channel at all (private ones only as a member)."""
        return not (ch.is_private or ch.is_im) or self.ws.bot_user_id in ch.members

    def _readable(self, a: Args) -> Channel:
        ch = self._channel_arg(a)
        if not self._visible(ch):
            raise ApiError("channel_not_found")
        self.need_scope(HISTORY_SCOPE[_kind(ch)])
        if self.ws.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        return ch

    def _limit(self, a: Args, method: str, default: int = 100, maximum: int = MAX_LIMIT) -> int:
        raw = a.get("limit")
        try:
            limit = int(raw) if raw not in (None, "") else default
        except (TypeError, ValueError) as exc:
            raise ApiError("invalid_limit") from exc
        if limit <= 0:
            limit = default
        cap = self.profile.page_cap.get(method)
        if cap is not None:  # non-Marketplace: max AND default are the cap; larger is not an error
            limit = cap if raw in (None, "") else min(limit, cap)
        return min(limit, maximum)

    def _window(self, a: Args) -> tuple[int, int | None, bool]:
        try:
            oldest = ts_key(_str(a, "oldest") or "0")
        except ValueError as exc:
            raise ApiError("invalid_ts_oldest") from exc
        latest_s = _str(a, "latest")
        try:
            latest = ts_key(latest_s) if latest_s and latest_s != "0" else None
        except ValueError as exc:
            raise ApiError("invalid_ts_latest") from exc
        return oldest, latest, _bool(a, "inclusive")

    def _decode(self, a: Args, kind: str, scope: str) -> str | None:
        cursor = _str(a, "cursor")
        if cursor is None:
            return None
        try:
            return self.cursors.decode(cursor, kind, scope)
        except InvalidCursor as exc:
            raise ApiError("invalid_cursor") from exc

    # -- auth ---------------------------------------------------------------------------------
    def auth_test(self, a: Args) -> dict[str, Any]:
        ws = self.ws
        return {
            "ok": True,
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": "backfill",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "is_enterprise_install": False,
        }

    # -- apps (app-level token; the server has refused other token types) -------------------
    def apps_connections_open(self, a: Args) -> dict[str, Any]:
        self.need_scope("connections:write")
        if self.socket_url is None:
            raise ApiError("internal_error")
        return {"ok": True, "url": self.socket_url()}

    # -- conversations ------------------------------------------------------------------------
    def conversations_list(self, a: Args) -> dict[str, Any]:
        types = [t.strip() for t in (_str(a, "types") or "public_channel").split(",") if t.strip()]
        if not types or any(t not in TYPE_SCOPE for t in types):
            raise ApiError("invalid_types")
        missing = [TYPE_SCOPE[t] for t in types if TYPE_SCOPE[t] not in self.scopes()]
        if missing:
            raise ApiError(
                "missing_scope", needed=",".join(missing), provided=",".join(sorted(self.scopes()))
            )
        raw_limit = a.get("limit")
        if raw_limit not in (None, ""):
            try:
                if not 0 < int(raw_limit) < 1000:
                    raise ValueError
            except (TypeError, ValueError) as exc:
                raise ApiError("invalid_limit") from exc
        limit = self._limit(a, "conversations.list")
        exclude_archived = _bool(a, "exclude_archived")
        bot = self.ws.bot_user_id
        chans = []
        for ch in self.ws.channels.values():
            if ch.deleted or (exclude_archived and ch.is_archived):
                continue
            if ch.is_im:
                ok = "im" in types
            elif ch.is_private:
                ok = "private_channel" in types and bot in ch.members
            else:
                ok = "public_channel" in types
            if ok:
                chans.append(ch)
        scope = f"list|{','.join(sorted(types))}|{int(exclude_archived)}"
        anchor = self._decode(a, "list", scope)
        start = int(anchor) if anchor and anchor.isdigit() else 0
        page = chans[start : start + limit]
        nxt = start + limit
        return {
            "ok": True,
            "channels": [c.to_api(self.ws.team_id, bot) for c in page],
            "response_metadata": {
                "next_cursor": self.cursors.encode("list", str(nxt), scope)
                if nxt < len(chans)
                else ""
            },
        }

    def conversations_history(self, a: Args) -> dict[str, Any]:
        ch = self._readable(a)
        oldest, latest, inclusive = self._window(a)
        limit = self._limit(a, "conversations.history")
        keys = ch.top.keys
        lo = bisect.bisect_left(keys, oldest) if inclusive else bisect.bisect_right(keys, oldest)
        if latest is None:
            hi = len(keys)
        else:
            hi = (
                bisect.bisect_right(keys, latest) if inclusive else bisect.bisect_left(keys, latest)
            )
        anchor = self._decode(a, "next_ts", ch.id)
        if anchor is not None:  # the newest message of the next page, inclusive
            hi = min(hi, bisect.bisect_right(keys, ts_key(anchor)))
        start = max(lo, hi - limit)
        page = [ch.render(ch.top.msgs[i]) for i in range(hi - 1, start - 1, -1)]
        body: dict[str, Any] = {
            "ok": True,
            "messages": page,
            "has_more": start > lo,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if start > lo:
            body["response_metadata"] = {
                "next_cursor": self.cursors.encode("next_ts", key_to_ts(keys[start - 1]), ch.id)
            }
        return body

    def conversations_replies(self, a: Args) -> dict[str, Any]:
        ch = self._readable(a)
        ts = _str(a, "ts")
        if ts is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `ts`"]})
        msg = ch.by_ts.get(ts)
        if msg is None or msg.get("subtype") in NOT_THREADABLE:
            raise ApiError("thread_not_found")
        parent = ch.by_ts.get(msg["thread_ts"]) if ch.is_reply(msg) else msg
        if parent is None:
            raise ApiError("thread_not_found")
        oldest, latest, inclusive = self._window(a)
        limit = self._limit(a, "conversations.replies", default=1000, maximum=1000)
        rs = ch.replies.get(parent["ts"])
        keys = rs.keys if rs else []
        lo = bisect.bisect_left(keys, oldest) if inclusive else bisect.bisect_right(keys, oldest)
        if latest is None:
            hi = len(keys)
        else:
            hi = (
                bisect.bisect_right(keys, latest) if inclusive else bisect.bisect_left(keys, latest)
            )
        anchor = self._decode(a, "next_reply", f"{ch.id}|{parent['ts']}")
        out: list[Message] = []
        if anchor is None:  # first page: the parent always comes first
            out.append(ch.render(parent))
            room = max(0, limit - 1)
        else:
            lo = max(lo, bisect.bisect_left(keys, ts_key(anchor)))
            room = limit
        end = min(hi, lo + room)
        assert rs is not None or end <= lo
        if rs is not None:
            out += [dict(m) for m in rs.msgs[lo:end]]
        body: dict[str, Any] = {"ok": True, "messages": out, "has_more": end < hi}
        if end < hi:
            body["response_metadata"] = {
                "next_cursor": self.cursors.encode(
                    "next_reply", key_to_ts(keys[end]), f"{ch.id}|{parent['ts']}"
                )
            }
        return body

    def conversations_info(self, a: Args) -> dict[str, Any]:
        ch = self._channel_arg(a)
        if not self._visible(ch):
            raise ApiError("channel_not_found")
        self.need_scope(READ_SCOPE[_kind(ch)])
        data = ch.to_api(self.ws.team_id, self.ws.bot_user_id)
        if not _bool(a, "include_num_members"):
            data.pop("num_members", None)
        return {"ok": True, "channel": data}

    def conversations_join(self, a: Args) -> dict[str, Any]:
        self.need_scope("channels:join")
        ch = self._channel_arg(a)
        if ch.is_im or ch.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise ApiError("is_archived")
        bot = self.ws.bot_user_id
        body: dict[str, Any] = {"ok": True}
        if bot in ch.members:
            body["warning"] = "already_in_channel"
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:  # a channel_join line, and member_joined_channel for the bot itself
            self.changed(changes.add_member(self.ws, ch.id, bot))
        body["channel"] = ch.to_api(self.ws.team_id, bot)
        return body

    def conversations_open(self, a: Args) -> dict[str, Any]:
        users = [u.strip() for u in (_str(a, "users") or "").split(",") if u.strip()]
        cid = _str(a, "channel")
        if cid:
            ch = self.ws.channel(cid)
            if ch is None or not ch.is_im:
                raise ApiError("channel_not_found")
            self.need_scope("im:write")
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": ch.id}}
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 1:
            self.need_scope("mpim:write")
            raise ApiError("method_not_supported_for_channel_type")
        self.need_scope("im:write")
        user = self.ws.users.get(users[0])
        if user is None:
            raise ApiError("user_not_found")
        if user.get("deleted"):
            raise ApiError("user_disabled")
        existed = users[0] in self.ws.dm_by_user
        ch = self.ws.open_dm(users[0])
        channel: dict[str, Any] = {"id": ch.id}
        if _bool(a, "return_im"):
            channel = ch.to_api(self.ws.team_id, self.ws.bot_user_id)
        return {"ok": True, "no_op": existed, "already_open": existed, "channel": channel}

    # -- users --------------------------------------------------------------------------------
    def users_info(self, a: Args) -> dict[str, Any]:
        self.need_scope("users:read")
        user_id = _str(a, "user")
        if user_id is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `user`"]})
        user = self.ws.users.get(user_id)
        if user is None:
            raise ApiError("user_not_found")
        user = dict(user)
        if _bool(a, "include_locale"):
            user["locale"] = "en-US"
        return {"ok": True, "user": user}

    def users_conversations(self, a: Args) -> dict[str, Any]:
        """The channels `user` (default: the bot) is in, of `types`; a private one only when the
        bot is in it too (Slack lists private membership only where the caller shares it)."""
        types = [t.strip() for t in (_str(a, "types") or "public_channel").split(",") if t.strip()]
        if not types or any(t not in TYPE_SCOPE for t in types):
            raise ApiError("invalid_types")
        for kind in types:
            self.need_scope(TYPE_SCOPE[kind])
        user = _str(a, "user") or self.ws.bot_user_id
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        wanted = {"public_channel": False, "private_channel": True}
        found = [
            {
                k: v
                for k, v in ch.to_api(self.ws.team_id, self.ws.bot_user_id).items()
                if k not in ("is_member", "num_members")  # Slack leaves these out here
            }
            for ch in self.ws.channels.values()
            if not ch.is_im
            and not ch.deleted
            and user in ch.members
            and self._visible(ch)
            and any(wanted.get(t) == ch.is_private for t in types)
        ]
        limit = self._limit(a, "users.conversations", default=100, maximum=999)
        anchor = self._decode(a, "user_channels", user)
        start = int(anchor) if anchor and anchor.isdigit() else 0
        nxt = start + limit
        return {
            "ok": True,
            "channels": found[start:nxt],
            "response_metadata": {
                "next_cursor": self.cursors.encode("user_channels", str(nxt), user)
                if nxt < len(found)
                else ""
            },
        }

    def users_list(self, a: Args) -> dict[str, Any]:
        self.need_scope("users:read")
        limit = self._limit(a, "users.list", default=1000, maximum=1000)
        users = list(self.ws.users.values())
        anchor = self._decode(a, "users", "users")
        start = int(anchor) if anchor and anchor.isdigit() else 0
        nxt = start + limit
        return {
            "ok": True,
            "members": [dict(u) for u in users[start:nxt]],
            "cache_ts": int(time.time()),
            "response_metadata": {
                "next_cursor": self.cursors.encode("users", str(nxt), "users")
                if nxt < len(users)
                else ""
            },
        }

    # -- chat ---------------------------------------------------------------------------------
    def resolve_target(self, channel_arg: str | None, *, allow_user: bool = True) -> Channel:
        """A channel id, a DM id, or (for posting) a user id meaning the bot's DM with that user."""
        if not channel_arg:
            raise ApiError("channel_not_found")
        if channel_arg[0] in "UW":
            if not allow_user or channel_arg not in self.ws.users:
                raise ApiError("channel_not_found")
            return self.ws.open_dm(channel_arg)
        ch = self.ws.channel(channel_arg)
        if ch is None or not self._visible(ch):
            raise ApiError("channel_not_found")
        return ch

    def rate_key_channel(self, a: Args) -> str:
        """The conversation a chat.postMessage goes to, for the per-channel rate limit."""
        cid = _str(a, "channel") or ""
        if cid[:1] in ("U", "W"):
            return self.ws.dm_id_for(cid)
        return cid

    def _message_content(self, a: Args, *, require: bool = True) -> tuple[str | None, Any, Any]:
        text = _str(a, "text")
        try:
            blocks = blockkit.parse_json_arg(a.get("blocks"), "invalid_blocks_format")
            attachments = blockkit.parse_json_arg(a.get("attachments"), "invalid_attachments")
            blockkit.check_message(text, blocks)
        except blockkit.BlockError as exc:
            raise ApiError(exc.error, response_metadata={"messages": [exc.message]}) from exc
        if require and not text and not blocks and not attachments:
            raise ApiError("no_text")
        return text, blocks, attachments

    def _bot_message(self, text: str | None, blocks: Any, attachments: Any) -> Message:
        ws = self.ws
        msg: Message = {
            "type": "message",
            "user": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "app_id": ws.app_id,
            "text": text or "",
            "team": ws.team_id,
            "bot_profile": {
                "id": ws.bot_id,
                "deleted": False,
                "name": "backfill",
                "updated": int(ws.now),
                "app_id": ws.app_id,
                "team_id": ws.team_id,
                "icons": {
                    "image_36": "https://a.example.com/36.png",
                    "image_48": "https://a.example.com/48.png",
                    "image_72": "https://a.example.com/72.png",
                },
            },
        }
        if blocks is not None:
            msg["blocks"] = blocks
        if attachments:
            msg["attachments"] = attachments
        return msg

    def chat_post_message(self, a: Args) -> dict[str, Any]:
        self.need_scope("chat:write")
        ch = self.resolve_target(_str(a, "channel"))
        if ch.is_archived:
            raise ApiError("is_archived")
        if self.ws.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        text, blocks, attachments = self._message_content(a)
        msg = self._bot_message(text, blocks, attachments)
        msg["ts"] = self.ws.next_ts(ch)
        thread_ts = _str(a, "thread_ts")
        parent = ch.by_ts.get(thread_ts) if thread_ts else None
        if parent is not None and not ch.is_reply(parent):
            msg["thread_ts"] = parent["ts"]
            if parent.get("user"):
                msg["parent_user_id"] = parent["user"]
            if _bool(a, "reply_broadcast"):
                msg["subtype"] = "thread_broadcast"
        ch.insert(msg)
        self.changed(changes.posted(self.ws, ch, msg))
        self.rec.record_post(
            "message",
            channel=ch.id,
            user=ch.im_user,
            ts=msg["ts"],
            text=text,
            blocks=blocks,
            thread_ts=msg.get("thread_ts"),
        )
        return {"ok": True, "channel": ch.id, "ts": msg["ts"], "message": dict(msg)}

    def chat_post_ephemeral(self, a: Args) -> dict[str, Any]:
        self.need_scope("chat:write")
        ch = self.resolve_target(_str(a, "channel"), allow_user=True)
        user = _str(a, "user")
        if user is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `user`"]})
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        if not ch.is_im and self.ws.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        text, blocks, _attachments = self._message_content(a)
        ts = key_to_ts(int(time.time() * 1_000_000))
        self.rec.record_post(
            "ephemeral",
            channel=ch.id,
            user=user,
            ts=ts,
            text=text,
            blocks=blocks,
            thread_ts=_str(a, "thread_ts"),
        )
        return {"ok": True, "message_ts": ts}

    def chat_update(self, a: Args) -> dict[str, Any]:
        self.need_scope("chat:write")
        ch = self.resolve_target(_str(a, "channel"), allow_user=False)
        ts = _str(a, "ts")
        if ts is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `ts`"]})
        msg = ch.by_ts.get(ts)
        if msg is None:
            raise ApiError("message_not_found")
        if msg.get("bot_id") != self.ws.bot_id:
            raise ApiError("cant_update_message")
        text, blocks, attachments = self._message_content(a, require=False)
        if text is None and blocks is None and attachments is None:
            raise ApiError("no_text")
        previous = ch.render(msg)
        if text is not None:
            msg["text"] = text
        if blocks is not None:
            msg["blocks"] = blocks
        if attachments is not None:
            msg["attachments"] = attachments
        msg["edited"] = {"user": self.ws.bot_user_id, "ts": key_to_ts(int(time.time() * 1_000_000))}
        self.changed(changes.edited(self.ws, ch, msg, previous))
        self.rec.record_post(
            "update", channel=ch.id, user=ch.im_user, ts=msg["ts"], text=text, blocks=blocks
        )
        return {
            "ok": True,
            "channel": ch.id,
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": {
                k: v
                for k, v in msg.items()
                if k
                in (
                    "type",
                    "user",
                    "bot_id",
                    "text",
                    "blocks",
                    "attachments",
                    "edited",
                    "app_id",
                    "team",
                )
            },
        }

    # -- views --------------------------------------------------------------------------------
    def _view_arg(self, a: Args) -> dict[str, Any]:
        try:
            view = blockkit.parse_json_arg(a.get("view"), "invalid_arguments")
            if view is None:
                raise blockkit.BlockError(
                    "invalid_arguments", "[ERROR] missing required field: view"
                )
            blockkit.check_view(view)
        except blockkit.BlockError as exc:
            raise ApiError(exc.error, response_metadata={"messages": [exc.message]}) from exc
        return dict(view)

    def views_open(self, a: Args) -> dict[str, Any]:
        view = self._view_arg(a)
        if view.get("type") != "modal":
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["view.type must be modal"]}
            )
        user = self.views.use_trigger(_str(a, "trigger_id") or _str(a, "interactivity_pointer"))
        out = self.views.open(user, view)
        self.rec.record_view("open", user=user, view=out)
        return {"ok": True, "view": out}

    def views_push(self, a: Args) -> dict[str, Any]:
        view = self._view_arg(a)
        user = self.views.use_trigger(_str(a, "trigger_id") or _str(a, "interactivity_pointer"))
        out = self.views.push(user, view)
        self.rec.record_view("push", user=user, view=out)
        return {"ok": True, "view": out}

    def views_update(self, a: Args) -> dict[str, Any]:
        view = self._view_arg(a)
        out = self.views.update(_str(a, "view_id"), _str(a, "external_id"), _str(a, "hash"), view)
        self.rec.record_view("update", user=self.views.owner.get(out["id"]), view=out)
        return {"ok": True, "view": out}

    def views_publish(self, a: Args) -> dict[str, Any]:
        user = _str(a, "user_id")
        if user is None:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["missing `user_id`"]}
            )
        view = self._view_arg(a)
        if view.get("type") != "home":
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["view.type must be home"]}
            )
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        out = self.views.publish(user, view, _str(a, "hash"))
        self.rec.record_view("publish", user=user, view=out)
        return {"ok": True, "view": out}
