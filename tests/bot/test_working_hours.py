from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.working_hours import WorkingHours

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
HOURS = WorkingHours.parse("Mon-Fri 10:00-14:00 15:00-20:00; sat 10:00-16:00")


def test_days_and_times_as_written() -> None:
    assert HOURS.describe() == "Mon 10:00-14:00 15:00-20:00; " + (
        "Tue 10:00-14:00 15:00-20:00; Wed 10:00-14:00 15:00-20:00; "
        "Thu 10:00-14:00 15:00-20:00; Fri 10:00-14:00 15:00-20:00; Sat 10:00-16:00"
    )
    listed = WorkingHours.parse("Mon,Wed 09:30-18:00")
    assert listed.describe() == "Mon 09:30-18:00; Wed 09:30-18:00"


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (datetime(2026, 6, 1, 7, 0, tzinfo=UTC), True),  # Monday 10:00 in Moscow
        (datetime(2026, 6, 1, 6, 59, tzinfo=UTC), False),
        (datetime(2026, 6, 1, 11, 30, tzinfo=UTC), False),  # the lunch break
        (datetime(2026, 6, 1, 16, 59, tzinfo=UTC), True),
        (datetime(2026, 6, 1, 17, 0, tzinfo=UTC), False),  # 20:00: closed
        (datetime(2026, 6, 7, 9, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_open_in_the_salons_time(utc: datetime, open_: bool) -> None:
    assert HOURS.is_open(utc, MOSCOW) is open_


def test_the_next_opening_in_the_salons_time() -> None:
    evening = datetime(2026, 6, 1, 18, 30, tzinfo=UTC)  # Monday 21:30 in Moscow
    assert HOURS.next_opening(evening, MOSCOW) == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    lunch = datetime(2026, 6, 1, 11, 30, tzinfo=UTC)
    assert HOURS.next_opening(lunch, MOSCOW) == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    saturday = datetime(2026, 6, 6, 14, 0, tzinfo=UTC)
    assert HOURS.next_opening(saturday, MOSCOW) == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)


def test_the_clocks_change_moves_the_hours_with_the_salon() -> None:
    """Berlin goes from CEST (UTC+2) to CET (UTC+1) on 25 October 2026: Monday 10:00 is
    09:00 UTC, where the Friday before it was 08:00 UTC."""
    hours = WorkingHours.parse("Mon-Fri 10:00-18:00")
    friday_night = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
    assert hours.next_opening(friday_night, BERLIN) == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
    assert hours.is_open(datetime(2026, 10, 23, 8, 0, tzinfo=UTC), BERLIN)
    assert not hours.is_open(datetime(2026, 10, 26, 8, 30, tzinfo=UTC), BERLIN)


def test_a_day_to_midnight() -> None:
    hours = WorkingHours.parse("Sun 20:00-24:00")
    assert hours.is_open(datetime(2026, 6, 7, 20, 59, tzinfo=UTC), MOSCOW)  # 23:59


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no working hours"),
        ("Mon-Fri", "days and then times"),
        ("Mo 10:00-20:00", "days are written"),
        ("Fri-Mon 10:00-20:00", "from Monday to Sunday"),
        ("Mon 10-20", "HH:MM-HH:MM"),
        ("Mon 25:00-26:00", "not a time of day"),
        ("Mon 20:00-10:00", "the end comes before the start"),
        ("Mon 10:00-14:00 13:00-18:00", "times overlap"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WorkingHours.parse(text)


def test_no_day_on_has_no_next_opening() -> None:
    hours = WorkingHours(((),) * 7)
    assert hours.next_opening(datetime(2026, 6, 1, tzinfo=UTC), MOSCOW) is None
