"""What each Slack event means for the stored copy (`scheduler.mirror_rules`), table-tested."""

from __future__ import annotations

from typing import Any

import pytest

from db.removals import DELETED, DISQUALIFIED
from scheduler.mirror_rules import (
    DropChannel,
    Remove,
    Rename,
    Store,
    changes_of,
    followed,
    thread_ts_of,
)

TS, PARENT = "1750000001.000100", "1750000000.000100"


def msg(**kw: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "a real message",
        "ts": TS,
        **kw,
    }


def changed(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "C1",
            "message": message, "ts": "1750000099.000000"}  # fmt: skip


EDITED = {"user": "U1", "ts": "1750000050.000000"}
CASES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("new message", msg(), [Store(msg(), None)]),
    ("thread reply", msg(thread_ts=PARENT), [Store(msg(thread_ts=PARENT), PARENT)]),
    ("broadcast reply", msg(subtype="thread_broadcast", thread_ts=PARENT),
     [Store(msg(subtype="thread_broadcast", thread_ts=PARENT), PARENT)]),
    ("file share with a caption", msg(subtype="file_share"), [Store(msg(subtype="file_share"), None)]),
    ("trivial text", msg(text="ok"), []),
    ("join", msg(subtype="channel_join", text="<@U1> has joined the channel"), []),
    ("bot post", msg(bot_id="B1", subtype="bot_message"), []),
    ("legacy reply count", msg(subtype="message_replied", hidden=True), []),
    ("edit", changed(msg(text="fixed", edited=EDITED)), [Store(msg(text="fixed", edited=EDITED), None)]),
    ("edit to noise", changed(msg(text=":+1:", edited=EDITED)),
     [Remove(TS, DISQUALIFIED, EDITED["ts"])]),
    ("parent deleted with replies", changed(msg(subtype="tombstone", hidden=True, thread_ts=TS,
                                                reply_count=2, user="USLACKBOT")), [Remove(TS)]),
    ("deletion", {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": "C1",
                  "deleted_ts": TS, "ts": "1750000099.000000"}, [Remove(TS, DELETED)]),
    ("rename", {"type": "channel_rename", "channel": {"id": "C1", "name": "new-name"}}, [Rename("new-name")]),
    ("channel deleted", {"type": "channel_deleted", "channel": "C1"}, [DropChannel()]),
    ("archive", {"type": "channel_archive", "channel": "C1", "user": "U1"}, []),
    ("bot joined", {"type": "member_joined_channel", "channel": "C1", "user": "UBOT"}, []),
    ("malformed edit", changed({"text": "no ts"}), []),
    ("malformed deletion", {"type": "message", "subtype": "message_deleted", "channel": "C1"}, []),
]  # fmt: skip


@pytest.mark.parametrize(("event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_changes_of_each_event(event: dict[str, Any], expected: list[Any]) -> None:
    assert changes_of(event, include_bots=False, min_text_chars=3) == expected


def test_thread_ts_is_set_on_replies_and_on_parents_with_replies() -> None:
    assert thread_ts_of(msg(thread_ts=PARENT)) == PARENT
    assert thread_ts_of(msg(thread_ts=TS, reply_count=3)) == TS
    assert thread_ts_of(msg(thread_ts=TS)) is None
    assert thread_ts_of(msg()) is None


def test_direct_messages_are_not_followed() -> None:
    assert followed(msg()) and followed({"type": "channel_rename", "channel": {"id": "G1"}})
    assert not followed(msg(channel="D123")) and not followed(msg(channel_type="im"))
    assert not followed({"type": "message"})
