"""Which workspace and which run the code on this task is working for, for log lines.

A context variable, so every log line written while a run executes (the engine's, the gateway's,
the writer's, in the tasks they start) carries the run's ids without passing them around. The
JSON log formatter (`app.logs`) reads it; nothing else should.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_IDS: ContextVar[dict[str, str | int] | None] = ContextVar("backfill_log_ids", default=None)


@contextmanager
def working_for(
    *, workspace_id: str | None = None, job_run_id: int | None = None
) -> Iterator[None]:
    """Log lines written inside this block (and tasks started in it) name these ids."""
    ids = dict(_IDS.get() or {})
    if workspace_id:
        ids["workspace_id"] = workspace_id
    if job_run_id is not None:
        ids["job_run_id"] = job_run_id
    token = _IDS.set(ids)
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> dict[str, str | int]:
    """The ids of the work in progress on this task: `workspace_id`, `job_run_id`, or none."""
    return dict(_IDS.get() or {})
