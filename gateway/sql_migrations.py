"""Numbered SQL migrations for Frontdesk's PostgreSQL schemas (the analytics, the salon registry).

A schema's migrations are the files `NNNN_name.sql` of one directory, applied in order, each once
and in its own transaction, under an advisory lock (two replicas starting together do not race).
Each schema records what it applied in a table of its own, so that two schemas can share one
database (`DATABASE_URL` may name the analytics database) without their numbers meeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Schema:
    """Where a schema's migrations are, the table that records them, and its advisory lock."""

    directory: Path
    table: str
    lock: int

    def __post_init__(self) -> None:
        # The table's name is put into SQL as is: only a plain identifier will do.
        if not _TABLE.match(self.table):
            raise ValueError(f"not a plain table name: {self.table!r}")

    def migrations(self) -> list[tuple[int, str, str]]:
        """(version, name, sql) of every migration, in order."""
        found = []
        for path in sorted(self.directory.glob("*.sql")):
            number, _, name = path.stem.partition("_")
            found.append((int(number), name, path.read_text(encoding="utf-8")))
        return found

    async def migrate(self, connection: asyncpg.Connection) -> list[str]:
        """Apply the migrations not applied yet, each in its own transaction; their names."""
        applied: list[str] = []
        await connection.execute("SELECT pg_advisory_lock($1)", self.lock)
        try:
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await connection.fetch(f"SELECT version FROM {self.table}")  # noqa: S608 - checked name
            done = {row["version"] for row in rows}
            for version, name, sql in self.migrations():
                if version in done:
                    continue
                async with connection.transaction():
                    await connection.execute(sql)
                    await connection.execute(
                        f"INSERT INTO {self.table} (version, name) VALUES ($1, $2)",  # noqa: S608 - checked name
                        version,
                        name,
                    )
                applied.append(f"{version:04d}_{name}")
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", self.lock)
        return applied
