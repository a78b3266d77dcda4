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
)
from handlers.deps import Deps


def register_all(app: AsyncApp, deps: Deps) -> None:
    """Attach every listener. Fallbacks go last: Bolt runs the first listener that matches."""
    guards.register(app, deps)
    commands.register(app)
    home.register(app)
    events.register(app)
    actions.register(app)
    modals.register(app)
    search.register(app)
    purge.register(app)
    errors.register(app)
    interactivity.register(app)
