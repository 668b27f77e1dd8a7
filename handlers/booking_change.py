"""A booking change as Frontdesk needs it, whichever way it came (Cal.com's webhook, or the
reconciliation that builds the same envelope from the API): read by handlers/calcom.py, which
handles it, and by handlers/calcom_novu.py, which plans Novu's calls for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.flows.notices import Notice, NoticeKind
from gateway.pipeline import instant

# The booking triggers Frontdesk acts on (Cal.com's `triggerEvent`).
CREATED = "BOOKING_CREATED"
RESCHEDULED = "BOOKING_RESCHEDULED"
CANCELLED = "BOOKING_CANCELLED"
REQUESTED = "BOOKING_REQUESTED"
REJECTED = "BOOKING_REJECTED"
NO_SHOW = "BOOKING_NO_SHOW_UPDATED"
NOTICE_KINDS = {
    CREATED: NoticeKind.CONFIRMED,
    RESCHEDULED: NoticeKind.MOVED,
    CANCELLED: NoticeKind.CANCELLED,
    REQUESTED: NoticeKind.REQUESTED,
    REJECTED: NoticeKind.REJECTED,
}


def text_of(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mapping_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class BookingChange:
    """A booking change as Frontdesk needs it, whichever way it came."""

    trigger: str
    uid: str
    start: datetime | None
    end: datetime | None
    service: str
    master: str | None = None
    name: str = ""
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    previous_uid: str | None = None
    previous_start: datetime | None = None
    reason: str | None = None
    no_show: bool = False
    # When Cal.com says the change happened (its envelope's createdAt; the reconciliation's
    # envelope carries the booking's updatedAt).
    at: datetime | None = None
    # The booking's event type (which service, and whose): what a freed time is offered as.
    # `payload.eventTypeId` of BOOKING_CREATED and BOOKING_CANCELLED alike (Cal.com's docs,
    # docs/developing/guides/automation/webhooks.mdx; contract §1.10); the reconciliation's
    # envelope carries it too.
    event_type_id: int | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> BookingChange:
        """Tolerant of missing fields and of unexpected types (read as absent)."""
        payload = body["payload"]
        attendees = [a for a in items_of(payload.get("attendees")) if isinstance(a, dict)]
        attendee = attendees[0] if attendees else {}
        answer = mapping_of(mapping_of(payload.get("responses")).get("attendeePhoneNumber"))
        phone = text_of(attendee.get("phoneNumber")) or text_of(answer.get("value"))
        language = text_of(mapping_of(attendee.get("language")).get("locale"))
        metadata = payload.get("metadata")
        return cls(
            trigger=str(body["triggerEvent"]),
            uid=str(payload.get("uid") or payload.get("bookingUid")),
            start=instant(payload.get("startTime")),
            end=instant(payload.get("endTime")),
            service=text_of(payload.get("eventTitle")) or text_of(payload.get("type")) or "",
            master=text_of(mapping_of(payload.get("organizer")).get("name")),
            name=text_of(attendee.get("name")) or "",
            email=text_of(attendee.get("email")),
            phone=phone,
            language=language,
            metadata=metadata if isinstance(metadata, dict) else {},
            previous_uid=text_of(payload.get("rescheduleUid")),
            previous_start=instant(payload.get("rescheduleStartTime")),
            reason=text_of(payload.get("cancellationReason"))
            or text_of(payload.get("rejectionReason")),
            no_show=any(bool(a.get("noShow")) for a in attendees),
            at=instant(body.get("createdAt")),
            event_type_id=_whole(payload.get("eventTypeId")),
        )

    def notice(self) -> Notice | None:
        kind = NOTICE_KINDS.get(self.trigger)
        if kind is None or self.start is None:
            return None
        return Notice(
            kind,
            self.uid,
            self.service,
            self.start,
            master=self.master,
            previous_uid=self.previous_uid,
            previous_start=self.previous_start,
            reason=self.reason,
        )
