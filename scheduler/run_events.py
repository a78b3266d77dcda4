"""What the run service's listeners hear (`RunEvent`) and its refusals (`RunRefused`). A run itself
is `db.records.Run`, handed out as the store returns it. Plain data; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from db.records import Progress, Run


class RunRefused(Exception):
    """A request the service will not carry out; `str()` is the message to show the user."""


@dataclass(frozen=True, slots=True)
class RunEvent:
    """What a listener hears. `kind`: queued | started | progress | cancel_requested |
    finished | released. `progress` is set for progress events."""

    kind: str
    workspace_id: str
    run: Run | None
    progress: Progress | None = None


__all__ = ["RunEvent", "RunRefused"]
