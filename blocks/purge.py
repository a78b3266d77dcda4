"""`/backfill purge`'s replies: the ephemeral confirmation (what exactly will be removed, a danger
"Purge" button with a confirm dialog, and Cancel), the refusal while a run is running, and what the
purge removed (which replaces the confirmation).

Pure: counts in, a `Reply` out; imports only `blocks.*` and `slack_sdk.models`.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    PlainTextObject,
)

from blocks import ids
from blocks.elements import MAX_FALLBACK_TEXT, button_text, context, section
from blocks.replies import Reply
from blocks.text import plural, truncate, user_mention, user_plain

MAX_CONFIRM_TEXT = 300  # a confirm dialog's text (Slack's limit)
_KEPT = (
    "Slack keeps its messages: a new run or schedule stores them again (messages Slack deleted "
    "never come back). The app stays installed."
)


def _reply(text: str, blocks: Sequence[Block]) -> Reply:
    return Reply(text=truncate(text, MAX_FALLBACK_TEXT), blocks=[b.to_dict() for b in blocks])


def _documents(documents: int | None) -> str:
    if documents is None:
        return "its search collection (Chroma did not say how many documents it holds)"
    return f"its search collection ({plural(documents, 'document')})"


def _what(
    *, messages: int, documents: int | None, runs: int, schedule: bool, bold: bool
) -> list[str]:
    """The lines naming what goes: every kind, even when there is none of it."""
    b = "*" if bold else ""
    return [
        f"{b}{plural(messages, 'stored message')}{b}",
        _documents(documents),
        f"{b}{plural(runs, 'run')}{b} (the run history)",
        f"{b}the schedule{b}" if schedule else "no schedule (there is none)",
    ]


def purge_confirm_reply(
    *,
    messages: int,
    documents: int | None,
    runs: int,
    schedule: bool,
    live_mirror: bool = False,
) -> Reply:
    """The confirmation `/backfill purge` answers with (admins only)."""
    lines = _what(messages=messages, documents=documents, runs=runs, schedule=schedule, bold=True)
    bullets = "\n".join(f"• {line}" for line in lines)
    notes = [_KEPT]
    if live_mirror:
        notes.append("The live mirror stays on: messages posted after the purge are stored.")
    confirm_text = (
        f"Removes {plural(messages, 'stored message')}, the search collection, "
        f"{plural(runs, 'run')}{' and the schedule' if schedule else ''} of this workspace. "
        "This cannot be undone."
    )
    purge = ButtonElement(
        text=button_text("Purge"),
        action_id=ids.PURGE_CONFIRM,
        value="purge",
        style="danger",
        confirm=ConfirmObject(
            title=PlainTextObject(text="Purge the stored copy?"),
            text=PlainTextObject(text=truncate(confirm_text, MAX_CONFIRM_TEXT)),
            confirm=PlainTextObject(text="Purge"),
            deny=PlainTextObject(text="Keep it"),
            style="danger",
        ),
    )
    cancel = ButtonElement(text=button_text("Cancel"), action_id=ids.PURGE_CANCEL, value="cancel")
    blocks: list[Block] = [
        section(
            ":warning: *Purge this workspace's stored copy?* This removes, for good:\n" + bullets
        ),
        context(*notes),
        ActionsBlock(block_id=ids.PURGE_ACTIONS_BLOCK, elements=[purge, cancel]),
    ]
    plain = "Purge this workspace's stored copy? This removes " + "; ".join(
        _what(messages=messages, documents=documents, runs=runs, schedule=schedule, bold=False)
    )
    return _reply(plain + ".", blocks)


def purge_running_reply(job_run_id: int, triggered_by: str | None) -> Reply:
    """A purge refused because a run is running (nothing removed)."""
    by = user_mention(triggered_by) if triggered_by else "the schedule"
    by_plain = user_plain(triggered_by) if triggered_by else "the schedule"
    tail = "cancel it first with `/backfill cancel`, then purge once it has stopped. " + (
        "Nothing was removed."
    )
    return _reply(
        f"Run #{job_run_id} is running (started by {by_plain}): {tail}",
        [
            section(
                f":hourglass_flowing_sand: Run #{job_run_id} is running (started by {by}): {tail}"
            ),
            context("A run purged mid-page would store that page again after the purge."),
        ],
    )


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def purge_done_reply(
    *, messages: int, documents: int, runs: int, schedule: bool, collection_removed: bool = True
) -> Reply:
    """What the purge removed (it replaces the confirmation)."""
    removed = [plural(messages, "stored message")]
    if collection_removed:
        removed.append(f"the search collection ({plural(documents, 'document')})")
    removed.append(plural(runs, "run"))
    if schedule:
        removed.append("the schedule")
    text = f"Purged. Removed {_and(removed)}."
    blocks: list[Block] = [section(f":wastebasket: *Purged.* Removed {_and(removed)}.")]
    if not collection_removed:
        failed = (
            "The search collection could not be removed now (Chroma did not answer): "
            "run `/backfill purge` again to finish."
        )
        blocks.append(section(f":warning: {failed}"))
        text += f" {failed}"
    blocks.append(context(_KEPT))
    return _reply(text, blocks)


def purge_nothing_reply() -> Reply:
    """A second press: the copy was already purged, nothing changed."""
    text = "Nothing left to purge: no stored messages, documents, runs or schedule."
    return _reply(text, [section(f":information_source: {text}")])


def purge_cancelled_reply() -> Reply:
    text = "Purge cancelled. Nothing was removed."
    return _reply(text, [section(f":information_source: {text}")])


__all__ = [
    "purge_cancelled_reply",
    "purge_confirm_reply",
    "purge_done_reply",
    "purge_nothing_reply",
    "purge_running_reply",
]
