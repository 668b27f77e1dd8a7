"""The analytics database (PostgreSQL): migrations, the writer, and the salon's questions.

- **Migrations** are the numbered SQL files in `sql/migrations/`, applied in order,
  each once and in its own transaction, under an advisory lock (two replicas starting together
  do not race), by `gateway/sql_migrations.py` (as the salon registry's are).
  `frontdesk analytics migrate` runs them; so does the writer when it starts.
- **The writer** moves facts from Redis (`fd:{<salon>}:analytics`, where handling queued them)
  to the `events` table in batches. One process writes at a time (a Redis lock); a batch is
  inserted with `ON CONFLICT (id) DO NOTHING` and only then acknowledged, so a crash between
  the two writes nothing twice. While PostgreSQL is down the facts wait in Redis (the stream is
  capped at about a million; `frontdesk_analytics_backlog` shows how many) and the writer
  tries again with growing pauses.
- **Questions** are the SQL files in `sql/questions/`, written for Metabase's native
  queries (`{{salon}}`, `{{start}}`, `{{end}}`); `run_question` runs them with asyncpg for
  `frontdesk analytics report` and the demo's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.keys import Keys
from gateway.pipeline.lua import Lua
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.workers import ensure_group
from gateway.sql_migrations import Schema

log = logging.getLogger("frontdesk.analytics")

SQL_DIR = Path(__file__).parent / "sql"
GROUP = "writers"
BATCH = 500
LOCK_MS = 10_000
# Columns a fact may fill (the rest of `events` is set by the writer or the database).
COLUMNS = (
    "id",
    "salon",
    "at",
    "local_at",
    "kind",
    "channel",
    "client",
    "step",
    "reason",
    "booking",
    "origin",
    "service",
    "master",
    "starts_at",
    "answer",
    "notice",
    "seconds",
    "previous_booking",
)
# `schema_migrations` is the analytics' record since its first release: the name stays. The
# advisory lock's key spells "frontdesk analytics".
SCHEMA = Schema(SQL_DIR / "migrations", "schema_migrations", 7_403_117)
_PARAM = re.compile(r"\{\{\s*(salon|start|end)\s*\}\}")

# 1: still ours, 2 (FRESH): just taken, 0: another process holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 2 or 0
"""
FRESH = 2
_DONE = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration, in order."""
    return SCHEMA.migrations()


async def migrate(connection: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; their names."""
    return await SCHEMA.migrate(connection)


def _row(fact: dict[str, Any]) -> tuple[Any, ...]:
    values: dict[str, Any] = dict(fact)
    for name in ("at",):
        values[name] = datetime.fromisoformat(values[name])
    for name in ("local_at", "starts_at"):
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    if values.get("seconds") is not None:
        values["seconds"] = float(values["seconds"])
    return tuple(values.get(column) for column in COLUMNS)


async def insert(connection: asyncpg.Connection, facts: Sequence[dict[str, Any]]) -> int:
    """Write facts; those already written are skipped. How many were new."""
    rows = [_row(fact) for fact in facts]
    names = ", ".join(COLUMNS)
    placeholders = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
    async with connection.transaction():
        before = await connection.fetchval(
            "SELECT count(*) FROM events WHERE id = ANY($1)", [r[0] for r in rows]
        )
        await connection.executemany(
            f"INSERT INTO events ({names}) VALUES ({placeholders}) ON CONFLICT (id) DO NOTHING",  # noqa: S608 - fixed columns
            rows,
        )
    return len(rows) - int(before)


