"""Direct messages about runs: a progress message updated in place, the summary, the failure.

Block Kit comes from `blocks.dm`; this module only decides who hears what, when, and sends it
through the run's workspace's client (`scheduler.workspace_clients`). A DM is a courtesy: when Slack refuses one (any
`SlackApiError`, or the network fails) the refusal is logged and the run carries on. Every text
that leaves here is scrubbed of anything shaped like a Slack token (`blocks.limits`). Imports `blocks`,
`slack_sdk`, the clock of `db.models`, `scheduler.people` and the workspace clients; no queries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.dm import (
    run_failure_blocks,
    run_failure_text,
    run_progress_blocks,
    run_progress_text,
    run_summary_blocks,
    run_summary_text,
)
from blocks.limits import redact_tokens
from db.models import utcnow
from db.records import Progress, Run
from scheduler.backfill.errors import PermanentSlackError
from scheduler.people import PeopleDirectory
from scheduler.workspace_clients import WorkspaceClients

logger = logging.getLogger(__name__)

# Slack's chat.update is Tier 3 (~50/min per app); one update per run every few seconds keeps a
# handful of concurrent runs far below it, and a human cannot read faster anyway.
PROGRESS_INTERVAL_S = 3.0

_SEND_ERRORS: tuple[type[BaseException], ...] = (
    SlackApiError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)

# A time zone is a nicety: a workspace without a token (uninstalled meanwhile) has none either.
_ZONE_ERRORS: tuple[type[BaseException], ...] = (*_SEND_ERRORS, PermanentSlackError)


def scrub(value: Any) -> Any:
    """`value` (text, or blocks as nested dicts and lists) with every token-shaped string cut."""
    if isinstance(value, str):
        return redact_tokens(value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    return value


@dataclass
class ProgressDM:
    """The progress message of one run: where it is (DM channel id + ts) and when it last changed."""

    workspace_id: str
    user_id: str
    channel: str
    ts: str
    job_run_id: int
    started_at: datetime | None
    tz: str | None = "UTC"  # the recipient's own zone: every time in the message is shown in it
    last_sent: float = 0.0  # monotonic time of the last post or update
    pending: Progress | None = None  # newest snapshot not sent yet
    closed: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Notifier:
    """Sends run DMs with each workspace's web client (pointed at `SLACK_API_URL`; one client
    given here serves every workspace). Times are shown in the recipient's own Slack time zone
    (`users.info`), `viewer_tz` when Slack does not say."""

    def __init__(
        self,
        clients: WorkspaceClients | AsyncWebClient,
        *,
        progress_interval_s: float = PROGRESS_INTERVAL_S,
        viewer_tz: str | None = "UTC",
        people: PeopleDirectory | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = (
            clients if isinstance(clients, WorkspaceClients) else WorkspaceClients.of(clients)
        )
        self.progress_interval_s = progress_interval_s
        self._tz = viewer_tz
        self._clock = clock
        self._monotonic = monotonic
        self._people = people if people is not None else PeopleDirectory()

    async def zone_of(self, workspace_id: str, user_id: str) -> str | None:
        """The user's Slack time zone, or `viewer_tz` when Slack does not say or cannot answer."""
        try:
            client = await self._clients.for_workspace(workspace_id)
            viewer = await self._people.viewer(client, user_id)
        except _ZONE_ERRORS as exc:
            logger.info(
                "no time zone for %s (%s): times in %s", user_id, type(exc).__name__, self._tz
            )
            return self._tz
        return viewer.tz or self._tz

    # -- sending ---------------------------------------------------------------------------------
    async def _call(self, workspace_id: str, method: str, **kwargs: Any) -> dict[str, Any] | None:
        kwargs = {k: scrub(v) for k, v in kwargs.items()}
        try:
            client = await self._clients.for_workspace(workspace_id)
        except PermanentSlackError as exc:  # uninstalled meanwhile: nobody can be told there
            logger.warning("no %s in workspace %s: %s", method, workspace_id, exc.error)
            return None
        try:
            if method == "chat.postMessage":
                response = await client.chat_postMessage(**kwargs)
            else:
                response = await client.chat_update(**kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            logger.warning("Slack refused %s to %s: %s", method, kwargs.get("channel"), error)
            return None
        except _SEND_ERRORS as exc:
            logger.warning("%s to %s failed: %s", method, kwargs.get("channel"), type(exc).__name__)
            return None
        data = response.data
        return data if isinstance(data, dict) else None

    async def _post(
        self, workspace_id: str, user_id: str, text: str, blocks: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        # A user id as `channel` posts in the app's DM with that user (chat:write is enough).
        return await self._call(
            workspace_id, "chat.postMessage", channel=user_id, text=text, blocks=blocks
        )

    # -- progress --------------------------------------------------------------------------------
    async def progress_started(
        self,
        workspace_id: str,
        user_id: str,
        job_run_id: int,
        started_at: datetime | None,
        progress: Progress,
    ) -> ProgressDM | None:
        """Post the progress message; None when Slack refused it (the run goes on without)."""
        tz = await self.zone_of(workspace_id, user_id)
        now = self._clock()
        data = await self._post(
            workspace_id,
            user_id,
            run_progress_text(progress, now=now, viewer_tz=tz),
            run_progress_blocks(progress, now=now, viewer_tz=tz),
        )
        if data is None or not data.get("channel") or not data.get("ts"):
            return None
        return ProgressDM(
            workspace_id,
            user_id,
            str(data["channel"]),
            str(data["ts"]),
            job_run_id,
            started_at,
            tz=tz,
            last_sent=self._monotonic(),
        )

    async def progress(self, dm: ProgressDM, progress: Progress) -> None:
        """Update the progress message unless it changed less than `progress_interval_s` ago;
        a skipped snapshot is kept and sent by `flush_progress` or the next update."""
        dm.pending = progress
        if dm.closed or dm._lock.locked():
            return
        if self._monotonic() - dm.last_sent < self.progress_interval_s:
            return
        async with dm._lock:
            await self._send_pending(dm)

    async def _send_pending(self, dm: ProgressDM) -> None:
        progress, dm.pending = dm.pending, None
        if progress is None or dm.closed:
            return
        now = self._clock()
        dm.last_sent = self._monotonic()
        await self._call(
            dm.workspace_id,
            "chat.update",
            channel=dm.channel,
            ts=dm.ts,
            text=run_progress_text(progress, now=now, viewer_tz=dm.tz),
            blocks=run_progress_blocks(progress, now=now, viewer_tz=dm.tz),
        )

    async def close_progress(self, dm: ProgressDM, run: Run) -> None:
        """Turn the progress message into its final state (no Cancel button), still at least
        `progress_interval_s` after the previous change."""
        async with dm._lock:
            if dm.closed:
                return
            dm.closed = True
            wait = self.progress_interval_s - (self._monotonic() - dm.last_sent)
            if wait > 0:
                await asyncio.sleep(wait)
            now = self._clock()
            dm.last_sent = self._monotonic()
            if run.status == "running":  # released at shutdown: another process takes over
                text = f"Backfill run #{run.job_run_id} paused while the app restarts; it resumes on its own."
                blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
            else:
                text = run_summary_text(run, now=now)
                blocks = run_summary_blocks(run, now=now, viewer_tz=dm.tz)
            await self._call(
                dm.workspace_id,
                "chat.update",
                channel=dm.channel,
                ts=dm.ts,
                text=text,
                blocks=blocks,
            )

    # -- outcomes --------------------------------------------------------------------------------
    async def run_succeeded(self, user_id: str, run: Run) -> None:
        """Summary (also for a cancelled run): messages stored, channels processed and skipped
        with reasons, duration."""
        tz = await self.zone_of(run.workspace_id, user_id)
        now = self._clock()
        await self._post(
            run.workspace_id,
            user_id,
            run_summary_text(run, now=now),
            run_summary_blocks(run, now=now, viewer_tz=tz),
        )

    async def run_failed(
        self, user_id: str, run: Run, *, action_taken: str, retry_allowed: bool = True
    ) -> None:
        """The error in plain words, what the app did about it, and "Retry now"."""
        tz = await self.zone_of(run.workspace_id, user_id)
        await self._post(
            run.workspace_id,
            user_id,
            run_failure_text(run, action_taken=action_taken, retry_allowed=retry_allowed),
            run_failure_blocks(
                run, action_taken=action_taken, retry_allowed=retry_allowed, viewer_tz=tz
            ),
        )


__all__ = ["PROGRESS_INTERVAL_S", "Notifier", "ProgressDM", "scrub"]
