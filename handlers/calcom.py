"""Cal.com: the webhook's edge rules, and what the worker does with a booking change.

The edge verifies `X-Cal-Signature-256` (lowercase hex HMAC-SHA256 of the raw body with the
webhook's secret; contract §1.10) before parsing, keeps the six booking triggers Frontdesk acts
on and de-duplicates each change by (trigger, uid, start): a redelivery, or the same change found
again by the reconciliation, is handled once. A change is queued under the client's own
conversation when the booking says whose it is (bookings made in the chat carry it in their
metadata), so that it is handled in order with the client's messages; otherwise under the
booking, and the worker looks the client up: by our own record of the booking (or of the one
it replaces), then by phone, then by email. A cancellation always goes that way:
handleCancelBooking sends no `metadata` and, in some versions, no attendee `phoneNumber`
(calcom/cal.com packages/features/bookings/lib/handleCancelBooking.ts @ 2446b58b).

The worker then:
- remembers whose booking it is, and the client's contact details for next time;
- tells Novu (subscriber, the workflow for the change, reminders before the visit, and the
  cancellation of reminders a move or cancellation makes wrong) - or, with Novu off, tells the
  client itself;
- keeps the client's list of visits ("My bookings") in step.
A change the client made in the chat was already answered there: the messenger gets nothing
more, but Novu still runs (reminders, email).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.events import Channel
from bot.flows.notices import Notice, NoticeKind
from bot.ports import Visit
from gateway.analytics import facts as analytics
from gateway.analytics.facts import Recorder
from gateway.integrations.calcom.api import Booking, CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.calcom.calendar import METADATA_CHANNEL, METADATA_CHAT
from gateway.integrations.calcom.waitlist_offers import WaitlistOffers
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.pipeline import (
    MAX_BODY,
    Conversation,
    Entry,
    Event,
    Identities,
    Inbox,
    Malformed,
    Outcome,
    Outgoing,
    entry_object,
    instant,
    load_object,
)
from handlers.booking_change import (
    CANCELLED,
    CREATED,
    NO_SHOW,
    REJECTED,
    REQUESTED,
    RESCHEDULED,
    BookingChange,
    items_of,
)
from handlers.calcom_novu import NovuPlanner
from handlers.channels import ADAPTERS
from handlers.notices import NoticeSender

log = logging.getLogger("frontdesk.calcom")

SOURCE = "calcom"
SIGNATURE_HEADER = "X-Cal-Signature-256"
TRIGGERS = frozenset({CREATED, RESCHEDULED, CANCELLED, REQUESTED, REJECTED, NO_SHOW})
# What each change is for the salon's analytics. A request becomes a booking only when the
# salon accepts it (Cal.com then sends BOOKING_CREATED); a rejection ends nothing booked.
FACTS = {
    CREATED: analytics.BOOKING_CREATED,
    RESCHEDULED: analytics.BOOKING_RESCHEDULED,
    CANCELLED: analytics.BOOKING_CANCELLED,
}
# The changes that page staff when the salon is closed (handlers/staff_notices.py). A request
# waits for the salon's answer: it is not booked until Cal.com sends BOOKING_CREATED.
OUT_OF_HOURS_CHANGES = {CREATED: "booked", RESCHEDULED: "moved", CANCELLED: "cancelled"}
# (change, the booking as a visit, the client's conversation or "", when it was made): the pages.
OutOfHoursPage = Callable[[str, Visit, str, datetime], tuple[Outgoing, ...]]
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class CalcomWebhook:
    """Edge rules for `POST /webhooks/calcom`."""

    name = SOURCE
    signed_body = True  # only an HMAC over the body authenticates it
    max_body = MAX_BODY

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        # Cal.com sends `no-secret-provided` when its webhook has no secret: refused here.
        return _HEX64.fullmatch(headers.get(SIGNATURE_HEADER, "")) is not None

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        expected = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, "").lower())

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        body = load_object(raw)
        if not isinstance(body.get("triggerEvent"), str):
            raise Malformed("no triggerEvent")
        trigger = body["triggerEvent"]
        if trigger not in TRIGGERS:
            return []  # meetings (flat payloads), recordings, forms: nothing for the desk
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise Malformed("no payload")
        event_id = change_id(trigger, payload)
        if event_id is None:
            raise Malformed("no booking uid")
        # What the worker will read must be readable: refused here, not retried there.
        BookingChange.parse(body)
        return [Event(SOURCE, event_id, conversation_for(payload), raw)]


def change_id(trigger: str, payload: dict[str, Any]) -> str | None:
    """Names one change of one booking, the same from the webhook and the reconciliation."""
    uid = payload.get("uid") or payload.get("bookingUid")
    if not isinstance(uid, str) or not uid:
        return None
    if trigger == NO_SHOW:
        marks = sorted(
            f"{a.get('email')}={bool(a.get('noShow'))}"
            for a in items_of(payload.get("attendees"))
            if isinstance(a, dict)
        )
        digest = hashlib.sha256("|".join(marks).encode()).hexdigest()[:16]
        return f"{trigger}:{uid}:{digest}"
    start = instant(payload.get("startTime"))
    stamp = str(int(start.timestamp())) if start else str(payload.get("iCalSequence", ""))
    return f"{trigger}:{uid}:{stamp}"


def conversation_for(payload: dict[str, Any]) -> str:
    metadata = payload.get("metadata")
    if isinstance(metadata, dict):
        channel, chat = metadata.get(METADATA_CHANNEL), metadata.get(METADATA_CHAT)
        if isinstance(channel, str) and channel in ADAPTERS and isinstance(chat, str):
            conv = Conversation.from_key(ADAPTERS[Channel(channel)].key(chat))
            if conv is not None:
                return conv.key
    return f"cal:{payload.get('uid') or payload.get('bookingUid')}"


class CalcomEvents:
    """The worker's handler for booking changes."""

    def __init__(
        self,
        links: BookingLinks,
        inbox: Inbox,
        notices: NoticeSender,
        planner: NovuPlanner | None,
        clock: Callable[[], datetime],
        recorder: Recorder | None = None,
        ledger: NoticeLedger | None = None,
        identities: Identities | None = None,
        waitlist: WaitlistOffers | None = None,
        slots_changed: Callable[[int | None], None] | None = None,
    ) -> None:
        # Told of each booking change's event type: the free slots kept of it are stale.
        self.slots_changed = slots_changed
        # Linked chats (one client across messengers) share one Novu subscriber.
        self.identities = identities
        self.recorder = recorder
        # Times a cancellation or a move frees are offered to waiting clients.
        self.waitlist = waitlist
        # Where the messenger notices Novu should post back are awaited (with Novu on).
        self.ledger = ledger
        self.links = links
        self.inbox = inbox
        self.notices = notices
        self.planner = planner
        self.clock = clock
        # Pages the salon's staff of a no-show (handlers/staff_notices.py), with Novu on.
        self.staff: Callable[[str, str], tuple[Outgoing, ...]] | None = None
        # Pages them of a change made on Cal.com's own page while the salon is closed.
        self.out_of_hours: OutOfHoursPage | None = None

    async def __call__(self, entry: Entry) -> Outcome:
        change = BookingChange.parse(entry_object(entry.body))
        if self.slots_changed is not None and change.trigger != NO_SHOW:
            # `payload.eventTypeId` (booking_change.py); None drops every event type's slots.
            self.slots_changed(change.event_type_id)
        conv = Conversation.from_key(entry.conversation)
        return await self._handle(entry, change, conv)

    async def _handle(
        self, entry: Entry, change: BookingChange, conv: Conversation | None
    ) -> Outcome:
        if conv is None:
            found = await self._owner(change)
            if found is not None:
                # A known client's booking made elsewhere: handled in their conversation, in
                # order with their messages (the inbox's de-duplication makes this once).
                await self.inbox.put(Event(SOURCE, f"fwd:{entry.event_id}", found, entry.body))
                return Outcome()
        if change.trigger == NO_SHOW:
            await self.links.save(change.uid, no_show="yes" if change.no_show else "no")
            log.info("no-show %s for a booking", "marked" if change.no_show else "cleared")
            if not change.no_show:
                return Outcome()
            owner = (await self.links.record(change.uid)).get("conversation", "")
            paged = self.staff(change.uid, owner) if self.staff is not None else ()
            return Outcome(paged, facts=self._facts(analytics.NO_SHOW, owner, change))
        record = await self.links.record(change.uid)
        start = change.start.isoformat() if change.start else ""
        told = record.get("status") == change.trigger and record.get("start") == start
        if told and record.get("entry") != entry.id:
            # Told already: the same change queued again (a late reconciliation, after the
            # inbox forgot its id). A retry of this very entry goes on.
            return Outcome()
        by_chat = await self._by_chat(change)
        if conv is not None and change.metadata.get(METADATA_CHAT):
            # The booking's own metadata vouches for whose it is: its contacts lead here.
            await self.links.link(conv.key, phone=change.phone, email=change.email)
        notice = await self._with_previous(change.notice())
        await self.links.save(
            change.uid,
            conversation=conv.key if conv else "",
            start=start,
            origin="chat" if by_chat else "calcom",
            status=change.trigger,
            entry=entry.id,
        )
        await self._waitlist(change, notice, conv)
        if notice is None:
            return Outcome()
        kind = FACTS.get(change.trigger)
        if change.trigger == REQUESTED and change.previous_uid:
            kind = analytics.BOOKING_RESCHEDULED  # a move reported as a request (#21169)
        facts = self._facts(kind, conv.key if conv else "", change, by_chat) if kind else ()
        outcome = await self._tell(entry, change, notice, conv, by_chat)
        paged = () if by_chat else self._page_out_of_hours(change, conv)
        return replace(
            outcome, outgoing=(*outcome.outgoing, *paged), facts=(*facts, *outcome.facts)
        )

    def _page_out_of_hours(
        self, change: BookingChange, conv: Conversation | None
    ) -> tuple[Outgoing, ...]:
        """Staff hear of a booking made, moved or cancelled on Cal.com's own page while the
        salon is closed (a change the chat made was paged with its turn: not here)."""
        what = OUT_OF_HOURS_CHANGES.get(change.trigger)
        if self.out_of_hours is None or what is None or change.start is None:
            return ()
        # When it happened: the envelope's createdAt, stamped as Cal.com makes the change
        # (`sendPayload(secret, trigger, new Date().toISOString(), ...)`, calcom/cal.com
        # packages/features/bookings/lib/handleCancelBooking.ts @ 001f8e29; contract §1.10),
        # not when it reached us (a retry); the reconciliation's envelope: the updatedAt.
        now = self.clock()
        at = change.at if change.at is not None and change.at <= now else now
        visit = Visit(change.uid, change.service, change.start, change.end or change.start)
        return self.out_of_hours(what, visit, conv.key if conv else "", at)

    async def _waitlist(
        self, change: BookingChange, notice: Notice | None, conv: Conversation | None
    ) -> None:
        """The time a cancellation, or a move away from it, leaves free: for the waitlist. A
        known client's new booking ends their waits for its service."""
        if self.waitlist is None:
            return
        if change.trigger == CREATED and conv is not None:
            await self.waitlist.booked(conv.key, change.event_type_id)
        elif change.trigger == CANCELLED:
            await self.waitlist.freed(change.event_type_id, change.start)
        elif change.previous_uid and change.trigger in (RESCHEDULED, REQUESTED):
            before = notice.previous_start if notice is not None else change.previous_start
            await self.waitlist.freed(change.event_type_id, before)

    def _facts(
        self, kind: str, conversation: str, change: BookingChange, by_chat: bool = False
    ) -> tuple[dict[str, Any], ...]:
        """The change for the salon's analytics (nothing when analytics is off)."""
        if self.recorder is None:
            return ()
        # Counted on the day it happened, also when found late by the reconciliation.
        at = change.at if change.at is not None and change.at <= self.clock() else self.clock()
        if kind == analytics.NO_SHOW or change.start is None:  # one per change of marks
            fact = self.recorder.fact(kind, conversation, at, booking=change.uid)
            return (fact,)
        # Under the change's own name: a booking the chat made, already counted as it was
        # made, is not counted again.
        fact = self.recorder.booking_fact(
            kind,
            conversation,
            at,
            booking=change.uid,
            start=change.start,
            origin="chat" if by_chat else "calcom",
            service=change.service,
            master=change.master,
            previous_booking=change.previous_uid,
        )
        return (fact,)

    async def _tell(
        self,
        entry: Entry,
        change: BookingChange,
        notice: Notice,
        conv: Conversation | None,
        by_chat: bool,
    ) -> Outcome:
        now = self.clock()
        ended = change.end is not None and change.end <= now
        if self.planner is not None:
            outcome = Outcome()
            if conv is not None:
                # "My bookings" knows the visit at once; the messenger hears of it from Novu.
                outcome = await self.notices.remember(conv, notice)
            if ended:
                return outcome
            locale = await self._locale(conv, change)
            stale = await self._scheduled(notice)
            # One client, one subscriber: a linked chat's is its link's anchor's.
            anchor = conv
            if conv is not None and self.identities is not None:
                anchor = await self.identities.anchor(conv)
            planned = self.planner.plan(
                change, notice, conv, locale, by_chat=by_chat, now=now, stale=stale, anchor=anchor
            )
            planned = [self._failing(message, conv, now) for message in planned]
            if self.ledger is not None:
                await self.planner.await_posts(self.ledger, planned, now)
            reminders = self.planner.reminders_in(planned)
            if reminders:
                await self.links.save(change.uid, reminders=" ".join(reminders))
            return Outcome(
                outgoing=(*outcome.outgoing, *planned),
                session_key=outcome.session_key,
                session=outcome.session,
                session_ttl=outcome.session_ttl,
            )
        if conv is None or by_chat or ended:
            return Outcome()
        return await self.notices.send(conv, notice, f"cal:{entry.event_id}", now)

    def _failing(self, message: Outgoing, conv: Conversation | None, now: datetime) -> Outgoing:
        """A trigger Novu never takes (dead-lettered) is a notification that never went: the
        outbox records it as failed, once per transaction."""
        if self.recorder is None or message.method != "trigger":
            return message
        payload = message.params.get("payload", {})
        if payload.get("messenger") != "yes":
            return message  # the client was told in the chat; this is Novu's email copy
        if self.ledger is not None and payload.get("conversation"):
            return message  # the gateway's ledger sends it to the messenger all the same
        transaction = str(message.params.get("transactionId", ""))
        failure = self.recorder.failed_notice(
            f"novu-failed:{transaction}",
            conv.key if conv is not None else "",
            now,
            booking=payload.get("bookingUid"),
            notice=payload.get("kind"),
        )
        return replace(message, failure=failure)

    async def _owner(self, change: BookingChange) -> str | None:
        """Whose booking this is: the conversation on record for it (or for the booking it
        replaces), else the client with its phone, else its email."""
        for uid in (change.uid, change.previous_uid):
            if uid:
                known = (await self.links.record(uid)).get("conversation")
                if known and Conversation.from_key(known) is not None:
                    return known
        found = await self.links.find(phone=change.phone, email=change.email)
        return found if found is not None and Conversation.from_key(found) else None

    async def _with_previous(self, notice: Notice | None) -> Notice | None:
        """A move whose old time the payload does not give (the reconciliation's, or Cal.com
        reporting a move as a request, #21169) takes it from our record."""
        if notice is None or not notice.previous_uid or notice.previous_start is not None:
            return notice
        known = (await self.links.record(notice.previous_uid)).get("start")
        if not known:
            return notice
        return replace(notice, previous_start=datetime.fromisoformat(known))

    async def _scheduled(self, notice: Notice) -> list[str]:
        """The reminders planned for the bookings this change makes wrong, as recorded (the
        offsets may have changed since)."""
        gone = [notice.previous_uid] if notice.previous_uid else []
        if notice.kind in (NoticeKind.CANCELLED, NoticeKind.REJECTED):
            gone.append(notice.uid)
        found: list[str] = []
        for uid in gone:
            found += (await self.links.record(uid)).get("reminders", "").split()
        return found

    async def _by_chat(self, change: BookingChange) -> bool:
        """Whether the client made this change in the chat (and was answered there)."""
        if change.trigger in (CREATED, REQUESTED):
            return bool(change.metadata.get(METADATA_CHAT))
        if change.trigger == RESCHEDULED:
            return await self.links.changed_in_chat(change.previous_uid or change.uid)
        if change.trigger == CANCELLED:
            return await self.links.changed_in_chat(change.uid)
        return False

    async def _locale(self, conv: Conversation | None, change: BookingChange) -> str:
        catalogs = self.notices.catalogs
        if conv is not None:
            session = await self.notices.sessions.load(self.notices.client(conv))
            return catalogs.resolve(session.locale, change.language)
        return catalogs.resolve(None, change.language)


