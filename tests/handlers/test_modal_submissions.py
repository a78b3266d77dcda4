"""The modal listeners on their own: a submission whose `view`, `state` or `user` has the wrong
shape gets an inline error (never an exception), and the channel directory they check chosen
channels against walks Slack's list once for concurrent checks, refreshes a stale list on a miss,
and keeps walking for the follow-up when a caller's time bound ran out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from blocks import ids
from handlers.modals import handle_view_run, handle_view_schedule, state_values, submitter
from scheduler.channel_directory import ChannelDirectory, ChannelLookupTimeout
from scheduler.people import Viewer


class Ack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


class People:
    async def viewer(self, client: object, user_id: str) -> Viewer:
        return Viewer(user_id=user_id, is_admin=True, tz=None)


class Deps:
    """Only what the listeners reach before a malformed form is refused."""

    team_id = "T0TEAM"
    people = People()

    def may_run(self, viewer: Viewer) -> bool:
        return True


class Context(dict[str, Any]):
    """Bolt's context: a dict with attributes."""

    user_id = "U0CTX"


SHAPES: list[Any] = [
    [1],
    "x",
    3,
    None,
    {"state": [1]},
    {"state": "x"},
    {"state": {"values": 7}},
    {"state": {"values": [{"a": 1}]}},
    {"state": {"values": None}},
]


@pytest.mark.parametrize("view", SHAPES)
async def test_modal_submissions_of_any_shape_get_an_inline_error(
    view: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handlers.modals.deps_of", lambda context: Deps())
    for handler, block in (
        (handle_view_schedule, ids.SCHEDULE_CRON_BLOCK),
        (handle_view_run, ids.RUN_DAYS_BLOCK),
    ):
        ack = Ack()
        body: dict[str, Any] = {"user": "U0ADMIN" if view == 3 else {"id": 7}}
        await handler(ack, body, view, object(), Context())  # type: ignore[arg-type]
        [call] = ack.calls
        assert call["response_action"] == "errors" and block in call["errors"], call


def test_state_values_and_submitter_read_any_shape() -> None:
    assert state_values({"state": {"values": {"a": {}}}}) == {"a": {}}
    for view in SHAPES:
        state_values(view)

    assert submitter({"user": {"id": "U0BODY"}}, Context()) == "U0BODY"  # type: ignore[arg-type]
    for body in ({}, {"user": None}, {"user": "U0X"}, {"user": {"id": 5}}):
        assert submitter(body, Context()) == "U0CTX"  # type: ignore[arg-type]


class Slack:
    """`conversations.list` in two pages, each answered after `delay` seconds."""

    def __init__(self, channels: list[dict[str, Any]], delay: float = 0.0) -> None:
        self.channels, self.delay, self.calls = channels, delay, 0

    async def conversations_list(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        half = len(self.channels) // 2
        if kwargs.get("cursor") == "page2":
            return {
                "ok": True,
                "channels": self.channels[half:],
                "response_metadata": {"next_cursor": ""},
            }
        return {
            "ok": True,
            "channels": self.channels[:half],
            "response_metadata": {"next_cursor": "page2"},
        }


CHANNELS = [
    {"id": "C0GENERAL", "name": "general"},
    {"id": "C0RANDOM", "name": "random"},
    {"id": "C0OLD", "name": "old", "is_archived": True},
    {"id": "D0DM", "is_im": True},
]


async def test_directory_one_walk_for_concurrent_checks_then_cached() -> None:
    slack = Slack(CHANNELS, delay=0.05)
    directory = ChannelDirectory()
    checks = await asyncio.gather(
        *(
            directory.check(
                slack,
                "T1",
                ids=["C0GENERAL", "C0MADEUP1"],
                names=["#Random", "old"],  # type: ignore[arg-type]
                timeout=5,
            )
            for _ in range(5)
        )
    )
    assert slack.calls == 2  # one walk of two pages for all five
    check = checks[0]
    assert check.ids == ("C0GENERAL", "C0RANDOM")
    assert check.names == {"C0GENERAL": "general", "C0RANDOM": "random"}
    assert check.unknown == ("C0MADEUP1", "#old")  # an archived channel's name is not found
    again = await directory.check(slack, "T1", ids=["C0OLD"], timeout=5)  # type: ignore[arg-type]
    assert again.unknown == () and slack.calls == 2  # archived ids are listed: the run reports them


async def test_directory_refreshes_a_stale_list_on_a_miss() -> None:
    now = [0.0]
    slack = Slack(list(CHANNELS))
    directory = ChannelDirectory(refresh_after=2.0, clock=lambda: now[0])
    assert (await directory.check(slack, "T1", ids=["C0NEW"], timeout=5)).unknown == ("C0NEW",)  # type: ignore[arg-type]
    assert slack.calls == 2
    slack.channels.append({"id": "C0NEW", "name": "new"})
    now[0] = 1.0  # within refresh_after: a miss is not worth another walk
    assert (await directory.check(slack, "T1", ids=["C0NEW"], timeout=5)).unknown == ("C0NEW",)  # type: ignore[arg-type]
    assert slack.calls == 2
    now[0] = 3.0
    assert (await directory.check(slack, "T1", ids=["C0NEW"], timeout=5)).ids == ("C0NEW",)  # type: ignore[arg-type]
    assert slack.calls == 4


async def test_directory_walk_outlives_a_caller_that_stopped_waiting() -> None:
    slack = Slack(CHANNELS, delay=0.2)
    directory = ChannelDirectory()
    with pytest.raises(ChannelLookupTimeout):
        await directory.check(slack, "T1", ids=["C0GENERAL"], timeout=0.05)  # type: ignore[arg-type]
    check = await directory.check(slack, "T1", ids=["C0GENERAL"], timeout=5)  # type: ignore[arg-type]
    assert check.ids == ("C0GENERAL",) and slack.calls == 2  # the same walk, not a second one
