"""Bolt listeners. Thin: parse, check rights, `ack()` fast, delegate to `blocks`, `scheduler`, `db`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import commands, errors, home, interactivity


def register_all(app: AsyncApp) -> None:
    """Attach every listener. Fallbacks go last: Bolt runs the first listener that matches."""
    commands.register(app)
    home.register(app)
    errors.register(app)
    interactivity.register(app)
