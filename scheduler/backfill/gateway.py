"""`SlackGateway`: the only engine code that calls Slack's `conversations.*`, `users.*` and
`auth.test`. It paces every call by the method's tier, owns all retries (429 with Retry-After,
5xx, timeouts, resets, malformed answers) and turns Slack's errors into the engine's exceptions.
Every answer is checked against the shape the engine reads (`answers.problem_of`) before it is
handed over, and every wait races the run's cancel event (`cancelled_by`). Imports no `db`.
One module (~400 lines): the one call path and the typed methods over it are the fence that keeps
every engine call paced and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from scheduler.backfill.answers import problem_of
from scheduler.backfill.errors import (
    MALFORMED,
    ChannelUnavailable,
    MalformedSlackAnswer,
    Outcome,
    PermanentSlackError,
    RunCancelled,
    SlackRequestError,
    SlackUnavailable,
    classify,
)
from scheduler.backfill.pacing import Pacer
from scheduler.backfill.profiles import INTERNAL, RateProfile
from scheduler.backfill.tokens import FixedToken, TokenSource

Sleep = Callable[[float], Awaitable[None]]
# Awaited before each call: the process's own requests first (see `app.services`).
YieldTo = Callable[[], Awaitable[None]]
# Told of every HTTP attempt, retries included: (method, outcome), the outcome being `ok`,
# `rate_limited`, `transient` (5xx, network, malformed answer) or Slack's error code. The app's
# metrics listen here; the engine itself never needs it.
CallObserver = Callable[[str, str], None]


async def never_wait() -> None:
    return None


# Network failures that say nothing about the request itself.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,
    aiohttp.ClientError,
    ConnectionError,
)


class _CancelScope:
    """The cancel event of one run, and when the gateway first saw it set (loop time)."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event
        self.seen_at: float | None = None

    def deadline(self, now: float, grace: float) -> float:
        """When calls of this run are abandoned; call only once the event is set."""
        if self.seen_at is None:
            self.seen_at = now
        return self.seen_at + grace


# The cancel scope of the run this task belongs to (see `SlackGateway.cancelled_by`).
_CANCEL: ContextVar[_CancelScope | None] = ContextVar("backfill_run_cancel", default=None)

# Slack's answer to a rotated access token past its 12 hours: the refresh token makes a new one.
TOKEN_EXPIRED = "token_expired"
# Refusals of the token itself, after which the token source is asked once for another: a
# refreshed one, or one another process stored meanwhile (a reinstall while this one held the old).
RENEWABLE = frozenset({TOKEN_EXPIRED, "invalid_auth", "token_revoked"})

# The SDK's default is a Tier-2-hostile "everything"; 200 is Slack's recommended page size.
LIST_PAGE_SIZE = 200


@dataclass(frozen=True)
class HistoryPage:
    """One page of `conversations.history`, newest message first."""

    messages: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool


@dataclass
class GatewayStats:
    """Counters for the progress stream. `calls` counts every HTTP attempt, retries included."""

    calls: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0
    retries: int = 0
    malformed: int = 0  # answers that were not what the method returns (each one retried)
    backoff_seconds: float = 0.0
    pacing_wait_seconds: float = 0.0

    @property
    def wait_seconds(self) -> float:
        """All time spent not calling: pacing, Retry-After and backoff."""
        return self.backoff_seconds + self.pacing_wait_seconds


