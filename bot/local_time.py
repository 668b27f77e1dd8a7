"""The salon is a place: times are stored in UTC and shown in the salon's zone, in the client's
language. The booking flow asks Cal.com for slots one local day at a time, so it needs each local
day's exact UTC window, which is 23 or 25 hours long on the days the clocks change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

# «Пт, 28 ноября, 14:30»: weekday, day and month in words, 24-hour time; a button or list label.
_LABEL = "EEE, d MMMM, HH:mm"
_DAY = "EEE, d MMMM"
_DATE = "d MMMM"
_WEEKDAY = "EEEE"
_TIME = "HH:mm"
# Babel parses the pattern and looks the locale up on every call (tens of µs); a day's screen shows
# a dozen times, and many clients see the same ones. Each rendering depends only on its
# arguments (an aware moment hashes by its instant), so the recent ones are kept.
_RENDERINGS = 4096

# A moment inside a sentence takes prepositions and, in Russian, the accusative of the weekday
# ("в субботу", "во вторник"). Babel's CLDR data has weekday names in the nominative only, so
# the case forms are written out here, Monday first (`date.weekday()`).
_RU_ON_WEEKDAY = (
    "в понедельник",
    "во вторник",
    "в среду",
    "в четверг",
    "в пятницу",
    "в субботу",
    "в воскресенье",
)


def local_day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants at which the salon's local `day` starts and the next one starts."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def upcoming_days(now: datetime, zone: ZoneInfo, count: int = 14) -> list[date]:
    """Today and the following days, as the salon's calendar has them."""
    today = now.astimezone(zone).date()
    return [today + timedelta(days=n) for n in range(count)]


@lru_cache(maxsize=_RENDERINGS)
def format_when(moment: datetime, zone: ZoneInfo, locale: str, *, capital: bool = False) -> str:
    """The moment as a sentence says it: «в субботу, 12 декабря, в 18:00», "on Saturday,
    12 December, at 18:00"; `capital` when it starts the sentence."""
    weekday = moment.astimezone(zone).weekday()
    day = format_datetime(moment, _DATE, tzinfo=zone, locale=locale)
    clock = format_time(moment, zone, locale)
    if _language(locale) == "ru":
        phrase = f"{_RU_ON_WEEKDAY[weekday]}, {day}, в {clock}"
    else:
        name = format_datetime(moment, _WEEKDAY, tzinfo=zone, locale=locale)
        phrase = f"on {name}, {day}, at {clock}"
    return sentence_case(phrase) if capital else phrase


@lru_cache(maxsize=_RENDERINGS)
def format_label(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    """The moment on a button or a list line: «Сб, 12 декабря, 18:00»."""
    return sentence_case(format_datetime(moment, _LABEL, tzinfo=zone, locale=locale))


@lru_cache(maxsize=_RENDERINGS)
def format_on_day(day: date, locale: str, *, capital: bool = False) -> str:
    """A day as a sentence says it: «в субботу, 12 декабря», "on Saturday, 12 December"."""
    noon = datetime.combine(day, time(12), UTC)
    date_part = format_datetime(noon, _DATE, tzinfo=UTC, locale=locale)
    if _language(locale) == "ru":
        phrase = f"{_RU_ON_WEEKDAY[day.weekday()]}, {date_part}"
    else:
        phrase = f"on {format_datetime(noon, _WEEKDAY, tzinfo=UTC, locale=locale)}, {date_part}"
    return sentence_case(phrase) if capital else phrase


@lru_cache(maxsize=_RENDERINGS)
def format_day(day: date, locale: str) -> str:
    """A day on a button or at the start of a line: «Сб, 12 декабря»."""
    # Noon: a moment every calendar day has, whatever the clocks do that night.
    noon = datetime.combine(day, time(12), UTC)
    return sentence_case(format_datetime(noon, _DAY, tzinfo=UTC, locale=locale))


@lru_cache(maxsize=_RENDERINGS)
def format_time(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    return format_datetime(moment, _TIME, tzinfo=zone, locale=locale)


def sentence_case(text: str) -> str:
    """The first letter in upper case, the rest as written (month names stay as they are)."""
    return text[:1].upper() + text[1:]


def _language(locale: str) -> str:
    return locale.replace("-", "_").split("_", 1)[0].lower()
