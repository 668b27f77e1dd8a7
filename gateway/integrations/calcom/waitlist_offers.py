"""Offering freed times to waiting clients, with a hold in Cal.com.

A time frees up when a booking is cancelled or moved away from it (Cal.com's webhook, or the
reconciliation that finds the change later: handlers/calcom.py notes it with `freed`). The
matcher then walks the queue, first come first served, for the first wait that time suits
(the service, the master or any, the days, the part of the day; a wait with an offer out, a
client with an offer out, or a wait offered that time before, is passed over), claims the time
for it (one atomic step: never two clients at once), and holds it in Cal.com
(`POST /v2/slots/reservations` with `reservationDuration`, §1.5; Cal.com refuses to reserve a
booked time, 422 "Can't reserve a slot if the event is already booked", and a time another
reservation holds, 422 "already reserved by another user": calcom/cal.com
apps/api/v2/src/modules/slots/slots-2024-09-04/services/slots.service.ts, reserveSlot and
checkSlotOverlap). A refusal means the time is not free after all: the claim is undone and
nobody is offered it. The offer itself goes to the client's conversation through the inbox
(handlers/waitlist.py words it), in order with their own messages.

When a hold is over or the client says "No thanks" the reservation is given back
(`DELETE /v2/slots/reservations/{uid}`) and the time is offered to the next wait. The timer is
`wl:due` in Redis: a restart loses no offer. Waits past their last day end here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.flows.waitlist import HOLD_MINUTES, PART_HOURS
from bot.ports import HeldTime, Wait
from gateway.integrations.calcom import api as calcom
from gateway.integrations.calcom.api import CalcomClient, CalcomError
from gateway.integrations.calcom.catalogue import CalcomCatalogue, Offer
from gateway.integrations.calcom.waitlist import Waiting, WaitlistStore, parse_slot, slot_id
from gateway.pipeline.inbox import Event, Inbox

log = logging.getLogger("frontdesk.waitlist")

SOURCE = "waitlist"
# A time Cal.com could not be asked about is looked at again this much later.
RETRY = timedelta(seconds=30)


def suits(wait: Wait, service_key: str, offer: Offer, start: datetime, zone: ZoneInfo) -> bool:
    """Whether a freed time of this event type is what the wait asks for."""
    if wait.service_key != service_key:
        return False
    if wait.master_id is not None and offer.masters != (wait.master_id,):
        return False
    local = start.astimezone(zone)
    low, high = PART_HOURS.get(wait.part, (0, 24))
    return wait.first <= local.date() <= wait.last and low <= local.hour < high


class WaitlistOffers:
    def __init__(
        self,
        store: WaitlistStore,
        client: CalcomClient,
        catalogue: CalcomCatalogue,
        inbox: Inbox,
        clock: Callable[[], datetime],
        hold_minutes: int = HOLD_MINUTES,
    ) -> None:
        self.store = store
        self.client = client
        self.catalogue = catalogue
        self.inbox = inbox
        self.clock = clock
        self.hold = timedelta(minutes=hold_minutes)
        self.zone = ZoneInfo(store.zone)

    async def freed(self, event_type_id: int | None, start: datetime | None) -> None:
        """A booking left this time (cancelled, or moved elsewhere): offer it to who waits."""
        now = self.clock()
        if event_type_id is None or start is None or start <= now:
            return
        await self.store.freed(slot_id(event_type_id, start), now)

    async def booked(self, conversation: str, event_type_id: int | None) -> None:
        """A client booked elsewhere (the salon's page, staff): their waits for that service
        end, as when they book in the chat."""
        if event_type_id is None:
            return
        try:
            listing = await self.catalogue.listing()
        except CalcomError:
            return  # the next look at the queue finds their waits; the offer can be declined
        service_key = listing.service_of.get(event_type_id)
        if service_key is not None:
            await self.store.booked_by(conversation, None, service_key)

    async def run(self, every: float) -> None:
        """Look every `every` seconds, and at once when a time is freed or declined here."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.wake.wait(), every)
            self.store.wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the waitlist could not look for offers: %s", type(exc).__name__)

    async def tick(self) -> None:
        now = self.clock()
        for offer_id in await self.store.due(now):
            await self._end(offer_id, now)
        for waiting in await self.store.expire(now.astimezone(self.zone).date()):
            body = {"kind": "expired", "wait": waiting.wait.id, "service": waiting.wait.service_key}
            await self._tell(waiting.conversation, f"expired:{waiting.wait.id}", body)
        for slot in await self.store.freed_by(now):
            await self._offer(slot, now)

    async def _end(self, offer_id: str, now: datetime) -> None:
        """A hold over (or declined): Cal.com's reservation goes back, the time to the next."""
        offered = await self.store.offer(offer_id)
        ended = await self.store.end(offer_id, now)
        if ended is None or offered is None:
            return
        log.info("waitlist: an offer ended (%s); the time goes to the next client", ended)
        await self._release(offered.held.reservation)
        if offered.held.start > now:
            await self.store.freed(offered.slot, now)

    async def _offer(self, slot: str, now: datetime) -> None:
        parsed = parse_slot(slot)
        if parsed is None:
            return
        event_type_id, start = parsed
        if start <= now:
            return
        try:
            listing = await self.catalogue.listing()
        except CalcomError:
            await self.store.freed(slot, now + RETRY)
            return
        service_key = listing.service_of.get(event_type_id)
        offers = listing.offers.get(service_key or "", ())
        offer = next((o for o in offers if o.event_type_id == event_type_id), None)
        if service_key is None or offer is None:
            return  # not a service the bot books (any more)
        suited = [
            w
            for w in await self.store.queue()
            if w.status == "waiting" and suits(w.wait, service_key, offer, start, self.zone)
        ]
        if not suited:
            return
        if await self._bookable(event_type_id, start, slot, now):
            for waiting in suited:
                if await self._claim(waiting, slot, service_key, offer, start, now):
                    return
        # Wanted, but not to be had just now (each client waiting has another offer out, or
        # Cal.com does not list it free at this moment): looked at again, until it starts.
        if now + RETRY < start:
            await self.store.freed(slot, now + RETRY)

    async def _bookable(
        self, event_type_id: int, start: datetime, slot: str, now: datetime
    ) -> bool:
        """Whether Cal.com lists the time as free: a reservation is refused only for a booking
        or a hold of the same event type (slots.service.ts, reserveSlot), while the master may
        be busy with another service then, or off work."""
        try:
            days = await self.client.slots(
                event_type_id, start, start + timedelta(minutes=1), self.store.zone
            )
        except CalcomError:
            return False  # looked at again (the caller queues it)
        return any(free.start == start for ranges in days.values() for free in ranges)

    async def _claim(
        self,
        waiting: Waiting,
        slot: str,
        service_key: str,
        offer: Offer,
        start: datetime,
        now: datetime,
    ) -> bool:
        """Offer the time to this wait; False when it cannot have it (then the next may)."""
        offer_id = uuid.uuid4().hex[:12]
        until = now + self.hold
        held = HeldTime(offer_id, waiting.wait.id, service_key, offer.master, start, until)
        if not await self.store.claim(waiting, slot, offer_id, held, until):
            return False
        minutes = int(self.hold.total_seconds() // 60)
        try:
            reservation = await self.client.reserve(
                offer.event_type_id, start, hold_minutes=minutes
            )
        except calcom.SlotTaken:
            # Booked or held by someone else meanwhile: not free, nobody is offered it.
            await self.store.end(offer_id, now, force=True)
            return True
        except CalcomError as exc:
            log.info("waitlist: Cal.com could not hold a freed time: %s", exc)
            await self.store.end(offer_id, now, force=True)
            await self.store.freed(slot, now + RETRY)
            return True
        if reservation is not None:
            until = min(until, reservation.until)
        await self.store.held(offer_id, reservation.uid if reservation else None, until)
        body = {"kind": "offer", "offer": offer_id}
        await self._tell(waiting.conversation, f"offer:{offer_id}", body)
        log.info("waitlist: a freed time is offered and held")
        return True

    async def _tell(self, conversation: str, event_id: str, body: dict[str, str]) -> None:
        raw = json.dumps(body).encode()
        await self.inbox.put(Event(SOURCE, event_id, conversation, raw))

    async def _release(self, reservation: str | None) -> None:
        if reservation is None:
            return
        try:
            await self.client.release(reservation)
        except CalcomError as exc:
            log.info("waitlist: a hold could not be given back (it expires by itself): %s", exc)
