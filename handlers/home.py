"""App Home: publish the Home tab when a user opens it."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from handlers.admin import lookup_is_admin


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(handle_home_opened)


async def handle_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
    # The Messages tab fires the same event; only the Home tab has a view to publish.
    if event.get("tab") != "home":
        return
    user_id = event["user"]
    is_admin = await lookup_is_admin(client, user_id)
    await client.views_publish(user_id=user_id, view=home_view(is_admin=is_admin))
