"""Typed requests in Russian and English, read without a network or a model: what the client
wants (an `Intent`) and what they already said about it (service, master, day, time).

`understand(text, services, today)` is pure and fast (see `python -m bench understanding`); the
corpus test (`tests/bot/test_understanding_corpus.py`) holds its accuracy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date

from bot.catalogue import Service
from bot.understanding.catalogue import SALON_WORDS, Found, vocabulary
from bot.understanding.intents import Intent, intents, strongest
from bot.understanding.when import Clock, When, read_when
from bot.understanding.words import normal, words

__all__ = ["Clock", "Intent", "Understood", "When", "understand"]

# Greetings say nothing about the time: "добрый вечер" is no evening visit.
_GREETINGS = re.compile(
    r"добр\w+\s+(?:день|утро|утра|вечер|ночи)|good\s+(?:morning|afternoon|evening|day)"
)
# "Any master": whoever is free.
_ANY = re.compile(
    r"\b(?:any(?:one|body)?|whoever|no\s+preference|doesn'?t\s+matter|любо\w+|без\s+разницы|"
    r"вс[её]\s+равно|не\s*важно|кто\s+угодно|кто\s+свобод\w+)\b"
)
_LANGUAGES = (("en", re.compile(r"english|англ")), ("ru", re.compile(r"russian|русск|по-русски")))


@dataclass(frozen=True, slots=True)
class Understood:
    intent: Intent | None
    services: tuple[str, ...] = ()
    category: str | None = None
    masters: tuple[int, ...] = ()
    when: When = field(default_factory=When)
    language: str | None = None
    any_master: bool = False
    # A service named that this salon does not list ("педикюр" where there is none).
    unlisted_service: bool = False

    @property
    def about_booking(self) -> bool:
        """Something a booking could start from: a service, a master, a day or a time."""
        when = self.when
        return bool(
            self.services
            or self.category
            or self.masters
            or when.day
            or when.from_day
            or when.time_given
        )


def understand(
    text: str, services: tuple[Service, ...], today: date, *, bare_hour: bool = False
) -> Understood:
    tokens = words(text)
    found = vocabulary(services).find(tokens) if services else Found()
    when = read_when(_GREETINGS.sub(" ", normal(text)), today, bare_hour=bare_hour)
    said = intents(text, tokens)
    intent = strongest(said)
    language = None
    if intent is Intent.LANGUAGE:
        language = next((code for code, named in _LANGUAGES if named.search(normal(text))), None)
    any_master = bool(_ANY.search(normal(text)))
    understood = Understood(
        intent, found.services, found.category, found.masters, when, language, any_master
    )
    wants_service = any(SALON_WORDS.lookup(token) for token in tokens if len(token) > 2)
    if wants_service and not (found.services or found.category):
        understood = replace(understood, unlisted_service=True)
    if intent in (None, Intent.GREETING, Intent.THANKS) and (
        understood.about_booking or wants_service
    ):
        # "маникюр завтра", "hi, a haircut with Anna please": a booking in all but the word.
        understood = replace(understood, intent=Intent.BOOK)
    return understood
