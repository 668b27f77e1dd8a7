"""The main menu, the salon's contacts and the language switch: the first real flow.

Entries whose flows are not built yet (booking, my bookings, services, a person) answer honestly
with the salon's phone and address, so the client always has a way forward.
"""

from __future__ import annotations

from bot.i18n import Translator
from bot.replies import Choice, Reply
from bot.salon import Salon

STEP = "menu"

BOOK = "m:book"
BOOKINGS = "m:mine"
SERVICES = "m:svc"
INFO = "m:info"
PERSON = "m:person"
LANGUAGE = "m:lang"
HOME = "m:home"
LANGUAGE_PREFIX = "lang:"

ENTRIES = (
    (BOOK, "menu.book"),
    (BOOKINGS, "menu.bookings"),
    (SERVICES, "menu.services"),
    (INFO, "menu.info"),
    (PERSON, "menu.person"),
    (LANGUAGE, "menu.language"),
)
# Language names are written in their own language, whatever the client's current one.
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


def menu_choices(_: Translator) -> tuple[Choice, ...]:
    return tuple(Choice(id, _(key)) for id, key in ENTRIES)


def menu(_: Translator, text: str) -> Reply:
    return Reply(text, menu_choices(_), columns=2)


def greeting(_: Translator, salon: Salon, name: str) -> Reply:
    if name:
        return menu(_, _("menu.greeting.named", name=name, salon=salon.name))
    return menu(_, _("menu.greeting", salon=salon.name))


def contacts(_: Translator, salon: Salon) -> str:
    lines = []
    if salon.phone:
        lines.append(_("salon.phone", phone=salon.phone))
    address, hours = salon.address_in(_.locale), salon.hours_in(_.locale)
    if address:
        lines.append(_("salon.address", address=address))
    if hours:
        lines.append(_("salon.hours", hours=hours))
    return "\n".join(lines)


def with_contacts(_: Translator, salon: Salon, key: str) -> Reply:
    """An entry that is answered with the salon's contacts, then the menu again."""
    details = contacts(_, salon) or _("salon.no_contacts", salon=salon.name)
    return menu(_, f"{_(key, salon=salon.name)}\n\n{details}")


def languages(_: Translator, available: tuple[str, ...]) -> Reply:
    choices = tuple(
        Choice(f"{LANGUAGE_PREFIX}{code}", LANGUAGE_NAMES.get(code, code)) for code in available
    )
    return Reply(_("language.prompt"), (*choices, Choice(HOME, _("menu.back"))), columns=2)
