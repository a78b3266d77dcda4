"""`GET /readyz`: can this process do its work now? The database answers a query, the vector
store answers a lookup, and in Socket Mode the socket to Slack is connected. Each check is
bounded in time and they run side by side; what failed is said in plain words, never a URL.

`/healthz` stays "the process is alive": a load balancer restarts on that, and routes on this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from db.health import database_problem

VECTORS_TIMEOUT_S = 5.0  # a lookup may wait behind one upsert chunk in flight
SOCKET_TIMEOUT_S = 2.0


class Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass
class Readiness:
    """The checks of one process. `socket_connected` is set once Socket Mode has connected."""

    engine: AsyncEngine
    vectors: Pingable
    socket_mode: bool = False
    socket_connected: Callable[[], Awaitable[bool]] | None = None
    vectors_timeout: float = VECTORS_TIMEOUT_S

    async def problems(self) -> list[str]:
        """What keeps the process from being ready; empty when it is."""
        checks = [database_problem(self.engine), self._vectors_problem()]
        if self.socket_mode:
            checks.append(self._socket_problem())
        return [problem for problem in await asyncio.gather(*checks) if problem]

    async def _vectors_problem(self) -> str | None:
        try:
            async with asyncio.timeout(self.vectors_timeout):
                await self.vectors.ping()
        except TimeoutError:
            return f"the vector store did not answer within {self.vectors_timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type says
            return f"the vector store is unreachable ({type(exc).__name__})"
        return None

    async def _socket_problem(self) -> str | None:
        if self.socket_connected is None:
            return "the Socket Mode connection to Slack is not open yet"
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT_S):
                connected = await self.socket_connected()
        except Exception as exc:  # noqa: BLE001
            return f"the Socket Mode connection could not be checked ({type(exc).__name__})"
        return None if connected else "the Socket Mode connection to Slack is not connected"