class Writer:
    """Moves facts from Redis to PostgreSQL; see the module's docstring."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        database_url: str,
        metrics: Metrics,
        *,
        pause: float = 1.0,
        max_pause: float = 30.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.database_url = database_url
        self.metrics = metrics
        self.pause = pause
        self.max_pause = max_pause
        self.owner = uuid.uuid4().hex[:12]
        self.lock = keys.analytics_writer
        self._renew = Lua(redis, _RENEW)
        self._done = Lua(redis, _DONE)
        self._connection: asyncpg.Connection | None = None
        self._migrated = False
        self._grouped = False

    async def run(self) -> None:
        failures = 0
        cursor = "0"
        while True:
            try:
                held = await self._renew(keys=[self.lock], args=[self.owner, LOCK_MS])
                if not held:
                    cursor = "0"
                    await asyncio.sleep(LOCK_MS / 3000)  # another process writes
                    continue
                if held == FRESH:
                    # Just took over: what a predecessor read but did not write comes first.
                    cursor = "0"
                cursor = await self._step(cursor)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever it was, the facts stay pending: try again
                failures += 1
                self.metrics.analytics_failures.inc()
                log.warning("analytics not written (attempt %d): %s", failures, type(exc).__name__)
                await self._disconnect()
                # The database or Redis may have come back empty: make the schema and the
                # group again.
                self._migrated = False
                self._grouped = False
                cursor = "0"  # what was read stays pending: read it again
                await asyncio.sleep(min(self.max_pause, self.pause * 2 ** (failures - 1)))

    async def _step(self, cursor: str) -> str:
        if not self._grouped:
            await ensure_group(self.redis, self.keys.analytics, GROUP)
            self._grouped = True
        reply = await self.redis.xreadgroup(
            GROUP,
            "writer",
            {self.keys.analytics: cursor},
            count=BATCH,
            block=None if cursor == "0" else 1000,
        )
        entries = reply[0][1] if reply else []
        if not entries:
            if cursor != "0":
                await asyncio.sleep(0.2)  # an embedded Redis does not block
            return ">"
        facts = []
        for _, fields in entries:
            try:
                facts.append(json.loads(fields[b"fact"]))
            except (KeyError, TypeError, ValueError):
                # Trimmed away (the backlog reached its cap) or unreadable: counted, let go.
                self.metrics.analytics_dropped.inc()
        if facts:
            connection = await self._connect()
            written = await insert(connection, facts)
            self.metrics.analytics_written.inc(written)
        await self._done(keys=[self.keys.analytics], args=[GROUP, *(i for i, _ in entries)])
        return cursor if cursor == "0" else ">"

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.database_url, timeout=5)
        if not self._migrated:
            applied = await migrate(self._connection)
            if applied:
                log.info("analytics schema migrated: %s", ", ".join(applied))
            self._migrated = True
        return self._connection

    async def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None

    async def close(self) -> None:
        await self._disconnect()
        with contextlib.suppress(RedisError, OSError):
            if (await self.redis.get(self.lock)) == self.owner.encode():
                await self.redis.delete(self.lock)


# --- questions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    slug: str
    title: str
    display: str  # Metabase's visualisation: table, bar, line
    sql: str  # with Metabase's {{salon}}, {{start}}, {{end}}

    def for_asyncpg(self) -> str:
        positions = {"salon": "$1", "start": "$2", "end": "$3"}
        return _PARAM.sub(lambda m: positions[m.group(1)], self.sql)


def questions() -> list[Question]:
    found = []
    for path in sorted((SQL_DIR / "questions").glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        header = dict(re.findall(r"^-- (title|display): (.+)$", sql, flags=re.MULTILINE))
        slug = path.stem.partition("_")[2]
        found.append(Question(slug, header["title"], header.get("display", "table"), sql))
    return found


async def run_question(
    connection: asyncpg.Connection, question: Question, salon: str, start: date, end: date
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The question's columns and rows for the salon and the days [start, end]."""
    statement = await connection.prepare(question.for_asyncpg())
    columns = [attribute.name for attribute in statement.get_attributes()]
    rows = await statement.fetch(salon, start, end)
    return columns, [tuple(row) for row in rows]


def table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """Rows as a plain text table."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(column), *(len(row[n]) for row in cells)) if cells else len(column)
        for n, column in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    if not cells:
        lines.append("(nothing yet)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
