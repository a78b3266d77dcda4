"""The periodic pulse of a `RunService`: who this process is, and a loop that calls one tick
(heartbeats, takeovers of stale runs, due retries) every few seconds until stopped.

A tick that fails is logged and the loop goes on: a missed beat only matters after
`stale_after_s`, which is several ticks. While the database is away (`outage(exc)` says so) the
loop logs one line when the outage starts and one when the database answers again, not a
traceback per tick. Imports `scheduler.process_identity` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from scheduler.process_identity import owner_name

logger = logging.getLogger(__name__)


def process_owner_id() -> str:
    """A name for this process (and service instance) as stored in `backfill_job_runs.owner`:
    host, pid, a random suffix (two services in one process are two owners), and the boot id,
    start time and pid namespace that tell whether it is still alive (`process_identity`)."""
    return owner_name()


class Pulse:
    """Calls `tick` now and then every `interval_s`; `poke()` asks for an early tick."""

    def __init__(
        self,
        tick: Callable[[], Awaitable[None]],
        interval_s: float,
        *,
        outage: Callable[[BaseException], bool] = lambda _exc: False,
    ) -> None:
        self._tick = tick
        self._interval = interval_s
        self._outage = outage
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()
        self.in_outage = False  # the last tick failed because the database was away

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="backfill-run-pulse")

    def poke(self) -> None:
        self._poked.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._outage(exc):
                    logger.exception("run heartbeat tick failed; trying again")
                elif not self.in_outage:
                    self.in_outage = True
                    logger.warning(
                        "run heartbeats paused: the database does not answer (%s); "
                        "trying again every %.0f s",
                        type(exc).__name__,
                        self._interval,
                    )
            else:
                if self.in_outage:
                    self.in_outage = False
                    logger.warning("run heartbeats resumed: the database answers again")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._interval)
            self._poked.clear()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["Pulse", "process_owner_id"]
