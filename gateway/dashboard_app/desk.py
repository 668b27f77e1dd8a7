"""What staff do from the Dashboard App: open it on a conversation (checked against Chatwoot),
see the client's visits and the free times, and propose up to three of them.

Nothing here writes the client's session: the proposal is stored on its own and the message to
the client is queued for the worker that owns their conversation (source "dashboard",
handlers/dashboard_app.py), which sends it and leaves a private note for staff.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.events import Channel, ClientRef
from bot.flows.proposal import MAX_SLOTS, Proposal, ProposedSlot
from bot.local_time import format_label, local_day_window
from bot.ports import CalendarUnavailable, Visit
from gateway.dashboard_app import tokens
from gateway.dashboard_app.agents import Refused, conversation, get, opener, whole
from gateway.dashboard_app.proposals import HOLD_MINUTES, RedisProposals
from gateway.integrations.calcom import api as calcom
from gateway.integrations.calcom.calendar import CalcomCalendar
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.inbox import Event, Inbox
from gateway.pipeline.sessions import SessionStore

SOURCE = "dashboard"


@dataclass
class StaffDesk:
    salon_id: str
    zone: ZoneInfo
    secret: bytes
    calendar: CalcomCalendar
    chatwoot: ChatwootClient
    sessions: SessionStore
    proposals: RedisProposals
    inbox: Inbox
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # The origin of the salon's Chatwoot (CHATWOOT_URL): the page reads Chatwoot's context
    # only from a window of that origin.
    chatwoot_origin: str = ""

    # --- opening the app on a conversation ---------------------------------------------------

    async def open(self, context: dict[str, Any]) -> dict[str, Any]:
        """Chatwoot's `appContext` (conversation, contact, currentAgent), checked against
        Chatwoot itself (agents.py): the staff token for this conversation and agent, and what
        to show."""
        found = await opener(self.chatwoot, context)
        conv = Conversation.from_key(
            str(get(found.conversation, "contact_inbox", "source_id") or "")
        )
        if conv is None:
            raise Refused(422, "this conversation is not one of the bot's clients")
        claims = {
            "conv": conv.key,
            "cw": found.conversation_id,
            "agent": found.agent_id,
            "name": found.name,
        }
        token = tokens.issue(self.secret, tokens.STAFF, claims, time.time())
        overview = await self.overview(claims)
        return {"token": token, "agent": found.name, "agent_id": found.agent_id, **overview}

    # --- what the app shows ------------------------------------------------------------------

    async def overview(self, claims: dict[str, Any]) -> dict[str, Any]:
        client = self.client(claims)
        session = await self.sessions.load(client)
        try:
            listing = await self.calendar.catalogue.listing()
            visits = [await self.calendar.visit(uid) for uid in session.bookings[-10:]]
        except CalendarUnavailable as exc:
            raise Refused(503, "the calendar cannot be reached now") from exc
        now = self.clock()
        services = [
            {
                "key": service.key,
                "title": service.title,
                "masters": [
                    {"id": offer.master, "name": listing.names.get(offer.master, "")}
                    for offer in listing.offers.get(service.key, ())
                    if offer.master is not None
                ],
            }
            for service in listing.services
        ]
        upcoming = [v for v in visits if v is not None and v.active and v.end > now]
        return {"services": services, "visits": [self._visit(v) for v in upcoming]}

    def _visit(self, visit: Visit) -> dict[str, Any]:
        return {
            "uid": visit.uid,
            "service": visit.service,
            "master": visit.master,
            "start": visit.start.isoformat(),
            "label": format_label(visit.start, self.zone, "en"),
        }

    async def slots(self, service: str, master: int | None, day: str) -> list[dict[str, Any]]:
        try:
            wanted = date.fromisoformat(day)
        except ValueError as exc:
            raise Refused(400, "day must be YYYY-MM-DD") from exc
        today = self.clock().astimezone(self.zone).date()
        if not today <= wanted <= today + timedelta(days=90):
            raise Refused(400, "day must be within the next 90 days")
        start, end = local_day_window(wanted, self.zone)
        try:
            if service not in {s.key for s in await self.calendar.services()}:
                raise Refused(404, "no such service")
            free = await self.calendar.slots(service, master, max(start, self.clock()), end)
            names = (await self.calendar.catalogue.listing()).names
        except CalendarUnavailable as exc:
            raise Refused(503, "the calendar cannot be reached now") from exc
        return [
            {
                "start": slot.start.isoformat(),
                "master_id": slot.master_id,
                "master": names.get(slot.master_id or -1),
                "label": format_label(slot.start, self.zone, "en"),
            }
            for slot in free
        ]

    # --- proposing ---------------------------------------------------------------------------

    async def propose(self, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        service, picks = body.get("service"), body.get("slots")
        if not isinstance(service, str) or not isinstance(picks, list):
            raise Refused(400, "send a service and the slots")
        if not 1 <= len(picks) <= MAX_SLOTS:
            raise Refused(400, f"propose one to {MAX_SLOTS} times")
        chosen = [_pick(pick) for pick in picks]
        if len({start for start, _master in chosen}) != len(chosen):
            raise Refused(400, "the same time twice")
        client = self.client(claims)
        try:
            titles = {s.key: s.title for s in await self.calendar.services()}
            if service not in titles:
                raise Refused(404, "no such service")
            details = await self.details(client, int(claims["cw"]))
            held = await self._hold_anew(client, service, chosen)
        except CalendarUnavailable as exc:
            raise Refused(503, "the calendar cannot be reached now") from exc
        proposal = Proposal(
            id=secrets.token_hex(4),
            service_key=service,
            service=titles[service],
            slots=held,
            until=self.clock() + timedelta(minutes=HOLD_MINUTES),
            staff=str(claims["name"]),
            **details,
        )
        await self.proposals.save(client, proposal)
        body_out = {"kind": "propose", "proposal": proposal.model_dump(mode="json")}
        event = Event(SOURCE, f"propose:{proposal.id}", str(claims["conv"]), _json(body_out))
        await self.inbox.put(event)
        return {"proposal": proposal.id, "until": proposal.until.isoformat()}

    async def details(self, client: ClientRef, conversation_id: int) -> dict[str, Any]:
        """Who the booking is for: the client's details in their session, else the help
        desk's contact; a calendar booking needs a phone or an email."""
        session = await self.sessions.load(client)
        sender = get(await conversation(self.chatwoot, conversation_id), "meta", "sender") or {}
        # What they gave in the chat (a booking in progress included: read, not changed).
        draft = session.draft
        phone = session.phone or (draft.phone if draft else None) or sender.get("phone_number")
        email = session.email or (draft.email if draft else None) or sender.get("email")
        if not (phone or email):
            raise Refused(422, "the client has given no phone or email yet: ask for one first")
        name = session.name or (draft.name if draft else "") or str(sender.get("name") or "")
        phone, email = phone or None, email or None
        return {"name": name or "Client", "phone": phone, "email": email}

    async def free_at(
        self, service: str, master: int | None, start: datetime, moving: str | None = None
    ) -> bool:
        """Whether `start` is a free time of the service (and master) now; `moving`: the
        booking being moved, whose own time counts as free."""
        if start <= self.clock():
            return False
        day_start, day_end = local_day_window(start.astimezone(self.zone).date(), self.zone)
        free = await self.calendar.slots(service, master, day_start, day_end, reschedule_uid=moving)
        return any(slot.start == start for slot in free)

    async def _hold_anew(
        self, client: ClientRef, service: str, chosen: list[tuple[datetime, int | None]]
    ) -> list[ProposedSlot]:
        """The client's open proposal is settled first (its holds given back, so staff may
        propose the same times again), then the new times held; should they not be, the open
        proposal is held and kept again as it was."""
        previous = await self.proposals.current(client)
        if previous is not None:
            await self.proposals.settle(client, previous, None)
        try:
            return await self._hold(service, chosen)
        except (Refused, CalendarUnavailable):
            if previous is not None:
                await self._restore(client, previous)
            raise

    async def _restore(self, client: ClientRef, previous: Proposal) -> None:
        picks = [(slot.start, slot.master_id) for slot in previous.slots]
        try:
            held = await self._hold(previous.service_key, picks)
        except (Refused, CalendarUnavailable):
            return  # its times are gone meanwhile: the client's buttons say so
        await self.proposals.save(client, previous.model_copy(update={"slots": held}))

    async def _hold(
        self, service: str, chosen: list[tuple[datetime, int | None]]
    ) -> list[ProposedSlot]:
        """Each time checked free, then held for the client; none held if one cannot be."""
        listing = await self.calendar.catalogue.listing()
        found: list[tuple[datetime, int | None, int | None, int]] = []
        for start, master in chosen:
            day_start, day_end = local_day_window(start.astimezone(self.zone).date(), self.zone)
            free = await self.calendar.slots(service, master, day_start, day_end)
            slot = next((s for s in free if s.start == start), None)
            offer = self.calendar._offer_for(listing, service, master)
            if slot is None or offer is None or start <= self.clock():
                raise Refused(409, f"{start.isoformat()} is not free now")
            found.append((start, master, slot.master_id, offer.event_type_id))
        held: list[ProposedSlot] = []
        try:
            for start, master, master_id, event_type in found:
                reserved = await self._reserve(event_type, start)
                name = listing.names.get(master if master is not None else master_id or -1)
                held.append(ProposedSlot(start=start, master_id=master, master=name))
                held[-1].reservation = reserved
        except (Refused, CalendarUnavailable):
            for slot_held in held:
                if slot_held.reservation is not None:
                    await self.proposals.release(slot_held.reservation)
            raise
        return held

    async def _reserve(self, event_type: int, start: datetime) -> str | None:
        try:
            reserved = await self.calendar.client.reserve(
                event_type, start, hold_minutes=HOLD_MINUTES
            )
        except calcom.SlotTaken as exc:
            raise Refused(409, f"{start.isoformat()} was just taken") from exc
        except calcom.CalcomError as exc:
            raise CalendarUnavailable(str(exc)) from exc
        return reserved.uid if reserved is not None else None

    def client(self, claims: dict[str, Any]) -> ClientRef:
        conv = Conversation.from_key(str(claims.get("conv", "")))
        if conv is None:
            raise Refused(403, "the token names no client")
        return ClientRef(self.salon_id, Channel(conv.channel), conv.chat, conv.chat)


def _pick(pick: Any) -> tuple[datetime, int | None]:
    if not isinstance(pick, dict):
        raise Refused(400, "each slot is {start, master_id}")
    try:
        start = datetime.fromisoformat(str(pick.get("start")))
        if start.tzinfo is None:
            raise Refused(400, "a slot's start needs its offset")
        # "9999-12-31T23:00-05:00" is past the last datetime in UTC: OverflowError.
        utc = start.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Refused(400, "a slot's start is not an ISO time") from exc
    master = pick.get("master_id")
    if master is not None and whole(master) is None:
        raise Refused(400, "master_id must be a whole number")
    return utc, whole(master)


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
