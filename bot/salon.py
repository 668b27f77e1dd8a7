"""What the bot knows about the salon it speaks for."""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalogue import Names, in_language
from bot.working_hours import WorkingHours


@dataclass(frozen=True, slots=True)
class Salon:
    id: str
    name: str
    timezone: str
    address: str = ""
    phone: str = ""
    hours: str = ""
    # The address and hours in other languages (SALON_ADDRESS_RU, SALON_HOURS_EN, ...).
    addresses: Names = ()
    opening_hours: Names = ()
    # When staff answer (SALON_WORKING_HOURS): a handoff outside them says when they will.
    working_hours: WorkingHours | None = None

    def address_in(self, locale: str) -> str:
        return in_language(self.addresses, locale, self.address)

    def hours_in(self, locale: str) -> str:
        return in_language(self.opening_hours, locale, self.hours)
