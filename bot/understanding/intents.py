"""What a client wants, from their words: book, see or move or cancel a booking, prices, the
address and hours, a person, the language, or just hello and thanks.

Phrases are patterns over the normalised text; single words go through the lexicon, which
forgives endings and typos ("отменить/отмените", "cancle"). When a message says several things
the more specific wins: "отменить запись" is a cancellation, not a booking, and "привет, хочу
на маникюр" is a booking.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.understanding.words import Lexicon, normal


class Intent(StrEnum):
    PERSON = "person"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    MINE = "mine"
    LANGUAGE = "language"
    PRICES = "prices"
    INFO = "info"
    BOOK = "book"
    GREETING = "greeting"
    THANKS = "thanks"


# The order is the precedence when a message says more than one thing.
PRECEDENCE = tuple(Intent)

_PHRASES: dict[Intent, str] = {
    Intent.PERSON: (
        r"talk\s+to\s+(?:a|an|the|some)\s*(?:one|body|person|human)|speak\s+(?:to|with)\s+"
        r"(?:a|an|the|some)\s*(?:one|body|person|human)|real\s+person|live\s+(?:agent|chat)|"
        r"живо\w+\s+человек|с\s+человеком|свяжите|соедините|позовите|позвать|call\s+me\s+back|"
        r"перезвоните"
    ),
    Intent.CANCEL: (
        r"не\s+смогу\s+прийти|не\s+приду|не\s+получится\s+прийти|can'?t\s+(?:make|come)|"
        r"cannot\s+(?:make|come)|won'?t\s+(?:make|be\s+able)|call\s+off"
    ),
    Intent.RESCHEDULE: (
        r"поменять\s+(?:время|день|дату)|друго\w+\s+(?:время|день|дату)|сдвинуть|"
        r"change\s+(?:the|my)\s+(?:time|day|date|appointment|booking)|another\s+(?:time|day)|"
        r"different\s+(?:time|day)|move\s+(?:it|my|the)"
    ),
    Intent.MINE: (
        r"мо[ияюей]\w*\s+запис|когда\s+я\s+записан|на\s+когда\s+я|я\s+записан|"
        r"my\s+(?:booking|appointment|reservation|visit)s?|when\s+is\s+my|am\s+i\s+booked|"
        r"do\s+i\s+have\s+(?:a|an|any)\s+(?:booking|appointment)|"
        r"(?:what|which|any)\s+(?:bookings?|appointments?|visits?)\s+(?:do\s+)?i\s+(?:have|got)|"
        r"(?:bookings?|appointments?)\s+(?:do\s+)?i\s+have|какие\s+у\s+меня\s+запис|"
        r"у\s+меня\s+(?:есть\s+)?запис"
    ),
    Intent.LANGUAGE: (
        r"по[\s-]?(?:русски|английски|англ)|на\s+(?:русском|английском|англ\w*)|"
        r"(?:speak|in|switch\s+to)\s+(?:english|russian)|change\s+(?:the\s+)?language"
    ),
    Intent.PRICES: (
        r"сколько\s+(?:стоит|стоят|будет\s+стоить|по\s+деньгам)|how\s+much|what\s+do\s+you\s+"
        r"charge|какие\s+(?:у\s+вас\s+)?услуги|what\s+services|what\s+do\s+you\s+(?:do|offer)"
    ),
    Intent.INFO: (
        r"где\s+(?:вы|вас|находит|салон|это)|как\s+(?:до\s+вас\s+)?(?:добраться|доехать|"
        r"дойти|найти)|до\s+скольки|со\s+скольки|во\s+сколько\s+(?:вы\s+)?(?:открыва|закрыва|"
        r"работа)|часы\s+работы|режим\s+работы|график\s+работы|вы\s+работаете|работаете\s+ли|"
        r"where\s+(?:are|is)\s+(?:you|the\s+salon|your)|how\s+(?:do\s+i|to|can\s+i)\s+"
        r"(?:get|find)|what\s+time\s+do\s+you|are\s+you\s+open|when\s+do\s+you|"
        r"opening\s+(?:hours|times)|do\s+you\s+work"
    ),
    Intent.BOOK: (
        r"хочу\s+(?:на|к|в)\b|можно\s+(?:на|к|в)\b|есть\s+(?:ли\s+)?(?:время|места|окошк|"
        r"свободн)|запиш|запис\w*\s+(?:на|к|в)\b|записаться|записать|get\s+(?:a|an|my)\s+|"
        r"i\s+(?:want|need|would\s+like)\s+(?:a|an|to\s+get|to\s+come)|can\s+i\s+come|"
        r"do\s+you\s+have\s+(?:anything|any|a|time|space|room|slots?)|any\s+(?:free|openings?|"
        r"slots?|availability)|(?:free|available)\s+(?:slots?|times?)"
    ),
    Intent.GREETING: (
        r"добр\w+\s+(?:день|утро|утра|вечер|ночи)|good\s+(?:morning|afternoon|evening|day)"
    ),
    Intent.THANKS: r"thank\s*(?:you|u|s)|благодар|👍|🙏|❤|♥",
}
_PATTERNS = {intent: re.compile(pattern) for intent, pattern in _PHRASES.items()}

_WORDS: dict[Intent, tuple[str, ...]] = {
    Intent.PERSON: (
        "администратор", "админ", "оператор", "менеджер", "человек", "сотрудник",
        "администрац", "person", "human", "operator", "manager", "administrator", "admin",
        "receptionist", "agent",
    ),
    Intent.CANCEL: ("отмен", "отменя", "cancel", "cancellation", "annul"),
    Intent.RESCHEDULE: (
        "перенест", "перенес", "перенос", "перезапис", "передвин", "reschedule", "postpone",
        "rebook", "move",
    ),
    Intent.LANGUAGE: ("язык", "language", "english", "russian", "английск", "русск"),
    Intent.PRICES: (
        "цен", "стоимост", "прайс", "почем", "расценк", "стоит", "price", "prices", "pricing",
        "cost", "costs", "rates", "услуг", "services", "pricelist",
    ),
    Intent.INFO: (
        "адрес", "address", "location", "located", "directions", "hours", "open", "opening",
        "close", "closing", "where", "добраться", "находитесь", "метро", "parking", "парковк",
    ),
    Intent.BOOK: (
        "запис", "запиш", "записат", "book", "booking", "appointment", "appoinment", "appt",
        "schedule", "slot", "slots", "available", "availability", "reserve", "reservation",
        "свободн", "окошк", "окно", "время",
    ),
    Intent.GREETING: (
        "привет", "приветик", "здравствуй", "здрасте", "здрасьте", "хай", "салют", "hello",
        "hi", "hey", "hiya", "howdy", "greetings", "yo",
    ),
    Intent.THANKS: ("спасибо", "спс", "пасиб", "благодарю", "thanks", "thx", "ty", "cheers"),
}  # fmt: skip

# Intent words are short and common: a typo is forgiven from six letters on ("cancle",
# "thnaks"), not below, where "there" would be a typo of "where".
_LEXICON = Lexicon(min_typo=6)
for _intent, _stems in _WORDS.items():
    _LEXICON.add(_intent.value, _stems)

# Words shorter than this count only as whole words ("hi" is no stem of "hire").
_SHORT_WORD = 4


def intents(text: str, tokens: list[str]) -> set[Intent]:
    """Every intent the message expresses; `tokens` are its words (see `words.words`)."""
    normalised = normal(text)
    found = {intent for intent, pattern in _PATTERNS.items() if pattern.search(normalised)}
    for token in tokens:
        short = len(token) < _SHORT_WORD
        meanings = _LEXICON.whole(token) if short else _LEXICON.lookup(token)
        found.update(Intent(meaning) for meaning in meanings)
    return found


def strongest(found: set[Intent]) -> Intent | None:
    return next((intent for intent in PRECEDENCE if intent in found), None)
