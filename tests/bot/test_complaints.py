from __future__ import annotations

import pytest

from bot.understanding.complaints import is_complaint


@pytest.mark.parametrize(
    "text",
    [
        "Хочу оставить жалобу",
        "жлоба на мастера",  # a typo
        "Мастер мне нахамила!",
        "Я очень недовольна результатом",
        "Это безобразие, покрасили не в тот цвет",
        "Мастер грубая",
        "Хочу пожаловаться",
        "Претензия по стрижке",
        "I want to complain",
        "I'd like to make a complaint",
        "complian about the haircut",  # a typo
        "The master was rude to me",
        "This is unaceptable",  # a typo
        "terrible colour, really disappointed",
        "the worst haircut ever",
        "ужасно подстригли, хочу переделать",  # "ужасно" before a verb of doing: a complaint
        "жалоба не на мастера, а на администратора",  # "не" here denies nothing
        "позовите… администратора, у меня жалоба",
    ],
)
def test_complaints_in_russian_and_english(text: str) -> None:
    assert is_complaint(text)


@pytest.mark.parametrize(
    "text",
    [
        "Хочу записаться на стрижку",
        "пожалуйста, запишите меня к Анне",
        "Спасибо, всё отлично!",
        "позовите администратора",
        "Where is the salon?",
        "Can I book a manicure tomorrow?",
        "compliment to Anna, great job",
        "ужасно хочу записаться на окрашивание",  # "ужасно" only intensifies
        "I terribly want a fringe like Anna's",
        "would 5pm be worse?",  # one letter from "worst"
        "is it worth it?",
        "претензий нет, всё понравилось",
        "претензий не имею, спасибо",
        "жалоб не было, всё супер",
        "no complaints, thank you",
        "👍",
        "",
    ],
)
def test_other_messages_are_no_complaint(text: str) -> None:
    assert not is_complaint(text)
