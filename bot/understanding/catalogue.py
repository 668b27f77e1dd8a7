"""The salon's own words: its services, categories and masters, as clients name them.

The catalogue comes from the salon's calendar, in the salon's words (often only one language).
Each word of a service's title or category is read through a small bilingual table of salon
vocabulary, so "стрижка", "подстричься" and "haircut" all find "Women's haircut" and "Men's
haircut"; a word the table does not know still matches itself, with its endings and typos.
Masters are matched by first name or surname, in Latin letters on both sides ("Ольге" finds
"Olga Smirnova"), with the usual Russian short forms ("Маша" is Maria).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from bot.catalogue import Service
from bot.understanding.words import Lexicon, latin, words

# A concept: the words clients use for it (stems, both languages), and how much it says about
# a service. Nouns that name the service weigh 1; words that only narrow it ("women's",
# "hair") weigh less, so "подстричь волосы" means a haircut, not hair colouring.
_CORE = 1.0
_NARROWING = 0.4
_CONCEPTS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (_CORE, ("haircut", "haircuts", "cut", "trim", "стрижк", "стрич", "подстри", "постри",
             "подстрич", "постриг", "подстриг")),
    (_CORE, ("manicure", "mani", "manicur", "маникюр", "маник")),
    (_CORE, ("pedicure", "pedi", "педикюр")),
    (_CORE, ("colouring", "coloring", "colour", "color", "dye", "dyeing", "highlights",
             "окрашивани", "окрас", "покрас", "покрашу", "краск", "мелировани", "тонировани")),
    (_CORE, ("gel", "polish", "shellac", "гел", "лак", "шеллак", "покрыти")),
    (_CORE, ("brow", "brows", "eyebrow", "eyebrows", "бров")),
    (_CORE, ("lash", "lashes", "eyelash", "ресниц")),
    (_CORE, ("massage", "массаж")),
    (_CORE, ("facial", "face", "лиц", "чистк")),
    (_CORE, ("waxing", "wax", "депиляци", "эпиляци", "воск")),
    (_NARROWING, ("shaping", "shape", "коррекци", "оформлени", "форм")),
    (_NARROWING, ("women", "womens", "woman", "ladies", "lady", "female", "женск", "девушк")),
    (_NARROWING, ("men", "mens", "male", "gents", "мужск", "мужчин", "муж")),
    (_NARROWING, ("hair", "волос", "причес")),
    (_NARROWING, ("nail", "nails", "ногт", "ногот")),
)  # fmt: skip

# Russian short and familiar forms of first names, to their full form in Latin letters.
# Russian short and familiar forms of first names, to the stem of the full name in Latin letters
# (as `_name_stems` makes it: "Maria" and "Mariya" → "mari").
_SHORT_NAMES = {
    "маша": "mari", "аня": "ann", "оля": "olg", "лена": "elen", "катя": "ekaterin",
    "наташа": "natali", "таня": "tatyan", "настя": "anastasi", "юля": "yuli", "ира": "irin",
    "света": "svetlan", "саша": "aleksandr", "женя": "evgeni", "даша": "dari", "вика": "viktori",
    "masha": "mari",
}  # fmt: skip
_SHORT = Lexicon()
for _short, _full in _SHORT_NAMES.items():
    _SHORT.add(_full, (_short[:-1] if _short.endswith(("а", "я")) else _short,))


# Any salon word, offered here or not ("педикюр" where no pedicure is listed): a wish to book.
SALON_WORDS = Lexicon()
for _weight, _stems in _CONCEPTS:
    if _weight == _CORE:
        SALON_WORDS.add(_stems[0], _stems)


@dataclass(frozen=True, slots=True)
class Found:
    """The services that fit the message best (one, or several to choose from), the category
    named, and the masters named."""

    services: tuple[str, ...] = ()
    category: str | None = None
    masters: tuple[int, ...] = ()


def _concept_of(word: str) -> tuple[float, tuple[str, ...]] | None:
    for weight, stems in _CONCEPTS:
        if any(word == stem or (len(stem) >= 4 and word.startswith(stem)) for stem in stems):
            return weight, stems
    return None


def _title_words(title: str) -> list[str]:
    # "Women's" → "women", "s": the possessive is no word of its own.
    return [word for word in words(title.replace("'s", "")) if len(word) > 1]


def _name_stems(name: str) -> set[str]:
    """A master's name parts as stems in Latin letters: "Olga" → "olga", "olg"."""
    stems: set[str] = set()
    for part in words(name):
        part = latin(part)
        if len(part) >= 3:
            stems.add(part)
            # Russian names decline on their last vowel: "Ольга", "Ольге", "Ольгой".
            for ending in ("iya", "ia", "ya", "a", "y"):
                stem = part.removesuffix(ending)
                if stem != part and len(stem) >= 3:
                    # "Mariya", "Maria" → "mari": the "i" is the name's, not the ending's.
                    stems.add(stem + "i" if ending.startswith("i") else stem)
    return stems


