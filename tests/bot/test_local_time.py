"""Local days and times of the salon, across the clock changes, in both languages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.ics import calendar_file
from bot.local_time import (
    format_day,
    format_label,
    format_on_day,
    format_time,
    format_when,
    local_day_window,
    upcoming_days,
)

BERLIN = ZoneInfo("Europe/Berlin")
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("day", "start", "hours"),
    [
        (date(2026, 3, 28), datetime(2026, 3, 27, 23, 0, tzinfo=UTC), 24),
        (date(2026, 3, 29), datetime(2026, 3, 28, 23, 0, tzinfo=UTC), 23),  # spring forward
        (date(2026, 3, 30), datetime(2026, 3, 29, 22, 0, tzinfo=UTC), 24),
        (date(2026, 10, 25), datetime(2026, 10, 24, 22, 0, tzinfo=UTC), 25),  # fall back
    ],
)
def test_a_local_day_is_its_exact_utc_window(day: date, start: datetime, hours: int) -> None:
    window = local_day_window(day, BERLIN)
    assert window == (start, start + timedelta(hours=hours))


def test_a_slot_the_day_after_the_change_is_shown_at_its_local_time() -> None:
    # 10:00 in Berlin on the Monday after spring forward is 08:00 UTC (it was 09:00 before).
    slot = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert format_when(slot, BERLIN, "en") == "on Monday, 30 March, at 10:00"
    assert format_time(datetime(2026, 3, 27, 9, 0, tzinfo=UTC), BERLIN, "en") == "10:00"


def test_times_read_naturally_in_russian_and_english() -> None:
    slot = datetime(2026, 11, 27, 11, 30, tzinfo=UTC)
    assert format_when(slot, MOSCOW, "ru") == "в пятницу, 27 ноября, в 14:30"
    assert format_when(slot, MOSCOW, "en") == "on Friday, 27 November, at 14:30"
    assert format_label(slot, MOSCOW, "ru") == "Пт, 27 ноября, 14:30"
    assert format_day(date(2026, 11, 28), "ru") == "Сб, 28 ноября"


@pytest.mark.parametrize(
    ("day", "phrase"),
    [
        (date(2026, 12, 7), "в понедельник, 7 декабря, в 18:00"),
        (date(2026, 12, 8), "во вторник, 8 декабря, в 18:00"),
        (date(2026, 12, 9), "в среду, 9 декабря, в 18:00"),
        (date(2026, 12, 10), "в четверг, 10 декабря, в 18:00"),
        (date(2026, 12, 11), "в пятницу, 11 декабря, в 18:00"),
        (date(2026, 12, 12), "в субботу, 12 декабря, в 18:00"),
        (date(2026, 12, 13), "в воскресенье, 13 декабря, в 18:00"),
    ],
)
def test_russian_dates_take_prepositions_and_the_weekdays_case(day: date, phrase: str) -> None:
    moment = datetime.combine(day, time(18), MOSCOW)
    assert format_when(moment, MOSCOW, "ru") == phrase
    # At the start of a sentence: sentence case, the rest as written.
    assert format_when(moment, MOSCOW, "ru", capital=True) == phrase[0].upper() + phrase[1:]


def test_english_dates_take_on_and_at_and_capitalise_at_a_sentences_start() -> None:
    moment = datetime(2026, 12, 12, 18, 0, tzinfo=MOSCOW)
    assert format_when(moment, MOSCOW, "en") == "on Saturday, 12 December, at 18:00"
    assert format_when(moment, MOSCOW, "en", capital=True) == "On Saturday, 12 December, at 18:00"
    assert format_label(moment, MOSCOW, "en") == "Sat, 12 December, 18:00"


def test_upcoming_days_start_with_the_salons_today() -> None:
    # 22:30 UTC on the 26th is already the 27th in Moscow.
    days = upcoming_days(datetime(2026, 11, 26, 22, 30, tzinfo=UTC), MOSCOW, count=3)
    assert days == [date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29)]


def test_the_calendar_file_is_valid_icalendar() -> None:
    data = calendar_file(
        uid="bk_123",
        start=datetime(2026, 11, 27, 14, 30, tzinfo=MOSCOW),
        end=datetime(2026, 11, 27, 15, 30, tzinfo=MOSCOW),
        summary="Женская стрижка, мастер Анна Петрова; Studio Nord",
        location="Тверская 1, Москва",
        description="Line one\nline two " + "очень длинное описание " * 5,
        stamp=datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    )
    text = data.decode()
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert text.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    assert "DTSTART:20261127T113000Z\r\n" in text
    assert "DTEND:20261127T123000Z\r\n" in text
    assert "UID:bk_123@frontdesk\r\n" in text
    assert "LOCATION:Тверская 1\\, Москва\r\n" in text
    unfolded = text.replace("\r\n ", "")
    assert "SUMMARY:Женская стрижка\\, мастер Анна Петрова\\; Studio Nord\r\n" in unfolded
    assert "DESCRIPTION:Line one\\nline two очень" in unfolded
    for line in data.split(b"\r\n"):
        assert len(line) <= 75
        line.decode()  # folding never splits a character


def test_the_calendar_file_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        calendar_file(
            uid="x",
            start=datetime(2026, 1, 1, 10, 0),
            end=datetime(2026, 1, 1, 11, 0, tzinfo=UTC),
            summary="x",
            location="",
            description="",
            stamp=datetime(2026, 1, 1, tzinfo=UTC),
        )


def test_a_day_inside_a_sentence_takes_its_preposition() -> None:
    assert format_on_day(date(2026, 12, 8), "ru") == "во вторник, 8 декабря"
    assert format_on_day(date(2026, 12, 12), "ru", capital=True) == "В субботу, 12 декабря"
    assert format_on_day(date(2026, 12, 12), "en") == "on Saturday, 12 December"
