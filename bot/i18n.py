"""Messages are keys in gettext catalogs (`locales/<lang>/LC_MESSAGES/messages.po`).

The `.mo` files are compiled at install and image build time. Should one be missing (a fresh
checkout, a forgotten build step), the `.po` is compiled in memory instead: a missing `.mo` never
stops the bot from starting or from speaking the client's language.
"""

from __future__ import annotations

import gettext
import io
import logging
import os
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

log = logging.getLogger("frontdesk.i18n")

SUPPORTED = ("ru", "en")
DOMAIN = "messages"


def default_directory() -> Path:
    configured = os.environ.get("LOCALES_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "locales"


class Translator:
    """The client's language: message keys to text, with `str.format` placeholders."""

    def __init__(self, locale: str, translations: gettext.NullTranslations) -> None:
        self.locale = locale
        self._translations = translations

    def __call__(self, key: str, **values: Any) -> str:
        text = self._translations.gettext(key)
        return text.format(**values) if values else text

    def plural(self, key: str, plural_key: str, n: int, **values: Any) -> str:
        return self._translations.ngettext(key, plural_key, n).format(n=n, **values)


def _load(directory: Path, locale: str) -> gettext.NullTranslations | None:
    base = directory / locale / "LC_MESSAGES" / DOMAIN
    mo, po = base.with_suffix(".mo"), base.with_suffix(".po")
    if mo.exists():
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    if po.exists():
        log.warning("compiled catalog missing, compiling %s in memory", po)
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=DOMAIN)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return gettext.GNUTranslations(buffer)
    return None


class Catalogs:
    def __init__(self, directory: Path | None = None, default_locale: str = "en") -> None:
        directory = directory or default_directory()
        self.default_locale = default_locale
        self._translators: dict[str, Translator] = {}
        for locale in SUPPORTED:
            translations = _load(directory, locale)
            if translations is None:
                log.error("no catalog for %s in %s", locale, directory)
                continue
            self._translators[locale] = Translator(locale, translations)
        if not self._translators:
            # Keys are not for clients' eyes, but a bot that speaks keys still works and says so
            # loudly in the log rather than refusing to start.
            self._translators["en"] = Translator("en", gettext.NullTranslations())

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self._translators)

    def resolve(self, chosen: str | None, reported: str | None) -> str:
        """The client's language: their explicit choice, else their app's, else the salon's."""
        for candidate in (chosen, _language_part(reported), self.default_locale):
            if candidate in self._translators:
                return candidate
        return next(iter(self._translators))

    def get(self, locale: str) -> Translator:
        return self._translators.get(locale) or self._translators[self.resolve(None, None)]


def _language_part(code: str | None) -> str | None:
    # Telegram reports IETF tags such as "ru", "en-US" or "pt-br".
    if not code:
        return None
    return code.replace("_", "-").split("-", 1)[0].lower()