def _name_forms(token: str) -> list[str]:
    """A typed word as a master's name could be: in Latin letters, and for a Cyrillic word also
    without its case ending ("Ольге" → "olg")."""
    if token.isascii():
        return [token]
    short = _SHORT.exact(token)
    if short:
        return sorted(short)
    return [latin(token[: len(token) - cut]) for cut in range(3) if len(token) - cut >= 3]


class Vocabulary:
    def __init__(self, services: Iterable[Service]) -> None:
        self.services = tuple(services)
        self._words = Lexicon()
        self._weights: dict[str, dict[str, float]] = {}  # concept id → service key → weight
        self._categories: dict[str, set[str]] = {}
        self._masters = Lexicon(min_typo=6)  # names are short: "Anna" is no typo of "Anne"
        for service in self.services:
            # The title and category in every language the salon gives (Cal.com metadata):
            # a Russian client may type the English name, and the other way round.
            titles = (service.title, *(title for _, title in service.titles))
            categories = (service.category or "", *(name for _, name in service.categories))
            for word in dict.fromkeys(w for title in titles for w in _title_words(title)):
                self._learn(word, service.key)
            for word in dict.fromkeys(w for name in categories for w in _title_words(name)):
                self._categories.setdefault(self._learn(word, None), set()).add(service.key)
            for master in service.masters:
                self._masters.add(str(master.id), _name_stems(master.name))

    def _learn(self, word: str, key: str | None) -> str:
        """Learn the word of a title (or a category, `key` None); its concept's id."""
        concept = _concept_of(word)
        weight, stems = concept if concept is not None else (_CORE, (word,))
        concept_id = stems[0]
        self._words.add(concept_id, (*stems, word))
        if key is not None:
            weights = self._weights.setdefault(concept_id, {})
            weights[key] = max(weights.get(key, 0.0), weight)
        return concept_id

    def find(self, tokens: list[str]) -> Found:
        scores: dict[str, float] = {}
        named: set[str] = set()
        masters: list[int] = []
        for token in tokens:
            for concept_id in self._words.lookup(token) if len(token) > 2 else ():
                if concept_id in named:
                    continue
                named.add(concept_id)
                for key, weight in self._weights.get(concept_id, {}).items():
                    scores[key] = scores.get(key, 0.0) + weight
            for master in self._master_ids(token):
                if master not in masters:
                    masters.append(master)
        return Found(self._best(scores), self._category(named), tuple(masters))

    def _master_ids(self, token: str) -> list[int]:
        if len(token) < 3 or token.isdigit():
            return []
        for form in _name_forms(token):
            found = self._masters.lookup(form)
            if found:
                return sorted(int(master) for master in found)
        return []

    def _best(self, scores: dict[str, float]) -> tuple[str, ...]:
        if not scores:
            return ()
        top = max(scores.values())
        if top < _CORE:
            return ()  # only narrowing words ("women's", "hair"): the category says more
        order = [s.key for s in self.services]
        return tuple(sorted((k for k, v in scores.items() if v == top), key=order.index))

    def _category(self, named: set[str]) -> str | None:
        for concept_id, keys in self._categories.items():
            if concept_id in named:
                return next(s.category for s in self.services if s.key in keys)
        return None


@lru_cache(maxsize=8)
def vocabulary(services: tuple[Service, ...]) -> Vocabulary:
    """Built once per catalogue (the calendar caches the catalogue, so it rarely changes)."""
    return Vocabulary(services)
