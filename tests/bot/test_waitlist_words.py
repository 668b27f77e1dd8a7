"""What typed words mean to the waitlist: a part of the day, and a yes or no to an offer."""

from __future__ import annotations

import pytest

from bot.flows.waitlist import answer_of, part_of


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("утром", "morning"),
        ("Morning!", "morning"),
        ("днём", "afternoon"),
        ("вечером", "evening"),
        ("Evenings", "evening"),
        ("любое время", "any"),
        ("whenever", "any"),
        ("afternoon pls", "afternoon"),
        ("лучше вечерком", "evening"),
        ("afternon", "afternoon"),  # a typo
        ("after lunch", None),
        ("после обеда", "afternoon"),
        ("any time is fine", "any"),
        ("morning or evening", None),  # two: the buttons ask
        ("tomorrow", None),
        ("", None),
    ],
)
def test_parts_of_the_day_in_words(text: str, part: str | None) -> None:
    assert part_of(text) == part


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("yes", True),
        ("Да!", True),
        ("book it", True),
        ("yse", True),  # a slip of the thumb
        ("беру", True),
        ("no thanks", False),
        ("Нет, спасибо", False),
        ("не надо", False),
        ("yes?", True),
        ("yes please", True),
        ("no thank you", False),
        ("can I come at 12 instead", None),
        ("отмените мою запись", None),
    ],
)
def test_answers_to_an_offer(text: str, answer: bool | None) -> None:
    assert answer_of(text) is answer