# --- reconciliation ---------------------------------------------------------------------------


def envelope_of(booking: Booking) -> dict[str, Any] | None:
    """A booking read from the API as the webhook that should have told of its last change;
    None for the old half of a move (its successor tells of it)."""
    status = booking.status
    if status == "cancelled" and booking.rescheduled_to_uid:
        return None
    if status == "accepted":
        trigger = RESCHEDULED if booking.rescheduled_from_uid else CREATED
    else:
        trigger = {"cancelled": CANCELLED, "pending": REQUESTED, "rejected": REJECTED}.get(
            status, ""
        )
    if not trigger:
        return None
    attendee = booking.attendees[0] if booking.attendees else None
    person: dict[str, Any] = {}
    if attendee is not None:
        person = {
            "name": attendee.name,
            "email": attendee.email,
            "timeZone": attendee.time_zone,
            "language": {"locale": attendee.language},
        }
        if attendee.phone_number:
            person["phoneNumber"] = attendee.phone_number
    payload: dict[str, Any] = {
        "uid": booking.uid,
        "bookingId": booking.id,
        "startTime": _iso(booking.start),
        "endTime": _iso(booking.end),
        "eventTitle": booking.title.split(" between ")[0] if booking.title else "",
        "eventTypeId": booking.event_type_id,
        "organizer": {"name": booking.hosts[0].name} if booking.hosts else {},
        "attendees": [person] if person else [],
        "metadata": booking.metadata,
        "status": status.upper(),
        "cancellationReason": booking.cancellation_reason,
    }
    if booking.rescheduled_from_uid:
        payload["rescheduleUid"] = booking.rescheduled_from_uid
    return {"triggerEvent": trigger, "createdAt": _iso(booking.updated_at), "payload": payload}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


