"""Cal.com's webhook at the edge, and booking changes read from it or from the API."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.integrations.calcom.api import Booking
from gateway.pipeline.edge import Malformed
from handlers.calcom import (
    BookingChange,
    CalcomWebhook,
    change_id,
    conversation_for,
    envelope_of,
)

SECRET = "cal-secret"
JSON = dict[str, Any]


def created(**payload: Any) -> JSON:
    body: JSON = {
        "triggerEvent": "BOOKING_CREATED",
        "createdAt": "2026-06-01T07:00:05.123Z",
        "payload": {
            "uid": "6Kfwv6VsmCYKEBaQzuWfZg",
            "eventTitle": "Manicure",
            "type": "manicure",
            "startTime": "2026-06-10T07:00:00Z",
            "endTime": "2026-06-10T08:00:00Z",
            "organizer": {"name": "Maria Ivanova", "timeZone": "Europe/Moscow"},
            "attendees": [
                {
                    "name": "Anna K.",
                    "email": "anna@example.com",
                    "timeZone": "Europe/Moscow",
                    "language": {"locale": "ru"},
                }
            ],
            "responses": {"attendeePhoneNumber": {"value": "+79161234567"}},
            "metadata": {},
            "status": "ACCEPTED",
        },
    }
    body["payload"] |= payload
    return body


def signed(body: JSON | bytes) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Cal-Signature-256": signature}, raw


def test_the_signature_is_checked_on_the_raw_bytes() -> None:
    edge = CalcomWebhook(SECRET)
    headers, raw = signed(created())
    assert edge.authenticate(headers)
    assert edge.verify(headers, raw)
    assert edge.verify({"X-Cal-Signature-256": headers["X-Cal-Signature-256"].upper()}, raw)
    assert not edge.verify(headers, raw.replace(b"Anna", b"Eve "))
    assert not edge.authenticate({"X-Cal-Signature-256": "no-secret-provided"})
    assert not edge.authenticate({})


def test_changes_are_queued_by_whose_booking_it_is() -> None:
    edge = CalcomWebhook(SECRET)
    headers, raw = signed(created())
    [event] = edge.parse(headers, raw)
    assert event.event_id == "BOOKING_CREATED:6Kfwv6VsmCYKEBaQzuWfZg:1781074800"
    assert event.conversation == "cal:6Kfwv6VsmCYKEBaQzuWfZg"
    mine = created(metadata={"frontdesk_channel": "whatsapp", "frontdesk_chat": "79161234567"})
    [event] = edge.parse(*signed(mine))
    assert event.conversation == "wa:79161234567"
    # Cancelled prints its times with +00:00: the same instant, the same id.
    cancelled = created(startTime="2026-06-10T07:00:00+00:00")
    cancelled["triggerEvent"] = "BOOKING_CANCELLED"
    [event] = edge.parse(*signed(cancelled))
    assert event.event_id == "BOOKING_CANCELLED:6Kfwv6VsmCYKEBaQzuWfZg:1781074800"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{nope", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"triggerEvent": "BOOKING_CREATED"}', "no payload"),
        (b'{"triggerEvent": "BOOKING_CREATED", "payload": {}}', "no booking uid"),
    ],
)
def test_malformed_bodies_are_refused(raw: bytes, problem: str) -> None:
    with pytest.raises(Malformed, match=problem):
        CalcomWebhook(SECRET).parse(*signed(raw))


def test_other_triggers_are_acknowledged_and_ignored() -> None:
    meeting = {"triggerEvent": "MEETING_ENDED", "payload": {"uid": "x"}}
    assert CalcomWebhook(SECRET).parse(*signed(meeting)) == []
    # MEETING_STARTED comes flat, without `payload` (§1.10): still nothing to do, not a 400.
    assert (
        CalcomWebhook(SECRET).parse(*signed({"triggerEvent": "MEETING_STARTED", "uid": "x"})) == []
    )


def test_fields_of_an_unexpected_type_are_read_as_absent() -> None:
    odd = created(
        organizer="Maria",
        attendees=[{"name": 5, "email": ["a@b.c"], "language": "ru", "phoneNumber": 7}],
        responses={"attendeePhoneNumber": "+79161234567"},
        eventTitle=None,
    )
    assert len(CalcomWebhook(SECRET).parse(*signed(odd))) == 1  # accepted, not a 400
    change = BookingChange.parse(odd)
    assert (change.master, change.name, change.email, change.phone) == (None, "", None, None)
    assert change.language is None
    assert change.service == "manicure"


def test_a_change_reads_every_field_frontdesk_needs() -> None:
    moved = created(rescheduleUid="old", rescheduleStartTime="2026-06-09T07:00:00Z")
    moved["triggerEvent"] = "BOOKING_RESCHEDULED"
    change = BookingChange.parse(moved)
    assert change.service == "Manicure"
    assert change.master == "Maria Ivanova"
    assert change.phone == "+79161234567"  # from the booking form when the attendee has none
    assert change.language == "ru"
    assert change.previous_uid == "old"
    assert change.previous_start == datetime(2026, 6, 9, 7, 0, tzinfo=UTC)
    notice = change.notice()
    assert notice is not None
    assert notice.kind.value == "moved"
    absent = {
        "triggerEvent": "BOOKING_NO_SHOW_UPDATED",
        "payload": {"bookingUid": "u1", "attendees": [{"email": "a@b.c", "noShow": True}]},
    }
    change = BookingChange.parse(absent)
    assert change.no_show
    assert change.notice() is None
    first = change_id("BOOKING_NO_SHOW_UPDATED", absent["payload"])
    absent["payload"]["attendees"][0]["noShow"] = False
    assert change_id("BOOKING_NO_SHOW_UPDATED", absent["payload"]) != first


def booking(**fields: Any) -> Booking:
    data: JSON = {
        "id": 7,
        "uid": "u7",
        "title": "Manicure between Maria Ivanova and Anna K.",
        "status": "accepted",
        "start": "2026-06-10T07:00:00.000Z",
        "end": "2026-06-10T08:00:00.000Z",
        "hosts": [{"id": 1, "name": "Maria Ivanova"}],
        "attendees": [
            {"name": "Anna K.", "email": "a@b.c", "timeZone": "Europe/Moscow", "language": "ru"}
        ],
        "metadata": {"frontdesk_channel": "telegram", "frontdesk_chat": "42"},
        "updatedAt": "2026-06-01T07:00:00.000Z",
        **fields,
    }
    return Booking.model_validate(data)


def test_the_api_gives_the_same_change_as_the_webhook_would() -> None:
    envelope = envelope_of(booking())
    assert envelope is not None
    payload = envelope["payload"]
    assert change_id(envelope["triggerEvent"], payload) == "BOOKING_CREATED:u7:1781074800"
    assert conversation_for(payload) == "tg:42"
    change = BookingChange.parse(envelope)
    assert (change.service, change.master, change.email) == ("Manicure", "Maria Ivanova", "a@b.c")
    moved = envelope_of(booking(rescheduledFromUid="u6"))
    assert moved is not None
    assert moved["triggerEvent"] == "BOOKING_RESCHEDULED"
    cancelled = envelope_of(booking(status="cancelled", cancellationReason="ill"))
    assert cancelled is not None
    assert cancelled["triggerEvent"] == "BOOKING_CANCELLED"
    # The old half of a move: its successor tells of it.
    assert envelope_of(booking(status="cancelled", rescheduledToUid="u8")) is None
    requested = envelope_of(booking(status="pending"))
    assert requested is not None
    assert requested["triggerEvent"] == "BOOKING_REQUESTED"


@pytest.mark.parametrize("attendees", [5, "anna@example.com", {"name": "Anna"}, None])
def test_attendees_that_are_not_a_list_are_read_as_none(attendees: Any) -> None:
    body = {
        "triggerEvent": "BOOKING_CREATED",
        "payload": {"uid": "bk-1", "startTime": "2026-06-03T07:00:00Z", "attendees": attendees},
    }
    [event] = CalcomWebhook(SECRET).parse(*signed(body))
    assert event.event_id.startswith("BOOKING_CREATED:bk-1:")
    noshow = body | {"triggerEvent": "BOOKING_NO_SHOW_UPDATED"}
    [event] = CalcomWebhook(SECRET).parse(*signed(noshow))
    assert event.event_id.startswith("BOOKING_NO_SHOW_UPDATED:bk-1:")


def test_a_chat_in_the_metadata_that_is_not_a_chat_id_is_not_a_conversation() -> None:
    metadata = {"frontdesk_channel": "telegram", "frontdesk_chat": "anna"}
    payload = {"uid": "bk-2", "startTime": "2026-06-03T07:00:00Z", "metadata": metadata}
    body = {"triggerEvent": "BOOKING_CREATED", "payload": payload}
    [event] = CalcomWebhook(SECRET).parse(*signed(body))
    assert event.conversation == "cal:bk-2"
