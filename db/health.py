"""Does the SQL store answer? One `SELECT 1` through the app's own pool, bounded in time, for
`GET /readyz`. The answer names what failed in plain words, never the URL (it may hold a password).
Imports SQLAlchemy only; never Slack code."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

DATABASE_TIMEOUT_S = 3.0


async def database_problem(engine: AsyncEngine, timeout: float = DATABASE_TIMEOUT_S) -> str | None:
    """None when the database answered `SELECT 1` within `timeout` seconds, else what is wrong."""
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"the database did not answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type says which
        return f"the database is unreachable ({type(exc).__name__})"
    return None


__all__ = ["DATABASE_TIMEOUT_S", "database_problem"]
