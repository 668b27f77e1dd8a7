"""A complaint in the client's words, Russian or English, typos forgiven: such a conversation
goes to a person (and the handoff's routing may send it to the team that deals with them).

A small list of stems on purpose: words that in a salon's chat mean the client is unhappy with
what happened, not with a free time ("ужасно хочу записаться" is the price of "ужасн").
"""

from __future__ import annotations

from bot.understanding.words import Lexicon, words

_STEMS = (
    # English: exact words with their endings (complains, complained), one typo from 5 letters.
    "complain", "complaint", "rude", "rudely", "terrible", "terribly", "awful", "horrible",
    "disgusting", "unacceptable", "disappointed", "unhappy", "ruined", "worst", "outrageous",
    # Russian: stems with up to four letters of ending (жалобу, нахамила, испортили).
    "жалоб", "жалу", "пожалова", "претензи", "ужасн", "отвратительн", "хамств", "хамил",
    "нахамил", "хамк", "груб", "недовол", "недовольств", "возмущ", "безобрази", "безобразн",
    "испортил", "кошмар", "обманул",
)  # fmt: skip

_LEXICON = Lexicon()
_LEXICON.add("complaint", _STEMS)


def is_complaint(text: str) -> bool:
    return any(_LEXICON.lookup(word) for word in words(text))
