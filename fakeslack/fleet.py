"""Several generated workspaces of one app, for multi-workspace tests and benchmarks.

Each workspace is `generator.generate` with its own seed (small by default); ids never collide
across them, and they all carry the same app (app id, signing secret). Imports nothing of the app.
"""

from __future__ import annotations

from fakeslack.generator import generate
from fakeslack.workspace import Workspace


def generate_workspaces(
    count: int,
    seed: int = 0,
    *,
    users: int = 8,
    channels: int = 7,
    messages: int = 200,
    days: int = 30,
    now: float | None = None,
    enterprise: bool = False,
) -> list[Workspace]:
    """`count` workspaces (seeds `seed`, `seed + 1`, …) with distinct team ids and no id shared
    between them, except with `enterprise`: then all have the same bot user, as an org-wide
    install of one enterprise has (add them with `FakeSlack.add_workspace(ws, enterprise=…)`)."""
    if count < 1:
        raise ValueError("count >= 1")
    ids: set[str] = set()
    made: list[Workspace] = []
    for i in range(count):
        made.append(
            generate(
                seed + i,
                users=users,
                channels=channels,
                messages=messages,
                days=days,
                now=now,
                ids=ids,
                app=made[0] if made else None,
                same_bot=enterprise,
            )
        )
    return made