async def reconcile(
    client: CalcomClient,
    links: BookingLinks,
    inbox: Inbox,
    now: datetime,
    lookback: timedelta = timedelta(hours=24),
) -> int:
    """Queue the changes of recently updated bookings whose webhook never came. The change ids
    are the webhook's own, so the inbox's de-duplication makes this exactly once with the
    webhook path. Returns how many were missing.

    The first run reads back `lookback` (CALCOM_RECONCILE_LOOKBACK_HOURS): changes made before
    it, while no webhook was set up or the gateway was starting, are found too; older ones,
    the salon's bookings from before then, are left alone."""
    since = await links.cursor()
    if since is None:
        since = now - lookback
        await links.move_cursor(since)
    # New bookings by creation time too: `updatedAt` may stay empty until a first update.
    changed = await client.bookings(after_updated_at=since, max_items=1000)
    created = await client.bookings(after_created_at=since, max_items=1000)
    bookings = list({b.uid: b for b in (*created, *changed)}.values())
    found = 0
    newest = since
    for booking in bookings:
        for stamp in (booking.updated_at, booking.created_at):
            if stamp is not None:
                newest = max(newest, stamp)
        envelope = envelope_of(booking)
        if envelope is None:
            continue
        payload = envelope["payload"]
        event_id = change_id(envelope["triggerEvent"], payload)
        assert event_id is not None  # the uid is always there
        raw = json.dumps(envelope, ensure_ascii=False).encode()
        if await inbox.put(Event(SOURCE, event_id, conversation_for(payload), raw)):
            found += 1
            log.warning("a booking change whose webhook never came was recovered")
    if newest > since:
        # A little overlap: updates stamped in the same instant as the newest are read again
        # (and recognised as handled).
        await links.move_cursor(newest - timedelta(seconds=1))
    return found
