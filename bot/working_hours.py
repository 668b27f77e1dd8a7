"""When the salon's staff are at work, in the salon's own time: a weekly schedule.

Written as the operator types it (SALON_WORKING_HOURS): parts separated by `;`, each a day or
a range of days (English three-letter names, `-` for a range, `,` for a list) and one or more
`HH:MM-HH:MM` times, e.g. `Mon-Fri 10:00-20:00; Sat 10:00-14:00 15:00-18:00`. Days not named
are days off. The times are the salon's local times, so a change of the clocks (DST) moves
them with the salon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIMES = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")

Interval = tuple[time, time]


@dataclass(frozen=True, slots=True)
class WorkingHours:
    # For each weekday (Monday first), the intervals staff are at work, in order.
    week: tuple[tuple[Interval, ...], ...]

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """The schedule written as above; ValueError says what is wrong with it."""
        week: list[list[Interval]] = [[] for _ in DAYS]
        parts = [part.strip() for part in text.split(";") if part.strip()]
        if not parts:
            raise ValueError("no working hours given")
        for part in parts:
            days, *spans = part.split()
            if not spans:
                raise ValueError(f"{part!r}: days and then times, as in 'Mon-Fri 10:00-20:00'")
            for day in _days(days):
                week[day].extend(_interval(span) for span in spans)
        for day, intervals in enumerate(week):
            intervals.sort()
            for (_, end), (start, _) in pairwise(intervals):
                if start < end:
                    raise ValueError(f"{DAYS[day].title()}: times overlap")
        return cls(tuple(tuple(intervals) for intervals in week))

    def is_open(self, now: datetime, zone: ZoneInfo) -> bool:
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        return any(start <= clock < end for start, end in self.week[local.weekday()])

    def next_opening(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """The next moment staff start work after `now` (None: the schedule has no day on)."""
        today = now.astimezone(zone).date()
        for offset in range(8):
            day = today + timedelta(days=offset)
            for start, _end in self.week[day.weekday()]:
                opening = datetime.combine(day, start, tzinfo=zone)
                if opening > now:
                    return opening
        return None

    def describe(self) -> str:
        """The schedule as the operator would write it (for `frontdesk check`)."""
        parts = []
        for day, intervals in enumerate(self.week):
            if intervals:
                spans = " ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in intervals)
                parts.append(f"{DAYS[day].title()} {spans}")
        return "; ".join(parts)


def _days(text: str) -> list[int]:
    found: list[int] = []
    for item in text.lower().split(","):
        first, _, last = item.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{item!r}: days are written {', '.join(d.title() for d in DAYS)}")
        start, end = DAYS.index(first), DAYS.index(last or first)
        if end < start:
            raise ValueError(f"{item!r}: a range of days runs from Monday to Sunday")
        found += range(start, end + 1)
    return found


def _interval(text: str) -> Interval:
    match = _TIMES.match(text)
    if match is None:
        raise ValueError(f"{text!r}: times are written HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r}: not a time of day")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"{text!r}: the end comes before the start (past midnight: two parts)")
    return start, end
