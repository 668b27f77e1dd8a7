"""Days and times as clients write them, in Russian and English.

"завтра", "day after tomorrow", "в пятницу", "next week", "12 December", "12.12"; "15:00",
"at 3pm", "в 3 часа дня", "после 5"; "утром", "after lunch", "вечером". A bare hour that a salon
could only mean in the afternoon ("в 3", "at 5") is read as one: salons open in the morning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.understanding.words import normal


@dataclass(frozen=True, slots=True)
class Clock:
    hour: int
    minute: int = 0

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True, slots=True)
class When:
    day: date | None = None
    # "next week": the first day the client means; the exact day is theirs to choose.
    from_day: date | None = None
    at: Clock | None = None
    after: Clock | None = None
    before: Clock | None = None

    @property
    def time_given(self) -> bool:
        return self.at is not None or self.after is not None or self.before is not None


# Earlier than this a bare hour means the afternoon ("в 3" is 15:00): no salon opens at 3 am.
_EARLIEST_HOUR = 8

_MONTHS = {
    **dict.fromkeys(("январ", "jan"), 1),
    **dict.fromkeys(("феврал", "feb"), 2),
    **dict.fromkeys(("март", "mar"), 3),
    **dict.fromkeys(("апрел", "apr"), 4),
    **dict.fromkeys(("ма", "may"), 5),
    **dict.fromkeys(("июн", "jun"), 6),
    **dict.fromkeys(("июл", "jul"), 7),
    **dict.fromkeys(("август", "aug"), 8),
    **dict.fromkeys(("сентябр", "sep"), 9),
    **dict.fromkeys(("октябр", "oct"), 10),
    **dict.fromkeys(("ноябр", "nov"), 11),
    **dict.fromkeys(("декабр", "dec"), 12),
}
_MONTH = (
    r"(январ[ья]|феврал[ья]|марта?|апрел[ья]|ма[йя]|июн[ья]|июл[ья]|августа?|сентябр[ья]|"
    r"октябр[ья]|ноябр[ья]|декабр[ья]|jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|"
    r"june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th|-?го|-?е)?\s+(?:of\s+)?{_MONTH}\b")
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})(?:[./](\d{2}|\d{4}))?\b")
_DAY_OF_MONTH = re.compile(r"\b(\d{1,2})(?:-?го|-?е|st|nd|rd|th)\b")

_WEEKDAYS = (
    (r"понедельник\w*|monday|mon", 0),
    (r"вторник\w*|вт|tuesday|tue|tues", 1),
    (r"сред[аыуе]|wednesday|wed", 2),
    (r"четверг\w*|чт|thursday|thu|thur|thurs", 3),
    (r"пятниц[аыуе]|пт|friday|fri", 4),
    (r"суббот[аыуе]|сб|saturday|sat", 5),
    (r"воскресень[еяю]|вс|sunday|sun", 6),
)
_WEEKDAY = [(re.compile(rf"\b(?:{words})\b"), day) for words, day in _WEEKDAYS]
_AFTER_TOMORROW = re.compile(r"послезавтра|после\s*завтра|(?:the\s+)?day\s+after\s+tomorrow")
_TOMORROW = re.compile(r"\b(?:завтра\w*|tomorrow|tmrw|tmr|tomorow|tommorow|tommorrow|2morrow)\b")
_TODAY = re.compile(r"\b(?:сегодня\w*|седня|today|tonight|tonite)\b")
_NEXT_WEEK = re.compile(r"следующ\w+\s+недел\w+|next\s+week|через\s+неделю|in\s+a\s+week")
_THIS_WEEK = re.compile(r"(?:эт\w+|this)\s+(?:недел\w+|week)")

# Times. "15:00", "15.30" (a dot with minutes over 12 cannot be a date), "3pm", "3:30 pm".
_COLON = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_DOTTED = re.compile(r"\b([01]?\d|2[0-3])[.\-h]([0-5]\d)\b")
_MERIDIEM = re.compile(r"\b(\d{1,2})(?::([0-5]\d))?\s*([ap])\.?\s?m\b\.?")
_HOUR_WORD = re.compile(
    r"\b(\d{1,2})(?::([0-5]\d))?\s*(?:час\w*|ч\b|o'?clock)?\s*(утра|дня|вечера|в\s+обед)?"
)
_AFTER = r"(?:после|не\s+раньше|позже|from|after|не\s+ранее|с)"
_BEFORE = r"(?:до|не\s+позже|раньше|before|by|until|till)"
_AT = r"(?:в|к|на|at|around|about|for|около|часов\s+в)"
# "3 часа дня", "10 утра": the part of the day says which hour, no preposition needed.
_HOUR_SUFFIX = re.compile(r"\b(\d{1,2})(?::([0-5]\d))?\s*(?:час\w*\s*)?(утра|дня|вечера)\b")
_NOON = re.compile(r"\b(?:noon|midday|полдень|полдня)\b")
_PARTS = (
    (re.compile(r"после\s+обеда|after\s+lunch|afternoon|днем|днём|в\s+обед"), Clock(13), None),
    (re.compile(r"\bутр\w*|morning|до\s+обеда|before\s+lunch"), None, Clock(12)),
    (re.compile(r"вечер\w*|evening|tonight|tonite|after\s+work|после\s+работы"), Clock(17), None),
)


def _hour(value: int, suffix: str | None) -> int:
    if suffix in ("p", "дня", "вечера") and value < 12:
        return value + 12
    if suffix in ("a", "утра"):
        return 0 if value == 12 else value
    return value + 12 if value < _EARLIEST_HOUR and suffix is None else value


def _clock(match: re.Match[str], suffix: str | None) -> Clock | None:
    hour = int(match.group(1))
    minute = int(match.group(2) or 0)
    if hour > 23:
        return None
    return Clock(_hour(hour, suffix), minute)


def _first_time(text: str, lead: str) -> tuple[Clock, int, int] | None:
    """A time after the words `lead` ("после", "at"...) or standing alone if `lead` is empty."""
    prefix = rf"(?:{lead})\s+" if lead else ""
    for pattern, suffix_group in (
        (re.compile(rf"{prefix}(?:{_MERIDIEM.pattern})"), 3),
        (re.compile(rf"{prefix}(?:{_COLON.pattern})"), 0),
        (re.compile(rf"{prefix}(?:{_DOTTED.pattern})"), 0),
    ):
        found = pattern.search(text)
        if found:
            suffix = found.group(suffix_group) if suffix_group else None
            clock = _clock(found, suffix)
            if clock is not None:
                return clock, found.start(), found.end()
    if not lead and (found := _HOUR_SUFFIX.search(text)) and (clock := _clock(found, found[3])):
        return clock, found.start(), found.end()
    if lead:
        found = re.search(rf"\b{prefix}(?:{_HOUR_WORD.pattern})", text)
        if found and int(found.group(1)) <= 23:
            suffix = (found.group(3) or "").split(" ")[0] or None
            suffix = "дня" if suffix == "в" else suffix
            return Clock(_hour(int(found.group(1)), suffix), int(found.group(2) or 0)), 0, 0
    return None


def read_time(
    text: str, *, bare_hour: bool = False
) -> tuple[Clock | None, Clock | None, Clock | None]:
    """(at, after, before). `bare_hour`: a number alone is an hour (at the time step)."""
    text = normal(text)
    if (after := _first_time(text, _AFTER)) is not None:
        return None, after[0], None
    if (before := _first_time(text, _BEFORE)) is not None:
        return None, None, before[0]
    if _NOON.search(text):
        return Clock(12), None, None
    for lead in ("", _AT):
        found = _first_time(text, lead)
        if found is not None:
            return found[0], None, None
    if bare_hour and (alone := re.fullmatch(r"\D*(\d{1,2})\D*", text)) and int(alone[1]) <= 23:
        return Clock(_hour(int(alone[1]), None)), None, None
    for pattern, after_clock, before_clock in _PARTS:
        if pattern.search(text):
            return None, after_clock, before_clock
    return None, None, None


def _next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _dated(today: date, day: int, month: int, year: int | None = None) -> date | None:
    try:
        found = date(year or today.year, month, day)
    except ValueError:
        return None
    if year is None and found < today:
        return _dated(today, day, month, today.year + 1)
    return found


def read_day(text: str, today: date) -> tuple[date | None, date | None]:
    """(day, from_day): the day the client named, or the first day of the week they named."""
    text = normal(text)
    if _AFTER_TOMORROW.search(text):
        return today + timedelta(days=2), None
    if _TOMORROW.search(text):
        return today + timedelta(days=1), None
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        if found := pattern.search(text):
            number, month = found.groups() if pattern is _DAY_MONTH else found.groups()[::-1]
            key = next(k for k in _MONTHS if month.startswith(k))
            return _dated(today, int(number), _MONTHS[key]), None
    for found in _NUMERIC_DATE.finditer(text):
        day, month, year = found.groups()
        # "15.30" is a time: a date's month is never over 12 (nor 0).
        if 1 <= int(month) <= 12:
            full = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
            if (dated := _dated(today, int(day), int(month), full)) is not None:
                return dated, None
    for pattern, weekday in _WEEKDAY:
        if pattern.search(text):
            return _next_weekday(today, weekday), None
    if _TODAY.search(text):
        return today, None
    if _NEXT_WEEK.search(text):
        return None, today + timedelta(days=7 - today.weekday())
    if _THIS_WEEK.search(text):
        return None, today
    if found := _DAY_OF_MONTH.search(text):
        number = int(found.group(1))
        month = today.month if number >= today.day else today.month % 12 + 1
        return _dated(today, number, month), None
    return None, None


def read_when(text: str, today: date, *, bare_hour: bool = False) -> When:
    day, from_day = read_day(text, today)
    at, after, before = read_time(without_dates(text), bare_hour=bare_hour)
    return When(day, from_day, at, after, before)


def without_dates(text: str) -> str:
    """The text without its dates, so that "12.12", "12 декабря" or "на 12-е" is not read as
    a time."""
    text = normal(text)
    for pattern in (_DAY_MONTH, _MONTH_DAY, _DAY_OF_MONTH):
        text = pattern.sub(" ", text)
    return _NUMERIC_DATE.sub(_keep_times, text)


def _keep_times(found: re.Match[str]) -> str:
    _, month, year = found.groups()
    if year is None and not 1 <= int(month) <= 12:
        return found.group(0)  # "15.30": a time
    return " "
