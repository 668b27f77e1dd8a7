"""Words as a client types them: one case, "ё" as "е", and a lexicon that forgives endings and
one-letter typos.

Why no library: `rapidfuzz` would score each word against every entry (a C loop, but still one
call per pair), `pymorphy3` brings a dictionary package of several MB and ~100 ms to load for
what a handful of Russian endings already gives us here. A lexicon of stems with a deletion index
(the SymSpell idea: two words within one edit share a one-letter deletion) answers a word in a
few dictionary look-ups, so a whole message stays well under a millisecond (`python -m bench
understanding` measures it) at the accuracy the corpus test holds us to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_WORD = re.compile(r"[a-zа-я0-9]+")
# Russian endings (and English plurals) a stem may carry: at most this many letters.
MAX_ENDING = 4
# Shorter stems match only whole words or their endings, never with a typo.
MIN_STEM = 3
MIN_TYPO = 5
_ENGLISH_ENDINGS = ("", "s", "es", "ed", "ing")

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o",
            "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e",
            "yu", "ya",
        ],
        strict=True,
    )
)  # fmt: skip


def normal(text: str) -> str:
    """One case, "ё" read as "е", typographic apostrophes as plain ones."""
    return text.casefold().replace("ё", "е").replace("’", "'")


def words(text: str) -> list[str]:
    return _WORD.findall(normal(text))


def latin(word: str) -> str:
    """A Cyrillic word in Latin letters, so that "Ольга" finds the master "Olga"."""
    return "".join(_CYRILLIC.get(letter, letter) for letter in word)


def _deletions(word: str) -> Iterator[str]:
    for i in range(len(word)):
        yield word[:i] + word[i + 1 :]


class Lexicon:
    """Stems to what they mean. A word matches a stem when it is the stem plus at most
    `MAX_ENDING` letters ("маникюр" → "маникюра", "маникюру"), or when it is one edit away
    from a stem of `MIN_TYPO` letters or more ("manicre", "маникур")."""

    def __init__(self, min_typo: int = MIN_TYPO) -> None:
        self.min_typo = min_typo
        self._stems: dict[str, set[str]] = {}
        self._typos: dict[str, set[str]] = {}

    def add(self, meaning: str, stems: Iterable[str]) -> None:
        for raw in stems:
            stem = normal(raw)
            self._stems.setdefault(stem, set()).add(meaning)
            if len(stem) >= self.min_typo:
                for variant in (stem, *_deletions(stem)):
                    self._typos.setdefault(variant, set()).add(meaning)

    def exact(self, word: str) -> set[str]:
        """Meanings of `word` read as a stem with an ending, no typo."""
        if word.isascii():
            # English endings are few; free ones would make "men" of "menu" and "mention".
            for ending in _ENGLISH_ENDINGS:
                found = self._stems.get(word.removesuffix(ending))
                if found and word.endswith(ending):
                    return found
            return set()
        for end in range(len(word), max(MIN_STEM, len(word) - MAX_ENDING) - 1, -1):
            found = self._stems.get(word[:end])
            if found:
                return found
        return set()

    def whole(self, word: str) -> set[str]:
        """Meanings of `word` as a whole word: for short words, where an ending would be a
        different word ("hi" and "hire")."""
        return self._stems.get(word, set())

    def lookup(self, word: str) -> set[str]:
        found = self.exact(word)
        if found or len(word) < self.min_typo:
            return found
        for variant in (word, *_deletions(word)):
            typo = self._typos.get(variant)
            if typo:
                return typo
        return set()
