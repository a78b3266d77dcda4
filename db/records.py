"""Plain data records shared by the SQL and vector stores.

No I/O here: these are the shapes the engine hands to `db` for writing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One Slack message as stored: `ts` is text exactly as Slack sent it, never a float."""

    workspace_id: str
    channel_id: str
    channel_name: str
    ts: str
    thread_ts: str | None
    user_id: str
    user_name: str
    text: str

    @property
    def document_id(self) -> str:
        """Chroma document id: deterministic, so a re-upsert replaces instead of duplicating."""
        return f"{self.channel_id}:{self.ts}"
