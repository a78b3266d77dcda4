"""Fallbacks for interactive payloads no listener claims (buttons from an older version of a view).

Acknowledging them keeps Slack from showing the user an error; the log says what arrived.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

log = logging.getLogger(__name__)
ANYTHING = re.compile(".*")


def register(app: AsyncApp) -> None:
    app.action(ANYTHING)(handle_action_unknown)
    app.view(ANYTHING)(handle_view_unknown)


async def handle_action_unknown(ack: AsyncAck, action: dict[str, Any]) -> None:
    await ack()
    log.info("ignored action %s: no listener for it in this version", action.get("action_id"))


async def handle_view_unknown(ack: AsyncAck, view: dict[str, Any]) -> None:
    await ack()
    log.info("ignored view submission %s: no listener for it", view.get("callback_id"))
