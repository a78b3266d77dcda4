"""The `/backfill` usage text and the replies to commands the parser does not accept."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

# The contract's grammar, one line per sub-command, as admins type it.
USAGE_LINES = (
    ("/backfill schedule", "open the schedule form (create, or edit the existing schedule)"),
    (
        '/backfill schedule "<cron>" [days=N] [channels=#a,#b] [tz=Area/City]',
        "create or replace the schedule without the form",
    ),
    ("/backfill run", "open the run-now form"),
    ("/backfill run [days=N] [channels=#a,#b]", "start a backfill now"),
    ("/backfill status", "the run in progress (with progress) and the last runs"),
    ("/backfill list", "the schedule, its cron in words, and the next run"),
    ("/backfill pause · resume · delete", "pause, resume or delete the schedule"),
    ("/backfill cancel", "cancel the run in progress"),
    ("/backfill history [N]", "the last N runs (default 10)"),
    (
        "/backfill search <words> [in:#channel] [from:@user] [after:YYYY-MM-DD] [before:YYYY-MM-DD]",
        "search the stored messages (after: from that day on, before: up to that day)",
    ),
    ("/backfill purge", "admins: remove this workspace's stored copy (asks to confirm first)"),
    ("/backfill help", "this help"),
)

# The accepted form of each sub-command, shown under an error about it (the parser's `usage_line`).
USAGE_BY_COMMAND: dict[str, str] = {
    "help": "/backfill help",
    "schedule": '/backfill schedule "<cron>" [days=N] [channels=#a,#b] [tz=Area/City]',
    "run": "/backfill run [days=N] [channels=#a,#b]",
    "status": "/backfill status",
    "list": "/backfill list",
    "pause": "/backfill pause",
    "resume": "/backfill resume",
    "delete": "/backfill delete",
    "cancel": "/backfill cancel",
    "history": "/backfill history [N]",
    "search": "/backfill search <words> [in:#channel] [from:@user] [after:YYYY-MM-DD] [before:YYYY-MM-DD]",
    "purge": "/backfill purge",
}

DEFAULTS_NOTE = (
    "Defaults: `days=7` (the last 7 × 24 hours before the run starts), all channels, "
    "and your own Slack time zone. Example: "
    '`/backfill schedule "0 2 * * *" days=7 channels=#general,#eng tz=Europe/Paris`'
)


def usage_text() -> str:
    """Plain-text usage: the notification fallback and what terminals print."""
    lines = ["Backfill keeps a searchable copy of this workspace's messages. Commands:"]
    lines += [f"• `{syntax}`: {meaning}" for syntax, meaning in USAGE_LINES]
    return "\n".join(lines)


def usage_blocks() -> list[dict[str, Any]]:
    """The ephemeral help reply."""
    commands = "\n".join(f"• `{syntax}`  {meaning}" for syntax, meaning in USAGE_LINES)
    blocks = [
        SectionBlock(
            text=MarkdownTextObject(
                text="*Backfill* keeps a searchable copy of this workspace's messages."
            )
        ),
        SectionBlock(text=MarkdownTextObject(text=commands)),
        ContextBlock(elements=[MarkdownTextObject(text=DEFAULTS_NOTE)]),
    ]
    return [block.to_dict() for block in blocks]
