"""The salon is a place: times are stored in UTC and shown in the salon's zone, in the client's
language. The booking flow asks Cal.com for slots one local day at a time, so it needs each local
day's exact UTC window, which is 23 or 25 hours long on the days the clocks change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

# «пт, 28 ноября, 14:30»: weekday, day and month in words, 24-hour time.
_WHEN = "EEE, d MMMM, HH:mm"
_DAY = "EEE, d MMMM"
_TIME = "HH:mm"


def local_day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which the salon's local `day` starts and the next one starts."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def upcoming_days(now: datetime, zone: ZoneInfo, count: int = 14) -> list[date]:
    """Today and the following days, as the salon's calendar has them."""
    today = now.astimezone(zone).date()
    return [today + timedelta(days=n) for n in range(count)]


def format_when(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    return format_datetime(moment, _WHEN, tzinfo=zone, locale=locale)


def format_day(day: date, locale: str) -> str:
    # Noon: a moment every calendar day has, whatever the clocks do that night.
    return format_datetime(datetime.combine(day, time(12), UTC), _DAY, tzinfo=UTC, locale=locale)


def format_time(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    return format_datetime(moment, _TIME, tzinfo=zone, locale=locale)
