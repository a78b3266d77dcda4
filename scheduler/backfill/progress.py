"""What a run reports while it goes (`db.records.Progress`, handed to a callback) and when it
ends (`RunResult`), and the small tracker that computes the ETA. Imports `db.records` only.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from db.records import Progress, SkippedChannel, SlackCalls

ProgressCallback = Callable[[Progress], "Awaitable[None] | None"]


@dataclass
class RunResult:
    """The outcome of `BackfillEngine.run`.

    `error` is set when the run ended early on a Slack failure: `error_kind` is `permanent`
    (the token cannot do this: invalid_auth, missing_scope, …; never retried) or `transient`
    (Slack kept failing after every retry; worth a later retry). Checkpoints are consistent
    either way, so re-running the same `job_run_id` resumes.
    """

    messages_collected: int = 0  # messages kept in scope by this run (new, changed or unchanged)
    messages_written: int = 0  # rows inserted or changed by this run
    # Stored messages removed because a complete re-read no longer found them in Slack
    # (PRUNE_DELETED); None when the run did not prune.
    messages_removed: int | None = None
    channels_processed: int = 0
    channels_skipped: list[SkippedChannel] = field(default_factory=list)
    duration_s: float = 0.0
    cancelled: bool = False
    error: str | None = None
    error_kind: str | None = None  # 'permanent' | 'transient'
    slack_calls: tuple[SlackCalls, ...] = ()  # per method, busiest first

    @property
    def calls(self) -> dict[str, int]:
        """HTTP attempts per method (retries included)."""
        return {c.method: c.calls for c in self.slack_calls}

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


class ProgressTracker:
    """Holds the run's counters and calls the callback (sync or async) with a `Progress`."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        stats: Callable[[], tuple[int, int, float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._stats = stats
        self._clock = clock
        self.started = clock()
        self.channels_total = 0
        self.channels_done = 0
        self.messages_stored = 0
        self.messages_written = 0
        self.current_channel: str | None = None

    def snapshot(self) -> Progress:
        calls, rate_limited, waited = self._stats()
        elapsed = self._clock() - self.started
        eta: float | None = None
        if self.channels_done and self.channels_total:
            remaining = max(0, self.channels_total - self.channels_done)
            eta = elapsed / self.channels_done * remaining
        return Progress(
            channels_done=self.channels_done,
            channels_total=self.channels_total,
            messages_stored=self.messages_stored,
            messages_written=self.messages_written,
            current_channel=self.current_channel,
            calls=calls,
            rate_limit_waits=rate_limited,
            wait_seconds=waited,
            elapsed_s=elapsed,
            eta_s=eta,
        )

    async def report(self) -> None:
        if self._callback is None:
            return
        outcome = self._callback(self.snapshot())
        if inspect.isawaitable(outcome):
            await outcome
