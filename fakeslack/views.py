"""Views and trigger ids: modal stacks per user (open, push, update), one home tab per user
(publish), `hash` checks, and trigger ids that are valid once, for a few seconds."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

from fakeslack.errors import ApiError

MAX_STACK = 3  # views.push: a modal stack holds at most 3 views


class ViewStore:
    def __init__(
        self,
        *,
        team_id: str,
        app_id: str,
        bot_id: str,
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.team_id, self.app_id, self.bot_id = team_id, app_id, bot_id
        self.trigger_ttl = trigger_ttl
        self.clock = clock
        self.triggers: dict[str, tuple[str, float]] = {}  # id -> (user, expires_at)
        self.used_triggers: set[str] = set()
        self.views: dict[str, dict[str, Any]] = {}
        self.owner: dict[str, str] = {}  # view id -> user id
        self.stacks: dict[str, list[str]] = {}  # user -> modal view ids, root first
        self.homes: dict[str, str] = {}  # user -> home view id
        self._seq = itertools.count(1)

    # -- trigger ids --------------------------------------------------------------------------
    def new_trigger_id(self, user_id: str) -> str:
        n = next(self._seq)
        trigger = f"{1000000000 + n}.{abs(hash(self.team_id)) % 10**11}.{secrets.token_hex(16)}"
        self.triggers[trigger] = (user_id, self.clock() + self.trigger_ttl)
        return trigger

    def use_trigger(self, trigger_id: str | None) -> str:
        if not trigger_id:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["missing `trigger_id`"]}
            )
        if trigger_id in self.used_triggers:
            raise ApiError("exchanged_trigger_id")
        entry = self.triggers.get(trigger_id)
        if entry is None:
            raise ApiError("invalid_trigger_id")
        user, expires = entry
        if self.clock() > expires:
            raise ApiError("expired_trigger_id")
        self.used_triggers.add(trigger_id)
        del self.triggers[trigger_id]
        return user

    # -- view objects -------------------------------------------------------------------------
    def _new_id(self) -> str:
        return "V" + secrets.token_hex(5).upper()

    def _hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _build(
        self, payload: dict[str, Any], view_id: str, root_id: str | None, previous_id: str | None
    ) -> dict[str, Any]:
        view = {
            "id": view_id,
            "team_id": self.team_id,
            "type": payload.get("type"),
            "blocks": payload.get("blocks", []),
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "state": {"values": {}},
            "hash": self._hash(),
            "title": payload.get("title"),
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "close": payload.get("close"),
            "submit": payload.get("submit"),
            "previous_view_id": previous_id,
            "root_view_id": root_id,
            "app_id": self.app_id,
            "external_id": payload.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return view

    def _check_external(self, payload: dict[str, Any], except_id: str | None = None) -> None:
        ext = payload.get("external_id")
        if ext and any(
            v["external_id"] == ext and vid != except_id for vid, v in self.views.items()
        ):
            raise ApiError("duplicate_external_id")

    def open(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_external(payload)
        vid = self._new_id()
        view = self._build(payload, vid, vid, None)
        self.views[vid], self.owner[vid] = view, user_id
        self.stacks[user_id] = [vid]
        return view

    def push(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        stack = self.stacks.setdefault(user_id, [])
        if len(stack) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        self._check_external(payload)
        vid = self._new_id()
        root = stack[0] if stack else vid
        view = self._build(payload, vid, root, stack[-1] if stack else None)
        self.views[vid], self.owner[vid] = view, user_id
        stack.append(vid)
        return view

    def update(
        self,
        view_id: str | None,
        external_id: str | None,
        hash_: str | None,
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        if not view_id and not external_id:
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["either `view_id` or `external_id` is required"]},
            )
        if not view_id:
            view_id = next(
                (vid for vid, v in self.views.items() if v["external_id"] == external_id), None
            )
        old = self.views.get(view_id or "")
        if old is None or view_id is None:
            raise ApiError("not_found")
        if hash_ and hash_ != old["hash"]:
            raise ApiError("hash_conflict")
        self._check_external(payload, except_id=view_id)
        if "external_id" not in payload:  # an update without one keeps the view's external id
            payload = {**payload, "external_id": old["external_id"]}
        view = self._build(payload, view_id, old["root_view_id"], old["previous_view_id"])
        self.views[view_id] = view
        return view

    def publish(self, user_id: str, payload: dict[str, Any], hash_: str | None) -> dict[str, Any]:
        vid = self.homes.get(user_id)
        if vid is not None and hash_ and hash_ != self.views[vid]["hash"]:
            raise ApiError("hash_conflict")
        self._check_external(payload, except_id=vid)
        vid = vid or self._new_id()
        view = self._build(payload, vid, None, None)
        self.views[vid], self.owner[vid] = view, user_id
        self.homes[user_id] = vid
        return view

    def home(self, user_id: str) -> dict[str, Any] | None:
        vid = self.homes.get(user_id)
        return self.views.get(vid) if vid else None

    def stack(self, user_id: str) -> list[dict[str, Any]]:
        return [self.views[v] for v in self.stacks.get(user_id, [])]

    def close(self, user_id: str) -> None:
        """Close every modal of `user_id` (what a submission or the close button does)."""
        self.stacks.pop(user_id, None)
