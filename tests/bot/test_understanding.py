"""The understanding of typed text, case by case: what the corpus does not pin down (bounds,
odd dates, the catalogue's own words), read on Monday 1 June 2026."""

from __future__ import annotations

from datetime import date

import pytest

from bench.understanding import DEMO_SERVICES
from bot.catalogue import Master, Service
from bot.flows import identity
from bot.understanding import Clock, Intent, understand
from bot.understanding.when import read_day, read_time
from bot.understanding.words import Lexicon, latin

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("text", "at", "after", "before"),
    [
        ("до 12", None, None, Clock(12)),
        ("before 1pm", None, None, Clock(13)),
        ("в полдень", Clock(12), None, None),
        ("at noon", Clock(12), None, None),
        ("в 10 утра", Clock(10), None, None),
        ("в 7 вечера", Clock(19), None, None),
        ("12am", Clock(0), None, None),
        ("в 15.30", Clock(15, 30), None, None),
        ("с 16", None, Clock(16), None),
        ("в обед", None, Clock(13), None),
        ("whenever", None, None, None),
    ],
)
def test_times(text: str, at: Clock | None, after: Clock | None, before: Clock | None) -> None:
    assert read_time(text) == (at, after, before)


def test_a_bare_number_is_an_hour_only_where_a_time_is_asked() -> None:
    assert read_time("11", bare_hour=True) == (Clock(11), None, None)
    assert read_time("11") == (None, None, None)
    assert read_time("99", bare_hour=True) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "day", "from_day"),
    [
        ("31.02", None, None),  # no such day
        ("1.05", date(2027, 5, 1), None),  # past this year: next year's
        ("12.12.26", date(2026, 12, 12), None),
        ("15.06.2026", date(2026, 6, 15), None),
        ("on this week", None, TODAY),
        ("на этой неделе", None, TODAY),
        ("3-го", date(2026, 6, 3), None),
        ("the 1st", date(2026, 6, 1), None),
        ("на 31-е", None, None),  # June has 30 days; July's 31st is no "31-е" of June
        ("в понедельник", TODAY, None),
        ("sometime", None, None),
    ],
)
def test_days(text: str, day: date | None, from_day: date | None) -> None:
    assert read_day(text, TODAY) == (day, from_day)


@pytest.mark.parametrize(
    ("text", "day", "at"),
    [
        ("на 12-е", date(2026, 6, 12), None),  # a day of the month, no time
        ("на 12-е в 15:00", date(2026, 6, 12), Clock(15)),
        ("the 12th at 3pm", date(2026, 6, 12), Clock(15)),
    ],
)
def test_a_day_of_the_month_is_no_time(text: str, day: date, at: Clock | None) -> None:
    when = understand(text, (), TODAY).when
    assert (when.day, when.at) == (day, at)


def test_a_category_names_its_services_and_narrowing_words_alone_name_none() -> None:
    nails = understand("что-нибудь для ногтей", DEMO_SERVICES, TODAY)
    assert nails.category == "Nails"
    assert nails.services == ()
    assert understand("women's", DEMO_SERVICES, TODAY).services == ()


def test_a_catalogue_word_the_table_does_not_know_matches_itself_with_a_typo() -> None:
    services = (Service("keratin", "Keratin treatment", 90, masters=(Master(5, "Инна"),)),)
    found = understand("keratine treatmnt with Inna", services, TODAY)
    assert found.services == ("keratin",)
    assert found.masters == (5,)
    assert understand("к Инне", services, TODAY).masters == (5,)


def test_a_language_named_or_not() -> None:
    assert understand("in english please", (), TODAY).language == "en"
    assert understand("по-русски", (), TODAY).language == "ru"
    named_none = understand("language", (), TODAY)
    assert named_none.intent is Intent.LANGUAGE
    assert named_none.language is None


def test_a_good_evening_is_no_evening_visit() -> None:
    understood = understand("добрый вечер", DEMO_SERVICES, TODAY)
    assert understood.intent is Intent.GREETING
    assert understood.when.after is None


def test_latin_and_the_lexicon() -> None:
    assert latin("щукина") == "shchukina"
    lexicon = Lexicon()
    lexicon.add("x", ("маникюр", "mani"))
    assert lexicon.lookup("маникюрами") == {"x"}
    assert lexicon.lookup("manis") == {"x"}
    assert lexicon.lookup("manila") == set()  # English endings are few
    assert lexicon.lookup("маникур") == {"x"}  # one letter off
    assert lexicon.lookup("mnai") == set()  # too short to forgive a typo


@pytest.mark.parametrize(
    "text",
    [
        "This is not me",
        "this isn't me!",
        "thats not me",
        "Not me",
        "not my bookings",
        "Это не я",
        "ето не я",
        "не я",
        "не мои записи",
    ],
)
def test_this_is_not_me_in_english_and_russian(text: str) -> None:
    assert identity.is_not_me(text)


@pytest.mark.parametrize(
    "text", ["me", "it is me", "not now", "это я", "не сегодня", "not my day", "cancel"]
)
def test_other_words_are_not_this_is_not_me(text: str) -> None:
    assert not identity.is_not_me(text)
