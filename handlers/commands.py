"""The `/backfill` slash command: parse the sub-command and answer within the acknowledgement."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from blocks.help import not_available_blocks, unknown_command_blocks, usage_blocks, usage_text

COMMAND = "/backfill"
# Every sub-command of the contract's grammar.
SUBCOMMANDS = frozenset(
    {"help", "schedule", "run", "status", "list", "pause", "resume", "delete", "cancel", "history"}
)


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(handle_command_backfill)


def first_word(text: str | None) -> str:
    """The sub-command, lower-cased; an empty command means `help`."""
    words = (text or "").split(maxsplit=1)
    return words[0].lower() if words else "help"


async def handle_command_backfill(ack: AsyncAck, command: dict[str, Any]) -> None:
    word = first_word(command.get("text"))
    if word == "help":
        await ack(text=usage_text(), blocks=usage_blocks(), response_type="ephemeral")
    elif word in SUBCOMMANDS:
        await ack(
            text=f"/backfill {word} is not available in this version yet.",
            blocks=not_available_blocks(word),
            response_type="ephemeral",
        )
    else:
        await ack(
            text=f"{word} is not a /backfill command.\n{usage_text()}",
            blocks=unknown_command_blocks(word),
            response_type="ephemeral",
        )
