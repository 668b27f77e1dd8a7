"""What the salon's analytics record: facts, as handlers see things happen.

A fact is a small record (kind, when, which channel, which client under a salted hash, and a
few fields such as a booking flow step or a handoff reason). Handlers put them in their
`Outcome`; the worker queues them in Redis in the same commit as the rest of the handling, and
the writer (gateway/analytics/store.py) batches them into PostgreSQL. So recording never slows
a conversation, and a fact is queued exactly once whatever retries the handling took.

Never in a fact: message text, names, phone numbers, emails. Clients appear as
`sha256(ANALYTICS_SALT:salon:conversation)`, cut to 24 hex digits.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.events import Inbound, Kind
from bot.flows import booking
from bot.flows.turn import Turn
from bot.session import Session

# The kinds of fact, as stored in `events.kind`.
STARTED = "conversation_started"
STEP = "step_reached"
# The client entered the booking flow with a new booking: a tap on Book, a request typed in
# words (which may skip `book.service`: "хочу на маникюр в четверг"), a waitlist offer taken.
# What "started a booking" means in the conversion and the funnel (README, "Analytics").
BOOKING_STARTED = "booking_started"
BOOKING_CREATED = "booking_created"
BOOKING_RESCHEDULED = "booking_rescheduled"
BOOKING_CANCELLED = "booking_cancelled"
HANDOFF = "handoff_requested"
FIRST_REPLY = "agent_first_reply"
RESOLVED = "handoff_resolved"
RETURNED = "returned_to_bot"
NOTIFIED = "notification_sent"
NOTIFY_FAILED = "notification_failed"  # recorded by the outbox when a notice is dead-lettered
REMINDER_ANSWERED = "reminder_answered"
NO_SHOW = "no_show_marked"
# The waitlist (bot/flows/waitlist.py): a client joined, was offered a freed time, booked one,
# or their wait reached its last day.
WAITLIST_JOINED = "waitlist_joined"
WAITLIST_OFFERED = "waitlist_offered"
WAITLIST_BOOKED = "waitlist_booked"
WAITLIST_EXPIRED = "waitlist_expired"

# The booking flow's steps the funnel counts.
FUNNEL_STEPS = frozenset(booking.STEPS)
ANSWERS = {"k:y:": "coming", "k:r:": "reschedule", "k:c:": "cancel"}


def channel_of(conversation: str) -> str:
    return {"tg": "telegram", "wa": "whatsapp"}.get(conversation.partition(":")[0], "")


class Recorder:
    """Makes facts for one salon; the only place that sees the salt."""

    def __init__(self, salon_id: str, salt: str, zone: str, idle: timedelta) -> None:
        self.salon_id = salon_id
        self._salt = salt
        self.zone = ZoneInfo(zone)
        self.idle = idle

    def local(self, moment: datetime) -> str:
        """A moment on the salon's clock (what days and hours are counted by)."""
        return moment.astimezone(self.zone).replace(tzinfo=None).isoformat()

    def client(self, conversation: str) -> str:
        raw = f"{self._salt}:{self.salon_id}:{conversation}".encode()
        return hashlib.sha256(raw).hexdigest()[:24]

    def fact(self, kind: str, conversation: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "salon": self.salon_id,
            "at": at.isoformat(),
            "local_at": self.local(at),
            "channel": channel_of(conversation),
            "client": self.client(conversation) if conversation else "",
            **{name: value for name, value in fields.items() if value not in (None, "")},
        }

    def booking_fact(
        self,
        kind: str,
        conversation: str,
        at: datetime,
        *,
        booking: str,
        start: datetime,
        origin: str,
        service: str | None,
        master: str | None,
        previous_booking: str | None,
    ) -> dict[str, Any]:
        """A booking made, moved or cancelled. Its id `<salon>:<kind>:<uid>:<start>` names the
        change itself: the chat records it as it books, Cal.com's webhook or the
        reconciliation when they tell of it, and whichever comes first is the one counted."""
        name = f"{self.salon_id}:{kind}:{booking}:{int(start.timestamp())}"
        fact = self.fact(
            kind,
            conversation,
            at,
            booking=booking,
            origin=origin,
            service=service,
            master=master,
            starts_at=self.local(start),
            previous_booking=previous_booking,
        )
        return {"id": name, **fact}

    def failed_notice(
        self,
        name: str,
        conversation: str,
        at: datetime,
        *,
        booking: Any,
        notice: Any,
        starts_at: datetime | None = None,
    ) -> str:
        """The notification_failed fact an outgoing notice carries (`Outgoing.failure`), for the
        outbox to record should the notice die. Its id `<salon>:<name>` names the notice, so a
        dead letter replayed and failing again is still counted once. The visit's start also
        tells the staff page which visit the client did not hear about (staff_pages.py)."""
        start = self.local(starts_at) if starts_at is not None else None
        fact = self.fact(
            NOTIFY_FAILED, conversation, at, booking=booking, notice=notice, starts_at=start
        )
        return json.dumps({"id": f"{self.salon_id}:{name}", **fact}, separators=(",", ":"))

    def of_turn(
        self, conversation: str, before: Session, turn: Turn, event: Inbound, now: datetime
    ) -> tuple[dict[str, Any], ...]:
        """The facts of one turn of the client's (a message or a tap)."""
        facts = []
        if event.kind not in (Kind.TAKEOVER, Kind.RETURNED) and (
            before.last_seen is None or now - before.last_seen > self.idle
        ):
            facts.append(self.fact(STARTED, conversation, now))
        step = turn.session.step
        if self._started_booking(before, turn):
            entry = step if step in FUNNEL_STEPS else None
            facts.append(self.fact(BOOKING_STARTED, conversation, now, step=entry))
        if step != before.step and step in FUNNEL_STEPS:
            facts.append(self.fact(STEP, conversation, now, step=step))
        if turn.handoff is not None:
            facts.append(self.fact(HANDOFF, conversation, now, reason=turn.handoff.reason))
        if turn.booked is not None:
            visit = turn.booked
            facts.append(
                self.booking_fact(
                    BOOKING_RESCHEDULED if turn.replaced else BOOKING_CREATED,
                    conversation,
                    now,
                    booking=visit.uid,
                    start=visit.start,
                    origin="chat",
                    service=visit.service,
                    master=visit.master,
                    previous_booking=turn.replaced,
                )
            )
        if turn.waitlist == "joined":
            facts.append(self.fact(WAITLIST_JOINED, conversation, now, service=turn.waited))
        if turn.waitlist == "booked" and turn.booked is not None:
            visit = turn.booked
            facts.append(
                self.fact(
                    WAITLIST_BOOKED,
                    conversation,
                    now,
                    booking=visit.uid,
                    service=visit.service_key,
                    starts_at=self.local(visit.start),
                )
            )
        if event.kind is Kind.CHOICE:
            for prefix, answer in ANSWERS.items():
                uid = event.choice.removeprefix(prefix)
                if event.choice.startswith(prefix) and uid in before.reminded:
                    facts.append(
                        self.fact(REMINDER_ANSWERED, conversation, now, booking=uid, answer=answer)
                    )
        return tuple(facts)

    @staticmethod
    def _started_booking(before: Session, turn: Turn) -> bool:
        """Whether this turn began a new booking: a draft of its own (not a move of a visit,
        not the same draft picked up again), or a booking made at once without one (a waitlist
        offer taken when the client's details were known)."""
        was, draft = before.draft, turn.session.draft
        if draft is not None:
            return draft.reschedule is None and (was is None or was.id != draft.id)
        return turn.booked is not None and turn.replaced is None and was is None
