"""The bot's `Calendar` port over Cal.com: slots, bookings, moves and cancellations.

Cal.com's errors stop here: the bot hears CalendarUnavailable (down, slow, breaker open, rate
limited), SlotTaken, AttendeeRejected or BookingUncertain, never an HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.catalogue import Service
from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    BookingUncertain,
    CalendarUnavailable,
    Slot,
    SlotTaken,
    Visit,
)
from gateway.integrations.calcom import api as calcom
from gateway.integrations.calcom.api import Booking, CalcomClient, CalcomError, CalcomRejected
from gateway.integrations.calcom.catalogue import CalcomCatalogue, Listing, Offer
from gateway.integrations.calcom.slot_cache import Days, Key, SlotCache

log = logging.getLogger("frontdesk.calendar")

# How long a slot is held while the booking is created (Cal.com's default is 5 minutes).
HOLD_MINUTES = 5
# Metadata keys on bookings made in the chat: who to tell when the booking changes.
METADATA_CHANNEL = "frontdesk_channel"
METADATA_CHAT = "frontdesk_chat"
METADATA_CLIENT = "frontdesk_client"
METADATA_SALON = "frontdesk_salon"


class CalcomCalendar:
    def __init__(
        self,
        client: CalcomClient,
        catalogue: CalcomCatalogue,
        zone: str,
        *,
        changing: Callable[[str], Awaitable[None]] | None = None,
        slot_cache: SlotCache | None = None,
    ) -> None:
        self.client = client
        # Free slots read a few seconds ago, dropped when bookings change (slot_cache.py).
        self.slot_cache = slot_cache if slot_cache is not None else SlotCache(0.0)
        self.catalogue = catalogue
        self.zone = zone
        # Told before the chat moves or cancels a booking: Cal.com's webhook about it may come
        # before its API answer, and must be known as the client's own change.
        self.changing = changing

    async def services(self) -> tuple[Service, ...]:
        return await self.catalogue.services()

    async def slots(
        self,
        service_key: str,
        master_id: int | None,
        start: datetime,
        end: datetime,
        *,
        reschedule_uid: str | None = None,
    ) -> list[Slot]:
        # A booking being moved keeps its service and master, so the same offers apply; Cal.com
        # counts its current time as free.
        offers = self._offers(await self.catalogue.listing(), service_key, master_id)
        keys = [(offer.event_type_id, start, end, reschedule_uid) for offer in offers]
        # What the cache keeps is taken as it is; only the rest is read, concurrently when there
        # is more than one (a task each: with the cache warm, none is made).
        found = [self.slot_cache.get(key) for key in keys]
        missing = [index for index, days in enumerate(found) if days is None]
        try:
            if len(missing) == 1:
                found[missing[0]] = await self._read(keys[missing[0]])
            elif missing:
                read = await asyncio.gather(*(self._read(keys[index]) for index in missing))
                for index, fresh in zip(missing, read, strict=True):
                    found[index] = fresh
        except CalcomError as exc:
            raise CalendarUnavailable(str(exc)) from exc
        # One slot per time; where several masters are free then, the first listed takes it.
        merged: dict[datetime, Slot] = {}
        for offer, kept in zip(offers, found, strict=True):
            for ranges in (kept or {}).values():
                for free in ranges:
                    if start <= free.start < end and free.start not in merged:
                        merged[free.start] = Slot(free.start, offer.master)
        return [merged[moment] for moment in sorted(merged)]

    async def book(self, request: BookingRequest) -> Visit:
        listing = await self.catalogue.listing()
        offer = self._offer_for(listing, request.service_key, request.master_id)
        if offer is None:
            raise CalendarUnavailable(f"no event type books {request.service_key!r} now")
        try:
            return await self._book(listing, offer, request)
        finally:
            # Booked, or refused as taken: either way its free slots are not what was read.
            self.slot_cache.changed(offer.event_type_id)

    async def _book(self, listing: Listing, offer: Offer, request: BookingRequest) -> Visit:
        # A waitlist offer's hold is claimed as it is; else the time is held while booking.
        own_hold = request.reservation is None
        reservation = request.reservation or await self._hold(offer, request.start)
        client = request.client
        try:
            booking = await self.client.create_booking(
                offer.event_type_id,
                request.start,
                request.name,
                idempotency_key=request.key,
                time_zone=self.zone,
                language=request.locale,
                email=request.email,
                phone=request.phone,
                metadata={
                    METADATA_SALON: client.salon_id,
                    METADATA_CHANNEL: client.channel.value,
                    METADATA_CHAT: client.chat_id,
                    METADATA_CLIENT: client.user_id,
                },
                reservation_uid=reservation,
            )
        except CalcomError as exc:
            if own_hold and reservation and not isinstance(exc, calcom.BookingUncertain):
                # Not booked: our hold would block this very client's next try for minutes
                # (a waitlist offer's hold stays theirs until it ends).
                await self._release(reservation)
            raise _translated(exc) from exc
        return self._visit(listing, booking)

    async def visit(self, uid: str) -> Visit | None:
        booking = await self._booking(uid)
        # A booking the salon moved points to its successor: follow it (once is enough for
        # Cal.com's chains, which always point at the newest from the booking read).
        if booking is not None and booking.rescheduled_to_uid:
            successor = await self._booking(booking.rescheduled_to_uid)
            booking = successor or booking
        if booking is None:
            return None
        return self._visit(await self.catalogue.listing(), booking)

    async def reschedule(self, uid: str, start: datetime) -> Visit:
        if self.changing is not None:
            await self.changing(uid)
        try:
            booking = await self.client.reschedule(uid, start)
        except CalcomError as exc:
            # Which event type's times changed is not known without the booking.
            self.slot_cache.changed(None)
            raise _translated(exc) from exc
        self.slot_cache.changed(booking.event_type_id)
        return self._visit(await self.catalogue.listing(), booking)

    async def cancel(self, uid: str, reason: str | None) -> Visit:
        if self.changing is not None:
            await self.changing(uid)
        try:
            booking = await self.client.cancel(uid, reason)
        except CalcomError as exc:
            self.slot_cache.changed(None)
            raise CalendarUnavailable(str(exc)) from exc
        self.slot_cache.changed(booking.event_type_id)
        return self._visit(await self.catalogue.listing(), booking)

    # --- helpers ------------------------------------------------------------------------------

    async def _read(self, key: Key) -> Days:
        """The event type's free slots from Cal.com, kept for the next readers."""
        event_type_id, start, end, reschedule_uid = key
        mark = self.slot_cache.mark(event_type_id)
        days = await self.client.slots(
            event_type_id, start, end, self.zone, booking_uid_to_reschedule=reschedule_uid
        )
        self.slot_cache.put(key, days, mark)
        return days

    async def _booking(self, uid: str) -> Booking | None:
        try:
            return await self.client.booking(uid)
        except CalcomError as exc:
            raise CalendarUnavailable(str(exc)) from exc

    async def _release(self, reservation: str) -> None:
        try:
            await self.client.release(reservation)
        except CalcomError as exc:
            log.info("calcom: could not release a hold (it expires by itself): %s", exc)

    async def _hold(self, offer: Offer, start: datetime) -> str | None:
        """Hold the slot while the booking is made, where this Cal.com can. Not holding is no
        failure: the booking itself is checked against conflicts."""
        try:
            held = await self.client.reserve(offer.event_type_id, start, hold_minutes=HOLD_MINUTES)
        except calcom.SlotTaken:
            # Someone holds or took it, or this very booking exists already (a redelivered
            # confirm): the create call finds our own booking first, else says it is taken.
            return None
        except CalcomError as exc:
            log.info("calcom: booking without a hold: %s", exc)
            return None
        return held.uid if held is not None else None

    @staticmethod
    def _offers(listing: Listing, service_key: str, master_id: int | None) -> list[Offer]:
        offers = listing.offers.get(service_key, ())
        if master_id is not None:
            return [o for o in offers if o.masters == (master_id,)]
        assigning = [o for o in offers if o.assigns]
        return assigning or list(offers)

    @staticmethod
    def _offer_for(listing: Listing, service_key: str, master_id: int | None) -> Offer | None:
        offers = listing.offers.get(service_key, ())
        if master_id is not None:
            own = [o for o in offers if o.masters == (master_id,)]
            return next(iter(own), next((o for o in offers if master_id in o.masters), None))
        return next((o for o in offers if o.assigns), offers[0] if offers else None)

    def _visit(self, listing: Listing, booking: Booking) -> Visit:
        key = listing.service_of.get(booking.event_type_id or -1)
        service = next((s for s in listing.services if s.key == key), None)
        offers = listing.offers.get(key or "", ())
        offer = next((o for o in offers if o.event_type_id == booking.event_type_id), None)
        host = next((h for h in booking.hosts if h.id is not None or h.name), None)
        master_id = host.id if host is not None else None
        master = (host.name if host is not None else None) or listing.names.get(master_id or -1)
        return Visit(
            uid=booking.uid,
            service=service.title if service else booking.title,
            start=booking.start,
            end=booking.end,
            master=master,
            active=booking.active,
            service_key=key,
            # Set only where the master was chosen: a move then keeps them.
            master_id=offer.master if offer is not None else None,
            service_titles=service.titles if service else (),
        )


def _translated(exc: CalcomError) -> Exception:
    """Cal.com's answer to a booking write, in the bot's terms."""
    if isinstance(exc, calcom.SlotTaken):
        return SlotTaken(str(exc))
    if isinstance(exc, calcom.BookingUncertain):
        return BookingUncertain(str(exc))
    if isinstance(exc, CalcomRejected):
        return _rejected(exc)
    return CalendarUnavailable(str(exc))


def _rejected(exc: CalcomRejected) -> Exception:
    """A 4xx on a booking write: the client's details, or a problem only staff can fix."""
    message = exc.message.lower()
    if "email" in message:
        return AttendeeRejected("email", exc.message)
    if "phone" in message:
        return AttendeeRejected("phone", exc.message)
    log.error("calcom refused a booking: %s", exc.message)
    return CalendarUnavailable(exc.message)
