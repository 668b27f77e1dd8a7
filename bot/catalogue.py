"""The salon's catalogue as the bot sees it: services (with price and duration) and masters.

Where it comes from (Cal.com event types today) is the gateway's business; the bot reads it
through the `Catalogue` port.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# Words the salon gives in several languages: (language, text) pairs, e.g. (("ru", "Маникюр"),).
Names = tuple[tuple[str, str], ...]


def in_language(names: Names, locale: str, default: str) -> str:
    """The text in the client's language where the salon gave one, else its default."""
    return next((text for language, text in names if language == locale and text), default)


@dataclass(frozen=True, slots=True)
class Master:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Service:
    key: str  # stable and short: it travels in button ids
    title: str
    minutes: int
    # As the salon lists it: a number ("2500") or words ("from 2500"), in `currency`.
    price: str | None = None
    currency: str | None = None
    description: str = ""
    category: str | None = None
    masters: tuple[Master, ...] = ()
    # The title and category in other languages (Cal.com metadata `title_ru`, `category_ru`).
    titles: Names = ()
    categories: Names = ()

    def in_language(self, locale: str) -> Service:
        """The service as a client speaking `locale` reads it."""
        category = self.category
        if category is not None:
            category = in_language(self.categories, locale, category)
        return replace(self, title=in_language(self.titles, locale, self.title), category=category)
