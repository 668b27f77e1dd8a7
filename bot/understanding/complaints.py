"""A complaint in the client's words, Russian or English, typos forgiven: such a conversation
goes to a person (and the handoff's routing may send it to the team that deals with them).

A small list of stems on purpose: words that in a salon's chat mean the client is unhappy with
what happened, not with a free time. "Ужасно" and "terribly" are also mere intensifiers
("ужасно хочу записаться", "I terribly want a fringe"): right before a word of wanting or liking
they are not a complaint.
"""

from __future__ import annotations

from bot.understanding.words import Lexicon, words

_STEMS = (
    # English: exact words with their endings (complains, complained), one typo from 5 letters.
    "complain", "complaint", "rude", "rudely", "terrible", "terribly", "awful", "horrible",
    "disgusting", "unacceptable", "disappointed", "unhappy", "ruined", "outrageous",
    # Russian: stems with up to four letters of ending (жалобу, нахамила, испортили).
    "жалоб", "жалу", "пожалова", "претензи", "ужасн", "отвратительн", "хамств", "хамил",
    "нахамил", "хамк", "груб", "недовол", "недовольств", "возмущ", "безобрази", "безобразн",
    "испортил", "кошмар", "обманул",
)  # fmt: skip

_LEXICON = Lexicon()
_LEXICON.add("complaint", _STEMS)
# Words that mean a complaint only as they are: one typo from "worst" is "worse" or "worth"
# ("would 5pm be worse?", "is it worth it?").
_EXACT = frozenset({"worst"})
# "Претензий нет", "no complaints", "без претензий": the word, denied.
_DENIED_BEFORE = frozenset({"no", "never", "без", "никаких", "нет"})
# After the word only "нет", or "не" with a verb of having ("претензий не имею", "жалоб не
# было"): "жалоба не на мастера, а на администратора" is a complaint all the same.
_DENIED_AFTER = frozenset({"нет"})
_HAD = ("име", "был", "буд", "ест")
# Intensifiers, and the words after which they only intensify (хочу, хотела, нужно, рада,
# люблю, нравится; want, need, love, like).
_INTENSIFIERS = ("ужасно", "terribly", "awfully")
_WANTING = Lexicon()
_WANTING.add(
    "wanting", ("хоч", "хотел", "нуж", "рад", "люб", "нрав", "want", "need", "love", "like")
)


def is_complaint(text: str) -> bool:
    said = words(text)
    for n, word in enumerate(said):
        following = said[n + 1] if n + 1 < len(said) else ""
        if word in _INTENSIFIERS and following and _WANTING.lookup(following):
            continue
        if word in _EXACT or _LEXICON.lookup(word):
            previous = said[n - 1] if n else ""
            after = said[n + 2] if n + 2 < len(said) else ""
            denied_after = following in _DENIED_AFTER or (
                following == "не" and after.startswith(_HAD)
            )
            if previous in _DENIED_BEFORE or denied_after:
                continue
            return True
    return False
