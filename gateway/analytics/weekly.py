"""The owner's weekly report: the dashboard's own questions, answered for one ISO week.

The numbers come from running the SQL questions in `sql/questions/` (the ones Metabase shows,
`store.questions()`) for the week's seven days; nothing here repeats their SQL. A week is the
salon's calendar week (`local_at`, the salon's time), Monday to Sunday, named as ISO 8601 does
(`2026-W49`).

`claim` records a week as sent (`owner_reports`, one row per salon and week) in a transaction
that stays open while the report is sent: when sending fails the row goes with it, and a second
replica sending the same week waits for the first and then finds the row.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from gateway.analytics.store import questions, run_question

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
# The dashboard's questions the report answers, by slug (the file name after its number).
BOOKINGS = "bookings_per_day"
CONVERSION = "conversion_by_channel"
HANDOFFS = "handoffs"
FIRST_RESPONSE = "first_response"
NO_SHOWS = "reminders_and_no_shows"
REPORTED = (BOOKINGS, CONVERSION, HANDOFFS, FIRST_RESPONSE, NO_SHOWS)

Answer = tuple[list[str], list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class Week:
    """An ISO week: its name and its first and last day."""

    name: str
    start: date
    end: date

    @classmethod
    def of(cls, day: date) -> Week:
        year, number, _ = day.isocalendar()
        start = day - timedelta(days=day.weekday())
        return cls(f"{year}-W{number:02d}", start, start + timedelta(days=6))

    @classmethod
    def parse(cls, text: str) -> Week:
        found = _WEEK.match(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not an ISO week such as 2026-W49")
        try:
            return cls.of(date.fromisocalendar(int(found[1]), int(found[2]), 1))
        except ValueError:
            raise ValueError(f"{text!r}: no such week") from None


def plain(value: Any) -> Any:
    """A value of a question's row as JSON has it (numeric columns arrive as Decimal)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class WeekReport:
    """The answers of the reported questions for one salon and week, and the figures read
    from them."""

    salon: str
    week: Week
    answers: dict[str, Answer]

    def rows(self, slug: str) -> list[dict[str, Any]]:
        columns, rows = self.answers[slug]
        return [dict(zip(columns, map(plain, row), strict=True)) for row in rows]

    def bookings_by_channel(self) -> dict[str, int]:
        """Bookings made in the week per channel (the question's days added up)."""
        totals: dict[str, int] = {}
        for row in self.rows(BOOKINGS):
            totals[row["channel"]] = totals.get(row["channel"], 0) + int(row["bookings"])
        return dict(sorted(totals.items()))

    def handoffs(self) -> int:
        return sum(int(row["handoffs"]) for row in self.rows(HANDOFFS))

    def figures(self) -> dict[str, Any]:
        """Everything the report says, as JSON (the Novu payload carries it)."""
        return {
            "week": self.week.name,
            "start": self.week.start.isoformat(),
            "end": self.week.end.isoformat(),
            "bookingsByChannel": self.bookings_by_channel(),
            "bookings": sum(self.bookings_by_channel().values()),
            "conversion": self.rows(CONVERSION),
            "handoffs": self.handoffs(),
            "handoffReasons": self.rows(HANDOFFS),
            "firstResponse": self.rows(FIRST_RESPONSE),
            "noShows": self.rows(NO_SHOWS),
        }


async def compute(connection: asyncpg.Connection, salon: str, week: Week) -> WeekReport:
    """Run the dashboard's questions for the salon and the week."""
    found = {question.slug: question for question in questions()}
    answers = {}
    for slug in REPORTED:
        answers[slug] = await run_question(connection, found[slug], salon, week.start, week.end)
    return WeekReport(salon, week, answers)


@asynccontextmanager
async def claim(connection: asyncpg.Connection, salon: str, week: Week) -> AsyncIterator[bool]:
    """Whether this week's report is still to send; recorded as sent when the block ends
    without an error (see the module's docstring)."""
    async with connection.transaction():
        fresh = await connection.fetchval(
            "INSERT INTO owner_reports (salon, week) VALUES ($1, $2) "
            "ON CONFLICT (salon, week) DO NOTHING RETURNING true",
            salon,
            week.name,
        )
        yield bool(fresh)