class SlackGateway:
    """Rate-aware, retrying reader of one workspace through the real `AsyncWebClient`.

    `token`: the workspace's bot token, or where to get it (`tokens.TokenSource`): asked before
    every attempt, and asked once more when Slack answers `token_expired` (a rotating token
    refreshed meanwhile by another process, or one Slack ended early)."""

    def __init__(
        self,
        token: str | TokenSource,
        *,
        base_url: str = "https://slack.com/api/",
        profile: RateProfile = INTERNAL,
        pacer: Pacer | None = None,
        timeout: int = 30,
        max_attempts: int = 6,
        max_rate_limited: int = 30,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        yield_to: YieldTo = never_wait,
        cancel_grace: float = 3.0,
        observer: CallObserver | None = None,
        session: aiohttp.ClientSession | None = None,
        team_id: str | None = None,
    ) -> None:
        # retry_handlers=[]: the SDK must not retry behind our back; this class owns retries.
        # `session`: the workspace's pooled connections, opened and closed by the caller (the
        # app keeps one per workspace); without one the SDK opens a connection per call and
        # applies `timeout` itself, with one the session's own timeout applies.
        # The client holds no token: each attempt sends the source's current one.
        self._client = AsyncWebClient(
            base_url=base_url, timeout=timeout, retry_handlers=[], session=session
        )
        self._tokens: TokenSource = FixedToken(token) if isinstance(token, str) else token
        self.profile = profile
        self.pacer = pacer if pacer is not None else Pacer(profile)
        self._max_attempts = max_attempts
        self._max_rate_limited = max_rate_limited
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._rand = rand
        self._yield_to = yield_to
        # Seconds calls may go on once their run is cancelled (see `cancelled_by`).
        self._cancel_grace = cancel_grace
        self._stats = GatewayStats()
        self._observer = observer
        # The workspace read, named in the list calls: an org-wide install's token speaks for
        # every workspace of its organisation, and Slack requires `team_id` there.
        self._team: dict[str, str] = {"team_id": team_id} if team_id else {}

    # -- cancellation ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def cancelled_by(self, cancel: asyncio.Event) -> Iterator[None]:
        """Within this block (and the tasks it starts), calls stop waiting once `cancel` is set,
        wherever they wait (pacing, Retry-After, backoff, Slack's answer), and raise
        `RunCancelled`: `cancel_grace` seconds after the gateway first sees the event, whatever is
        still under way or newly asked is abandoned. Within the grace, calls go on as usual, so
        the page a walk was fetching and the replies of pages already fetched are still committed
        (nothing is fetched twice by the resumed run) when they come quickly. A context variable,
        not an argument: the channel and user lookups between engine and gateway need not carry
        it."""
        token = _CANCEL.set(_CancelScope(cancel))
        try:
            yield
        finally:
            _CANCEL.reset(token)

    # -- the one call path -------------------------------------------------------------------------
    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call `method` until it succeeds, or raise one of the engine's errors (`RunCancelled`
        when the run's cancel event is set meanwhile)."""
        scope = _CANCEL.get()
        if scope is None:
            return await self._attempts(method, params)
        loop = asyncio.get_running_loop()
        if scope.event.is_set() and scope.deadline(loop.time(), self._cancel_grace) <= loop.time():
            raise RunCancelled(method)
        # Race every wait of the call against the event: the pacer's sleep, a Retry-After or a
        # backoff can last minutes, far longer than "between two pages".
        attempts = asyncio.create_task(self._attempts(method, params))
        stop = asyncio.create_task(scope.event.wait())
        try:
            done, _ = await asyncio.wait({attempts, stop}, return_when=asyncio.FIRST_COMPLETED)
            if attempts not in done:
                left = scope.deadline(loop.time(), self._cancel_grace) - loop.time()
                if left > 0:
                    await asyncio.wait({attempts}, timeout=left)
        finally:
            stop.cancel()
            if not attempts.done():
                attempts.cancel()  # leaves the pacer's queue; no start is recorded
                await asyncio.wait({attempts})
            if not attempts.cancelled():
                attempts.exception()  # retrieved here, whatever path re-raises it
        if attempts.cancelled():
            raise RunCancelled(method)
        return attempts.result()

    async def _attempts(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        failures = 0
        rate_limited = 0
        malformed: str | None = None
        renewed: str | None = None  # after one refusal of the token: the new one, for this call
        while True:
            token = renewed or await self._tokens.current()
            # The method's turn lasts until Slack answers: one call of a method in flight at a
            # time, and a 429 reaches the pacer before the next call of that method starts. Its
            # start waits for `yield_to`: starting (and then decoding a page of up to 999
            # messages) while Slack waits for this process's acknowledgements is not safe.
            async with self.pacer.turn(method, ready=self._yield_to):
                self._stats.calls[method] = self._stats.calls.get(method, 0) + 1
                retry_after: float | None = None
                try:
                    # POST, form-encoded, as Slack accepts for every method (the Node SDK always
                    # does): aiohttp silently re-sends an idempotent GET once after a dropped
                    # connection, a retry that would bypass pacing and this loop's accounting.
                    response = await self._client.api_call(
                        method,
                        http_verb="POST",
                        data=_form(params),
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    malformed = problem_of(method, response.data)
                    if malformed is None:
                        self._observe(method, "ok")
                        return response.data  # type: ignore[return-value]  # checked: a dict
                    outcome, reason = Outcome.TRANSIENT, MALFORMED
                except SlackApiError as exc:
                    status, error, retry_after = _describe(exc.response)
                    if status == 200 and error is None:
                        # JSON cut short (the SDK hands over aiohttp's raw response), a non-JSON
                        # page, or an object without `ok`: a garbled answer, not Slack's refusal.
                        outcome, reason, malformed = Outcome.TRANSIENT, MALFORMED, _unreadable(exc)
                    else:
                        outcome, malformed = classify(status, error), None
                        reason = error or f"http_{status}"
                except (AttributeError, json.JSONDecodeError):
                    # The SDK's own validation calls `.get` on whatever JSON came back: a list, a
                    # string or a text/plain body fails there, before any response object exists.
                    outcome, reason = Outcome.TRANSIENT, MALFORMED
                    malformed = "the body is not a JSON object"
                except _NETWORK_ERRORS as exc:
                    outcome, reason, malformed = Outcome.TRANSIENT, type(exc).__name__, None
                if outcome is Outcome.RATE_LIMITED:
                    # Waiting out Retry-After happens in the pacer, before the next start.
                    self.pacer.penalize(method, retry_after if retry_after is not None else 1.0)
            self._observe(method, _outcome_label(outcome, reason))

            if outcome is Outcome.RATE_LIMITED:
                rate_limited += 1
                self._stats.rate_limited += 1
                if rate_limited > self._max_rate_limited:
                    raise SlackUnavailable("ratelimited", method=method)
                self._stats.retries += 1
                continue
            if outcome is Outcome.PERMANENT:
                if reason in RENEWABLE and renewed is None:
                    renewed = await self._tokens.renew(token, reason)
                    if renewed is not None and renewed != token:
                        continue  # the same call with the new token, once
                raise PermanentSlackError(reason, method=method)
            if outcome is Outcome.CHANNEL:
                raise ChannelUnavailable(reason, method=method)
            if outcome is Outcome.OTHER:
                raise SlackRequestError(reason, method=method)
            if malformed is not None:
                self._stats.malformed += 1
            failures += 1
            if failures >= self._max_attempts:
                if malformed is not None:
                    raise MalformedSlackAnswer(malformed, method=method, attempts=failures)
                raise SlackUnavailable(reason, method=method)
            # Capped exponential backoff with full jitter (AWS architecture blog).
            delay = self._rand() * min(self._backoff_cap, self._backoff_base * 2 ** (failures - 1))
            self._stats.retries += 1
            self._stats.backoff_seconds += delay
            await self._sleep(delay)

    async def _cursor_walk(
        self, method: str, cursor: str | None = None, **params: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each response of a cursor-paginated method with fixed `params`."""
        seen: set[str] = set()
        while True:
            data = await self._call(method, **params, **({"cursor": cursor} if cursor else {}))
            yield data
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return
            if cursor in seen:  # a server handing out a cursor twice would loop forever
                raise SlackRequestError("cursor_loop", method=method)
            seen.add(cursor)

    # -- public API --------------------------------------------------------------------------------
    async def auth_test(self) -> dict[str, Any]:
        """`auth.test`: who the token is (`team_id`, `user_id`, `bot_id`, …)."""
        return await self._call("auth.test")

    async def list_channels(
        self, types: str = "public_channel,private_channel", exclude_archived: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Every channel visible to the token, across `conversations.list` pages."""
        async for data in self._cursor_walk(
            "conversations.list",
            types=types,
            exclude_archived=exclude_archived,
            limit=LIST_PAGE_SIZE,
            **self._team,
        ):
            for channel in data.get("channels") or []:
                yield channel

    async def channel_info(self, channel_id: str) -> dict[str, Any]:
        data = await self._call("conversations.info", channel=channel_id)
        return dict(data.get("channel") or {})

    async def join(self, channel_id: str) -> dict[str, Any]:
        """Join a public channel (a no-op with a warning when already a member)."""
        data = await self._call("conversations.join", channel=channel_id)
        return dict(data.get("channel") or {})

    async def history_pages(
        self,
        channel_id: str,
        *,
        oldest: str,
        latest: str | None,
        inclusive: bool = False,
        cursor: str | None = None,
    ) -> AsyncIterator[HistoryPage]:
        """Pages of `conversations.history` for `(oldest, latest)`, newest first.

        Every page of one walk asks the same `oldest`/`latest`/`limit` (a cursor is only valid
        with the arguments it was issued for); the walk ends when `next_cursor` is empty. `ts`
        values stay strings. Pass `cursor` to continue a walk begun with the same arguments.
        """
        params: dict[str, Any] = {
            "channel": channel_id,
            "oldest": oldest,
            "inclusive": inclusive,
            "limit": self.profile.history_page_size,
        }
        if latest is not None:
            params["latest"] = latest
        async for data in self._cursor_walk("conversations.history", cursor, **params):
            yield HistoryPage(
                messages=list(data.get("messages") or []),
                next_cursor=(data.get("response_metadata") or {}).get("next_cursor") or None,
                has_more=bool(data.get("has_more")),
            )

    async def replies(
        self, channel_id: str, thread_ts: str, *, oldest: str | None = None
    ) -> list[dict[str, Any]]:
        """All replies of a thread (every cursor page), oldest first, without the parent.

        Slack puts the parent first on the first page; it is recognised by `ts == thread_ts`.
        """
        params: dict[str, Any] = {
            "channel": channel_id,
            "ts": thread_ts,
            "limit": self.profile.replies_page_size,
        }
        if oldest is not None:
            params["oldest"] = oldest
        replies: list[dict[str, Any]] = []
        async for data in self._cursor_walk("conversations.replies", **params):
            replies.extend(m for m in data.get("messages") or [] if m.get("ts") != thread_ts)
        return replies

    async def users_pages(self) -> AsyncIterator[dict[str, Any]]:
        """Every user of the workspace (deleted users and bots included), across `users.list` pages."""
        async for data in self._cursor_walk("users.list", limit=LIST_PAGE_SIZE, **self._team):
            for user in data.get("members") or []:
                yield user

    async def user_info(self, user_id: str) -> dict[str, Any]:
        data = await self._call("users.info", user=user_id)
        return dict(data.get("user") or {})

    def _observe(self, method: str, outcome: str) -> None:
        if self._observer is not None:
            self._observer(method, outcome)

    def stats(self) -> GatewayStats:
        """A snapshot of the counters."""
        return GatewayStats(
            calls=dict(self._stats.calls),
            rate_limited=self._stats.rate_limited,
            retries=self._stats.retries,
            malformed=self._stats.malformed,
            backoff_seconds=self._stats.backoff_seconds,
            pacing_wait_seconds=self.pacer.total_wait_seconds,
        )


def _outcome_label(outcome: Outcome, reason: str) -> str:
    """What the observer hears of a failed attempt: the class for retried failures, Slack's
    error code (or `http_<status>`) for the ones that end the call."""
    if outcome is Outcome.RATE_LIMITED:
        return "rate_limited"
    if outcome is Outcome.TRANSIENT:
        return "transient"
    return reason


def _form(params: dict[str, Any]) -> dict[str, str]:
    """Form fields as Slack reads them: booleans as 1/0, nothing that is None."""
    return {
        key: ("1" if value else "0") if isinstance(value, bool) else str(value)
        for key, value in params.items()
        if value is not None
    }


def _unreadable(exc: SlackApiError) -> str:
    """What was wrong with an HTTP 200 answer the SDK could not turn into a Slack answer."""
    data = getattr(exc.response, "data", None)  # absent: aiohttp's response, JSON not decodable
    if isinstance(data, dict) and data:
        return "ok is not true and there is no error code"
    return "the body is not complete JSON"


def _describe(response: Any) -> tuple[int | None, str | None, float | None]:
    """(HTTP status, Slack error code, Retry-After seconds) of a failed SDK response.

    `SlackApiError.response` is usually an `AsyncSlackResponse`, but for an unparsable body the SDK
    hands over the raw aiohttp response instead, so every field is read defensively.
    """
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    headers = getattr(response, "headers", None) or {}
    retry_after: float | None = None
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is not None:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    return (
        (int(status) if status is not None else None),
        (str(error) if error is not None else None),
        retry_after,
    )
