"""`/backfill purge`'s replies: goldens for the confirmation and the result, limits for every one."""

from __future__ import annotations

import json

import pytest

from blocks import ids
from blocks.purge import (
    purge_cancelled_reply,
    purge_confirm_reply,
    purge_done_reply,
    purge_nothing_reply,
    purge_running_reply,
)
from blocks.replies import Reply
from tests.blocks.slack_limits import assert_golden, check_message


def check(reply: Reply) -> Reply:
    assert isinstance(reply, Reply)
    check_message(reply.blocks, reply.text)
    assert reply.as_kwargs()["response_type"] == "ephemeral"
    return reply


def buttons(reply: Reply) -> list[dict[str, object]]:
    [actions] = [b for b in reply.blocks if b["type"] == "actions"]
    assert actions["block_id"] == ids.PURGE_ACTIONS_BLOCK
    return list(actions["elements"])


def test_purge_confirmation_golden() -> None:
    reply = check(
        purge_confirm_reply(
            messages=12345, documents=12345, runs=8, schedule=True, live_mirror=True
        )
    )
    assert_golden("reply_purge_confirm", reply.blocks)
    purge, cancel = buttons(reply)
    assert purge["action_id"] == ids.PURGE_CONFIRM and purge["style"] == "danger"
    confirm = purge["confirm"]
    assert isinstance(confirm, dict) and confirm["style"] == "danger"
    assert "12,345 stored messages" in confirm["text"]["text"]
    assert "8 runs and the schedule" in confirm["text"]["text"]
    assert cancel["action_id"] == ids.PURGE_CANCEL and "style" not in cancel
    text = json.dumps(reply.blocks)
    assert "*12,345 stored messages*" in text and "12,345 documents" in text
    assert "*8 runs*" in text and "*the schedule*" in text
    assert "live mirror" in text
    assert "12,345 stored messages" in reply.text and "the schedule" in reply.text


def test_purge_confirmation_says_what_is_not_there() -> None:
    reply = check(purge_confirm_reply(messages=1, documents=None, runs=0, schedule=False))
    text = json.dumps(reply.blocks)
    assert "*1 stored message*" in text and "*0 runs*" in text
    assert "no schedule" in text and "did not say how many documents" in text
    assert "live mirror" not in text
    [purge, _cancel] = buttons(reply)
    assert "schedule" not in purge["confirm"]["text"]["text"]  # type: ignore[index]


@pytest.mark.parametrize("n", [0, 1, 10**12])
def test_purge_replies_fit_slacks_limits(n: int) -> None:
    check(purge_confirm_reply(messages=n, documents=n, runs=n, schedule=bool(n), live_mirror=True))
    check(purge_done_reply(messages=n, documents=n, runs=n, schedule=bool(n)))
    check(
        purge_done_reply(messages=n, documents=n, runs=n, schedule=True, collection_removed=False)
    )
    for reply in (purge_nothing_reply(), purge_cancelled_reply()):
        assert ids.PURGE_CONFIRM not in json.dumps(check(reply).blocks)


def test_purge_done_golden_and_no_buttons() -> None:
    reply = check(purge_done_reply(messages=12345, documents=12340, runs=8, schedule=True))
    assert_golden("reply_purge_done", reply.blocks)
    assert reply.text.startswith(
        "Purged. Removed 12,345 stored messages, the search collection (12,340 documents), "
        "8 runs and the schedule."
    )
    assert all(b["type"] != "actions" for b in reply.blocks)


def test_purge_done_when_chroma_failed_says_to_purge_again() -> None:
    reply = check(
        purge_done_reply(messages=3, documents=0, runs=1, schedule=False, collection_removed=False)
    )
    assert "search collection" not in reply.text.split(".")[1]  # not among what was removed
    assert "run `/backfill purge` again" in json.dumps(reply.blocks)


def test_purge_refused_while_running_names_the_run_and_the_way_out() -> None:
    reply = check(purge_running_reply(12, "U0ADMIN1"))
    text = json.dumps(reply.blocks)
    assert "Run #12 is running" in text and "<@U0ADMIN1>" in text
    assert "/backfill cancel" in text and "Nothing was removed" in text
    scheduled = check(purge_running_reply(3, None))
    assert "by the schedule" in scheduled.text
