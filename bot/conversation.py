"""The front desk: routes each event of a client to the right flow.

`FrontDesk.handle` is pure: given the client's session, an event and the time, it returns the
replies and the next session. The gateway does the IO (load, send, save) around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.events import Inbound, Kind
from bot.flows import menu
from bot.flows.services import catalogue_text
from bot.i18n import Catalogs, Translator
from bot.ports import CalendarUnavailable, Catalogue
from bot.replies import Reply
from bot.salon import Salon
from bot.session import Session

# After this many misunderstandings in a row the bot offers a person.
MISUNDERSTANDINGS_BEFORE_OFFER = 2


@dataclass(frozen=True, slots=True)
class Turn:
    replies: tuple[Reply, ...]
    session: Session


class FrontDesk:
    def __init__(
        self,
        salon: Salon,
        catalogs: Catalogs,
        idle: timedelta,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.salon = salon
        self.catalogs = catalogs
        self.idle = idle
        # None: the salon keeps no online catalogue; clients get its contacts instead.
        self.catalogue = catalogue

    async def handle(self, session: Session, event: Inbound, now: datetime) -> Turn:
        locale = self.catalogs.resolve(session.locale, event.language)
        _ = self.catalogs.get(locale)
        returning = session.last_seen is not None and now - session.last_seen <= self.idle
        session = session.model_copy(update={"last_seen": now})

        if event.kind is Kind.START or (event.kind is Kind.TEXT and not returning):
            # /start, or the first message of a new (or long idle) conversation: greet.
            return self._done(session, menu.greeting(_, self.salon, event.name))
        if event.kind is Kind.CHOICE:
            return await self._choose(session, _, event.choice)
        choice = self._choice_named(event.text)
        if choice is not None:
            return await self._choose(session, _, choice)
        return self._misunderstood(session, _)

    async def _choose(self, session: Session, _: Translator, choice: str) -> Turn:
        if choice.startswith(menu.LANGUAGE_PREFIX):
            locale = choice.removeprefix(menu.LANGUAGE_PREFIX)
            if locale in self.catalogs.locales:
                session = session.model_copy(update={"locale": locale})
                _ = self.catalogs.get(locale)
                return self._done(session, menu.menu(_, _("language.set")))
        if choice == menu.SERVICES and self.catalogue is not None:
            return self._done(session, await self._services(_))
        answers = {
            menu.BOOK: "book.offline",
            menu.BOOKINGS: "bookings.offline",
            menu.SERVICES: "services.offline",
            menu.PERSON: "person.offline",
            menu.INFO: "info.title",
        }
        if choice in answers:
            return self._done(session, menu.with_contacts(_, self.salon, answers[choice]))
        if choice == menu.LANGUAGE:
            return self._done(session, menu.languages(_, self.catalogs.locales))
        if choice == menu.HOME:
            return self._done(session, menu.menu(_, _("menu.prompt")))
        # A button from an old message, or one we no longer offer.
        return self._done(session, menu.menu(_, _("choice.stale")))

    async def _services(self, _: Translator) -> Reply:
        assert self.catalogue is not None
        try:
            services = await self.catalogue.services()
        except CalendarUnavailable:
            return menu.with_contacts(_, self.salon, "services.unavailable")
        if not services:
            return menu.with_contacts(_, self.salon, "services.offline")
        return menu.menu(_, catalogue_text(_, services))

    def _choice_named(self, text: str) -> str | None:
        """A client may type a menu entry instead of tapping it, in any language we speak, with
        or without the button's emoji ("Услуги и цены", "address & hours")."""
        wanted = _plain(text)
        if not wanted:
            return None
        for locale in self.catalogs.locales:
            for choice in menu.menu_choices(self.catalogs.get(locale)):
                if _plain(choice.label) == wanted:
                    return choice.id
        for code, name in menu.LANGUAGE_NAMES.items():
            if _plain(name) == wanted:
                return f"{menu.LANGUAGE_PREFIX}{code}"
        return None

    def _misunderstood(self, session: Session, _: Translator) -> Turn:
        count = session.misunderstood + 1
        if count >= MISUNDERSTANDINGS_BEFORE_OFFER:
            session = session.model_copy(update={"misunderstood": 0})
            return Turn((menu.with_contacts(_, self.salon, "fallback.person"),), session)
        session = session.model_copy(update={"misunderstood": count})
        return Turn((menu.menu(_, _("fallback.menu")),), session)

    @staticmethod
    def _done(session: Session, reply: Reply) -> Turn:
        return Turn((reply,), session.model_copy(update={"misunderstood": 0, "step": "menu"}))


def _plain(text: str) -> str:
    """Words only, in one case: emoji, punctuation and extra spaces do not matter."""
    return " ".join(re.sub(r"[^\w\s]", " ", text).casefold().split())
