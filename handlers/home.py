"""App Home: the `app_home_opened` listener. It returns at once (Bolt acknowledges events when
the listener returns) and hands the publishing to the Home publisher (`scheduler.home`), which
also refreshes the tab after changes and during runs."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import deps_of

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(handle_home_opened)


async def handle_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    # The Messages tab fires the same event; only the Home tab has a view to publish.
    if event.get("tab") != "home":
        return
    user_id = event.get("user")
    if not isinstance(user_id, str) or not user_id:  # nobody to publish for
        log.info("app_home_opened without a user: ignored")
        return
    deps = deps_of(context)
    deps.after_ack(deps.home.publish(client, user_id))
