"""Taking events into the live mirror's inbox in group commits.

Slack may send a few hundred events a second (a burst, or Delayed Events catching up), and each
must be in the database before it is acknowledged. One transaction per event would make every
acknowledgement wait for its own commit and, on SQLite, for the file's one write lock: writers
that find it taken sleep in SQLite's busy handler (1, 2, 5 … 100 ms at a time, whoever wakes
first wins), so under a steady stream some wait seconds. On PostgreSQL each would hold a pooled
connection. Instead, the events that arrive while a commit is under way are written together in
the next one: every caller is answered once its own event is committed, at most one commit after
it arrived, and the commit count follows the load instead of the event count.

`writes` is the process's lock on the inbox's writers (the drainer's claims and deletions take
it too): first come, first served, so SQLite's busy handler is never what orders them. Imports
`db` only.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import inbox
from db.inbox import Arrival

# Events per commit at most: a transaction stays short even when a backlog of callers waits.
GROUP_MAX = 500


class GroupedIntake:
    """`take_in` answers once the event is committed: True when it was new, False for an event id
    taken in before. Raises what the commit raised (the caller answers Slack with an error, and
    Slack retries)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], writes: asyncio.Lock) -> None:
        self._sessions = sessions
        self._writes = writes
        self._waiting: list[tuple[Arrival, asyncio.Future[bool]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions so far (tests, benchmarks)

    async def take_in(self, arrival: Arrival) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((arrival, answer))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_all(), name="mirror-intake")
        # Shielded: a caller that gives up (its client went away) leaves the group intact.
        return await asyncio.shield(answer)

    async def _commit_all(self) -> None:
        while self._waiting:
            group = self._waiting[:GROUP_MAX]
            del self._waiting[:GROUP_MAX]
            try:
                fresh = await self._commit(group)
            except Exception as exc:  # noqa: BLE001 - each caller hears it and answers Slack
                for _, answer in group:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            for (_, answer), new in zip(group, fresh, strict=True):
                if not answer.done():
                    answer.set_result(new)

    async def _commit(self, group: list[tuple[Arrival, asyncio.Future[bool]]]) -> list[bool]:
        async with self._writes, self._sessions.begin() as session:
            self.commits += 1
            return await inbox.take_in(session, [arrival for arrival, _ in group])


__all__ = ["GROUP_MAX", "GroupedIntake"]
