"""The ports the bot talks to. The gateway implements them; tests use in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from bot.catalogue import Names, Service, in_language
from bot.events import ClientRef


class CalendarUnavailable(Exception):
    """The salon's calendar cannot be reached now: the bot says so and offers the salon's
    contacts instead of failing."""


class BookingUncertain(CalendarUnavailable):
    """The calendar could not say whether a booking went through. Asking again with the same
    key never books twice, so the client may simply confirm again."""


class SlotTaken(Exception):
    """Someone else took (or holds) this time meanwhile."""


class AttendeeRejected(Exception):
    """The calendar refused the client's contact details; `field` is "phone" or "email"."""

    def __init__(self, field: str, message: str = "") -> None:
        super().__init__(message or field)
        self.field = field


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # aware, UTC
    # The master who would take it; None when the salon's calendar assigns a free one itself.
    master_id: int | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A booking as the client sees it."""

    uid: str
    service: str  # the service's title
    start: datetime  # aware, UTC
    end: datetime
    master: str | None = None
    active: bool = True
    service_key: str | None = None
    master_id: int | None = None
    # The service's title in other languages (see `Service.titles`).
    service_titles: Names = ()

    def service_in(self, locale: str) -> str:
        return in_language(self.service_titles, locale, self.service)


@dataclass(frozen=True, slots=True)
class BookingRequest:
    # Names this booking intent: the same key always yields the same booking, so a double tap
    # or a redelivered update never books twice.
    key: str
    client: ClientRef
    service_key: str
    master_id: int | None  # None: any free master
    start: datetime
    name: str
    locale: str
    phone: str | None = None
    email: str | None = None
    # A hold the calendar already has on this time for this client (a waitlist offer's or a
    # staff proposal's): the booking claims it instead of holding the time again.
    reservation: str | None = None


class Catalogue(Protocol):
    async def services(self) -> tuple[Service, ...]:
        """The services clients can book, in the salon's order. Raises CalendarUnavailable."""
        ...


class Calendar(Catalogue, Protocol):
    """The salon's calendar. Every method raises CalendarUnavailable when it cannot be asked."""

    async def slots(
        self,
        service_key: str,
        master_id: int | None,
        start: datetime,
        end: datetime,
        *,
        reschedule_uid: str | None = None,
    ) -> list[Slot]:
        """Free start times in [start, end), earliest first; with `master_id` None, every
        master's (one slot per time). `reschedule_uid`: that booking (of this service and
        master) is being moved, so its own time counts as free."""
        ...

    async def book(self, request: BookingRequest) -> Visit:
        """Book, holding the slot while confirming. Raises SlotTaken, AttendeeRejected,
        BookingUncertain or CalendarUnavailable."""
        ...

    async def visit(self, uid: str) -> Visit | None:
        """A booking by uid, None when the calendar does not know it."""
        ...

    async def reschedule(self, uid: str, start: datetime) -> Visit:
        """Move a booking; the returned visit may have a new uid. Raises SlotTaken."""
        ...

    async def cancel(self, uid: str, reason: str | None) -> Visit:
        """Cancel a booking (a booking already cancelled is returned as it is)."""
        ...


# --- the waitlist ---------------------------------------------------------------------------


class WaitlistFull(Exception):
    """The client already waits for as many times as a client may (`MAX_WAITS`)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """A client waiting for a time of a service (with a master, or any) on a range of days, in
    a part of the day ("morning", "afternoon", "evening" or "any")."""

    id: str
    service_key: str
    master_id: int | None
    first: date  # on the salon's calendar
    last: date
    part: str


@dataclass(frozen=True, slots=True)
class HeldTime:
    """A freed time offered to a waiting client, held for them in the calendar until `until`."""

    id: str
    wait_id: str
    service_key: str
    master_id: int | None
    start: datetime  # aware, UTC
    until: datetime
    # The calendar's hold (Cal.com's reservation uid); None where the calendar cannot hold.
    reservation: str | None = None


class Waitlist(Protocol):
    """Clients waiting for a time to free up, first come first served. The gateway finds freed
    times and offers them (one client at a time per time); the bot joins, lists and answers."""

    async def join(self, client: ClientRef, wait: Wait, now: datetime) -> Wait:
        """Put the client at the end of the queue. Raises WaitlistFull."""
        ...

    async def waits(self, client: ClientRef) -> list[Wait]:
        """The client's waits, oldest first."""
        ...

    async def leave(self, client: ClientRef, wait_id: str) -> bool:
        """False when the wait is not (or no longer) the client's."""
        ...

    async def take(self, client: ClientRef, offer_id: str, now: datetime) -> HeldTime | None:
        """The offer, still held for this client, now being booked; None when it is not theirs,
        was passed on or its hold is over."""
        ...

    async def booked(self, client: ClientRef, offer_id: str | None, service_key: str) -> None:
        """The client booked (from the offer, or in any other way): their waits for the service
        end, and so does the offer."""
        ...

    async def decline(self, client: ClientRef, offer_id: str) -> bool:
        """ "No thanks" (or another time chosen instead): the time goes to the next client.
        False when it is not held for them (nor being booked by them)."""
        ...
