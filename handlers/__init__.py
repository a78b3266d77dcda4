"""Bolt listeners. Thin: parse, check rights, `ack()` fast, delegate to `blocks`, `scheduler`, `db`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import (
    actions,
    commands,
    errors,
    events,
    guards,
    home,
    interactivity,
    modals,
    purge,
    search,
    uninstalls,
)
from handlers.deps import ServedWorkspaces


def register_all(app: AsyncApp, served: ServedWorkspaces) -> None:
    """Attach every listener. Fallbacks go last: Bolt runs the first listener that matches."""
    guards.register(app, served)
    commands.register(app)
    home.register(app)
    events.register(app)
    actions.register(app)
    modals.register(app)
    search.register(app)
    purge.register(app)
    uninstalls.register(app)
    errors.register(app)
    interactivity.register(app)
