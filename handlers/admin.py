"""Who is an admin: Slack says so in `users.info` (`is_admin`, `is_owner`, `is_primary_owner`)."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient


def is_workspace_admin(user: dict[str, Any]) -> bool:
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


async def lookup_is_admin(client: AsyncWebClient, user_id: str) -> bool:
    response = await client.users_info(user=user_id)
    return is_workspace_admin(response.get("user") or {})
