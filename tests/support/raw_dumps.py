"""Everything a database holds, as text, to search for secrets that must never be stored.

SQLite: every row of every table listed in `sqlite_master`, plus the raw bytes of the database
file and its WAL. PostgreSQL: every row of every table outside the system schemas, plus
`pg_dump`'s output when the binary is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from db.session import create_engine


async def _rows_as_text(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                listing = "SELECT name FROM sqlite_master WHERE type = 'table'"
            else:
                listing = (
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                )
            tables = [row[0] for row in (await conn.exec_driver_sql(listing)).all()]
            assert tables, "no table to dump"
            texts = []
            for table in tables:
                name = f'"{table}"' if conn.dialect.name == "sqlite" else table
                rows = (await conn.exec_driver_sql(f"SELECT * FROM {name}")).all()
                texts.append(f"{table}: {[tuple(row) for row in rows]!r}")
            return texts
    finally:
        await engine.dispose()


def _files_as_text(url: str) -> list[str]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        files = [path, path.with_name(path.name + "-wal")]
        return [f.read_bytes().decode("latin-1") for f in files if f.exists()]
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return []
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [pg_dump, "--no-owner", dsn], capture_output=True, text=True, check=True, timeout=120
    )
    return [done.stdout]


async def dump_everything(url: str) -> str:
    """Every row of every table (and the files behind them) of the database at `url`."""
    return "\n".join([*await _rows_as_text(url), *_files_as_text(url)])
