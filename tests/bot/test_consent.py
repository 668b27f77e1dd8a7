"""Typed answers to "Cancel this booking?": only an unambiguous yes cancels (issue 15)."""

from __future__ import annotations

import pytest

from bot import consent


@pytest.mark.parametrize(
    "typed",
    ["да", "Да, отменить", "да, отмените, пожалуйста", "yes", "Yes, cancel", "yes cancel it 👍"],
)
def test_an_unambiguous_yes(typed: str) -> None:
    assert consent.is_yes(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "no",
        "нет",
        "нет, не надо отменять",
        "wait, can I move it to Friday instead?",
        "да?",
        "yes?",
        "yes, but can I move it?",
        "да, но можно перенести",
        "ok",
        "",
    ],
)
def test_anything_else_is_not_a_yes(typed: str) -> None:
    assert not consent.is_yes(typed)


@pytest.mark.parametrize(
    ("typed", "no"),
    [
        ("нет", True),
        ("No thanks", True),
        ("не надо", True),
        ("оставьте запись", True),
        ("please keep it", True),
        ("Plans changed", False),
        ("Заболела", False),
        ("", False),
    ],
)
def test_a_no_or_keep(typed: str, no: bool) -> None:
    assert consent.is_no(typed) is no


def test_asking_for_another_time() -> None:
    assert consent.asks_to_move("wait, can I move it to Friday instead?")
    assert consent.asks_to_move("а можно перенести на пятницу?")
    assert not consent.asks_to_move("нет")
