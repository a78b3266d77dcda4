"""The run's user-name cache: one `users.list` walk per run into an id → name map, so no message
ever costs a `users.info` call. Imports the gateway only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.backfill.gateway import SlackGateway


def user_display_name(user: Mapping[str, Any]) -> str:
    """`profile.display_name`, else `real_name` (profile first, then top level), else the id."""
    profile = user.get("profile") or {}
    for value in (profile.get("display_name"), profile.get("real_name"), user.get("real_name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(user.get("id") or "")


async def load_user_names(gateway: SlackGateway) -> dict[str, str]:
    """Every user of the workspace (deleted users and bots included) as id → display name."""
    names: dict[str, str] = {}
    async for user in gateway.users_pages():
        user_id = user.get("id")
        if isinstance(user_id, str) and user_id:
            names[user_id] = user_display_name(user)
    return names


def author_of(message: Mapping[str, Any], names: Mapping[str, str]) -> tuple[str, str]:
    """(user_id, user_name) of a message. Bot posts without `user` fall back to `bot_id` and the
    `username` they were posted under."""
    user_id = message.get("user") or message.get("bot_id") or ""
    user_id = str(user_id)
    name = names.get(user_id)
    if not name:
        username = message.get("username")
        name = username if isinstance(username, str) and username else user_id
    return user_id, name
