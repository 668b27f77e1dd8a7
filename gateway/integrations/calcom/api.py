"""The Cal.com API v2 client: event types, slots, reservations and bookings, behind a breaker.

What the contract (`shared/contracts/calcom-novu-metabase.md` §1) makes this client do, and
where each part lives:

- Every request goes to `<root>/v2/...` with `Authorization: Bearer <key>` and the
  `cal-api-version` of its endpoint family (§1.1): a missing or wrong value silently selects an
  older contract or fails with a 500 (calcom/cal.com #16924). See `transport`.
- Answers are `{"status": "success", "data": ...}`; errors are `{"status": "error", "error":
  {"code", "message"}}` where `code` is an exception class name (§1.2), so errors are told apart
  by HTTP status and message, never by `code` alone. See `errors`.
- Rate limits (§1.3): `X-RateLimit-{Limit,Remaining,Reset}-<Name>`; the reset unit is unclear,
  so a value is read as seconds unless it is obviously an epoch. A 429 comes from a guard that
  runs before the handler, so the request had no effect and may be repeated after the wait.
  See `rate_limits`.
- Slots (§1.5): `start`/`end` are UTC instants whatever `timeZone` says, an `end` at exactly
  00:00:00Z is stretched to 23:59:59 of that day, and the grouping keys follow the zone of the
  formatted slot; this client sends full UTC instants and groups the slots itself.
- Writes are never repeated blindly (DESIGN §5, "nothing twice"): a booking carries the
  caller's idempotency key in its metadata, and after any answer that leaves the outcome unknown
  the client looks for that key before it tries again (see `create_booking`).

The payloads are typed in `models`, what is sent is built and checked in `wire`. This module is
the package's public face: every name callers need is importable from here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from gateway.integrations.calcom.errors import (
    BookingUncertain,
    CalcomError,
    CalcomRejected,
    CalcomUnavailable,
    RateLimited,
    SlotTaken,
)
from gateway.integrations.calcom.models import (
    CANCELLED,
    IDEMPOTENCY_METADATA_KEY,
    Booking,
    EventType,
    Reservation,
    SlotRange,
    Webhook,
    one_booking,
    parse_list,
    parse_one,
    slot_range,
)
from gateway.integrations.calcom.rate_limits import RateBudget
from gateway.integrations.calcom.transport import (
    VERSION_BOOKINGS,
    VERSION_EVENT_TYPES,
    VERSION_SLOTS,
    VERSION_WEBHOOKS,
    CalcomTransport,
    api_root,
)
from gateway.integrations.calcom.wire import (
    booking_body,
    iana_zone,
    iso_z,
    reservation_cookie,
    segment,
    utc,
)
from gateway.integrations.calcom.writes import write_once

# What counts against Cal.com's breaker: 5xx, timeouts, connection errors; not 4xx, not 429
# (`RateLimited.counted`; the client keeps those out of the breaker anyway).
from gateway.integrations.http import is_failure

# One logger for the whole Cal.com client, whichever of its modules speaks.
log = logging.getLogger("gateway.integrations.calcom.api")

# The names callers import from here, wherever in the package they live.
__all__ = [
    "IDEMPOTENCY_METADATA_KEY",
    "VERSION_BOOKINGS",
    "VERSION_EVENT_TYPES",
    "VERSION_SLOTS",
    "VERSION_WEBHOOKS",
    "Booking",
    "BookingUncertain",
    "CalcomClient",
    "CalcomError",
    "CalcomRejected",
    "CalcomUnavailable",
    "EventType",
    "RateBudget",
    "RateLimited",
    "Reservation",
    "SlotRange",
    "SlotTaken",
    "Webhook",
    "api_root",
    "is_failure",
]

# §1.7: the list filter takes these, not the booking statuses (a documented doc conflict).
BOOKING_LIST_STATUSES: Final = frozenset(
    {"upcoming", "recurring", "past", "cancelled", "unconfirmed"}
)

# `GET /v2/webhooks` pages: SkipTakePagination, at most 250 (webhooks.controller.ts, §1.10).
WEBHOOKS_PAGE: Final = 250

# Reservations are held for this long unless the caller asks otherwise (Cal.com's default).
DEFAULT_HOLD_MINUTES: Final = 5


class CalcomClient(CalcomTransport):
    """Typed async client for Cal.com API v2. One per deployment; share it between workers.

    `breaker` counts only what says the service is down (5xx, timeouts, connection errors);
    build it with `is_failure` from this module. `timeout` bounds every call (connect at most
    5 s). Reads are retried `retries` times with a short backoff; writes never blindly. Every
    request carries its own auth and version headers (`_build`): `http` may be a shared client.
    """

    # --- event types --------------------------------------------------------------------------

    async def event_types(self, team_id: int | None = None) -> list[EventType]:
        """The salon's services: the team's event types when `team_id` is given (set
        `CALCOM_TEAM_ID` when services are team event types), else the API key owner's own
        (hidden ones included; filter on `hidden`)."""
        path = f"/teams/{team_id}/event-types" if team_id is not None else "/event-types"
        data = await self._data("GET", path, family="event-types")
        return parse_list(EventType, data, "event type")

    async def event_type(
        self, event_type_id: int, *, team_id: int | None = None
    ) -> EventType | None:
        """One event type, or None when Cal.com does not know it (404 or `data: null`)."""
        path = (
            f"/teams/{team_id}/event-types/{event_type_id}"
            if team_id is not None
            else f"/event-types/{event_type_id}"
        )
        try:
            data = await self._data("GET", path, family="event-types")
        except CalcomRejected as exc:
            if exc.status == 404:
                return None
            raise
        return None if data is None else parse_one(EventType, data)

    # --- slots --------------------------------------------------------------------------------

    async def slots(
        self,
        event_type_id: int,
        start: datetime,
        end: datetime,
        time_zone: str,
        *,
        duration: int | None = None,
        booking_uid_to_reschedule: str | None = None,
    ) -> dict[date, list[SlotRange]]:
        """Free slots between two instants, grouped by their date in `time_zone` (the salon's).

        The grouping is computed here from each slot's start, not taken from Cal.com's keys,
        whose zone the contract leaves open (§1.5 [U]).
        """
        zone = iana_zone(time_zone)
        start_utc, end_utc = utc(start, "start"), utc(end, "end")
        if end_utc <= start_utc:
            raise ValueError("end must be after start")
        # §1.5: an end at exactly 00:00:00Z is stretched to 23:59:59 of that day.
        if end_utc.time() == datetime.min.time():
            end_utc -= timedelta(seconds=1)
        params: dict[str, str] = {
            "eventTypeId": str(event_type_id),
            "start": iso_z(start_utc),
            "end": iso_z(end_utc),
            "timeZone": time_zone,
            "format": "range",
        }
        if duration is not None:
            params["duration"] = str(duration)
        if booking_uid_to_reschedule:
            params["bookingUidToReschedule"] = booking_uid_to_reschedule
        data = await self._data("GET", "/slots", family="slots", params=params)
        if not isinstance(data, dict):
            raise CalcomUnavailable("slots: `data` is not an object", code="bad_response")
        found: dict[date, dict[datetime, SlotRange]] = {}
        for items in data.values():
            for item in items if isinstance(items, list) else []:
                slot = slot_range(item, duration)
                found.setdefault(slot.start.astimezone(zone).date(), {})[slot.start] = slot
        return {day: [found[day][t] for t in sorted(found[day])] for day in sorted(found)}

    async def reserve(
        self,
        event_type_id: int,
        start: datetime,
        *,
        duration: int | None = None,
        hold_minutes: int | None = None,
    ) -> Reservation | None:
        """Hold a slot while the client confirms. None when this Cal.com has no reservations
        endpoint (404 for the route itself); SlotTaken when someone else holds or booked it.

        Not retried on a timeout: a reservation that did happen would block our own booking of
        the same time on newer Cal.com versions, so the caller should carry on without a hold
        (and may get SlotTaken on booking for the hold's few minutes).
        """
        body: dict[str, Any] = {"eventTypeId": event_type_id, "slotStart": iso_z(utc(start))}
        if duration is not None:
            body["slotDuration"] = duration
        if hold_minutes is not None:
            body["reservationDuration"] = hold_minutes
        try:
            data = await self._data(
                "POST", "/slots/reservations", family="slots", json_body=body, slot_op=True
            )
        except CalcomRejected as exc:
            # Unknown event type: "Event Type with ID=1 not found". A missing route: "Cannot POST".
            if exc.status == 404 and "event type" not in exc.message.lower():
                log.info(
                    "calcom: no reservations endpoint on this instance; booking without a hold"
                )
                return None
            raise
        return parse_one(Reservation, data)

    async def release(self, reservation_uid: str) -> None:
        """Give a held slot back (the booking it was held for did not happen). A hold that is
        gone already is no error. Cal.com answers `{"status": "success"}` with no `data`
        (apps/api/v2/src/modules/slots/slots-2024-09-04/controllers/slots.controller.ts,
        deleteReservedSlot)."""
        try:
            await self._call_envelope(
                "DELETE",
                f"/slots/reservations/{segment(reservation_uid)}",
                family="slots",
                idempotent=True,
                bare=True,
            )
        except CalcomRejected as exc:
            if exc.status != 404:
                raise

    # --- bookings: reads ----------------------------------------------------------------------

    async def booking(self, uid: str) -> Booking | None:
        """One booking by uid, or None when Cal.com does not know it. A recurring series uid
        returns its first occurrence."""
        try:
            data = await self._data("GET", f"/bookings/{segment(uid)}", family="bookings")
        except CalcomRejected as exc:
            if exc.status == 404:
                return None
            raise
        return one_booking(data, uid)

    async def bookings(
        self,
        *,
        attendee_email: str | None = None,
        event_type_id: int | None = None,
        status: str | Sequence[str] | None = None,
        after_start: datetime | None = None,
        before_end: datetime | None = None,
        after_updated_at: datetime | None = None,
        after_created_at: datetime | None = None,
        take: int = 100,
        max_items: int = 1000,
    ) -> list[Booking]:
        """Bookings visible to the API key (auth required), following pages up to `max_items`.

        `status` takes the list filter's values (`upcoming`, `past`, `cancelled`,
        `unconfirmed`, `recurring`), not booking statuses (§1.7). With `after_updated_at` the
        result is sorted by update time (the reconciliation feed, §1.10), with
        `after_created_at` by creation, else by start.
        """
        if not 1 <= take <= 250:
            raise ValueError("take must be between 1 and 250")
        params: dict[str, str] = {}
        if attendee_email:
            params["attendeeEmail"] = attendee_email
        if event_type_id is not None:
            params["eventTypeId"] = str(event_type_id)
        if status:
            statuses = [status] if isinstance(status, str) else list(status)
            unknown = set(statuses) - BOOKING_LIST_STATUSES
            if unknown:
                raise ValueError(f"unknown booking list status {sorted(unknown)}")
            params["status"] = ",".join(statuses)
        if after_start is not None:
            params["afterStart"] = iso_z(utc(after_start, "after_start"))
        if before_end is not None:
            params["beforeEnd"] = iso_z(utc(before_end, "before_end"))
        if after_updated_at is not None:
            params["afterUpdatedAt"] = iso_z(utc(after_updated_at, "after_updated_at"))
            params["sortUpdatedAt"] = "asc"
        elif after_created_at is not None:
            params["afterCreatedAt"] = iso_z(utc(after_created_at, "after_created_at"))
            params["sortCreated"] = "asc"
        else:
            params["sortStart"] = "asc"
        found: list[Booking] = []
        skip = 0
        while len(found) < max_items:
            page = {**params, "take": str(take), "skip": str(skip)}
            envelope = await self._call_envelope("GET", "/bookings", family="bookings", params=page)
            items = envelope.get("data")
            batch = parse_list(Booking, items, "booking")
            found.extend(batch)
            pagination = envelope.get("pagination")
            more = isinstance(pagination, dict) and pagination.get("hasNextPage") is True
            if not more or not isinstance(items, list) or not items:
                break
            skip += len(items)
        return found[:max_items]

    async def find_booking(
        self, event_type_id: int, start: datetime, idempotency_key: str
    ) -> Booking | None:
        """The booking made with `idempotency_key` for this event type and start, if any.

        Searches that event type's bookings starting from `start` (a minute's margin) and ending
        within a day, and matches `metadata.frontdesk_key`; an active booking wins over a
        cancelled one.
        """
        start_utc = utc(start)
        candidates = await self.bookings(
            event_type_id=event_type_id,
            after_start=start_utc - timedelta(minutes=1),
            before_end=start_utc + timedelta(days=1),
            take=100,
            max_items=500,
        )
        mine = [b for b in candidates if b.idempotency_key == idempotency_key]
        mine.sort(key=lambda b: (not b.active, b.start))
        return mine[0] if mine else None

    # --- webhooks -----------------------------------------------------------------------------

    async def webhooks(self) -> list[Webhook]:
        """Every webhook of the key's user (`GET /v2/webhooks`, pages of at most 250)."""
        found: list[Webhook] = []
        while True:
            page = {"take": str(WEBHOOKS_PAGE), "skip": str(len(found))}
            data = await self._data("GET", "/webhooks", family="webhooks", params=page)
            batch = parse_list(Webhook, data, "webhook")
            found.extend(batch)
            if len(data) < WEBHOOKS_PAGE:
                return found

    async def webhook_changes(
        self, subscriber_url: str, triggers: Sequence[str], secret: str
    ) -> tuple[Webhook | None, dict[str, Any]]:
        """The webhook to `subscriber_url` (None when missing) and what differs from exactly
        these triggers and this secret, active (empty: in place). Reads only.

        Cal.com keeps one webhook per user and subscriber URL (user-webhooks.service.ts answers
        409 to a second), so the URL finds it. The secret is compared with the one the API
        shows (an exposed output field); a Cal.com that does not show it gets it again."""
        existing = next(
            (w for w in await self.webhooks() if w.subscriber_url == subscriber_url), None
        )
        if existing is None:
            return None, {
                "subscriberUrl": subscriber_url,
                "triggers": sorted(triggers),
                "active": True,
                "secret": secret,
            }
        changes: dict[str, Any] = {}
        if sorted(existing.triggers) != sorted(triggers):
            changes["triggers"] = sorted(triggers)
        if not existing.active:
            changes["active"] = True
        if existing.secret != secret:
            changes["secret"] = secret
        if existing.payload_template:
            # A template replaces the body the handler reads (sendPayload.ts).
            changes["payloadTemplate"] = None
        return existing, changes

    async def ensure_webhook(
        self, subscriber_url: str, triggers: Sequence[str], secret: str
    ) -> tuple[str, Webhook]:
        """The webhook to `subscriber_url` exists, active, with exactly these triggers and this
        secret: created when missing, PATCHed with only what differs, else left alone. Returns
        what was done ("created", "updated: <fields>", "unchanged") and the webhook."""
        existing, changes = await self.webhook_changes(subscriber_url, triggers, secret)
        if existing is None:
            data = await self._data("POST", "/webhooks", family="webhooks", json_body=changes)
            return "created", parse_one(Webhook, data)
        if not changes:
            return "unchanged", existing
        data = await self._data(
            "PATCH",
            f"/webhooks/{segment(existing.id)}",
            family="webhooks",
            json_body=changes,
            idempotent=True,
        )
        return f"updated: {', '.join(changes)}", parse_one(Webhook, data)

    # --- bookings: writes ---------------------------------------------------------------------

    async def create_booking(
        self,
        event_type_id: int,
        start: datetime,
        attendee_name: str,
        *,
        idempotency_key: str,
        time_zone: str,
        language: str,
        email: str | None = None,
        phone: str | None = None,
        metadata: Mapping[str, str] | None = None,
        reservation_uid: str | None = None,
        length_in_minutes: int | None = None,
    ) -> Booking:
        """Book `start` (an aware datetime, sent as UTC) for the attendee, exactly once.

        `idempotency_key` names this booking intent (say `<salon>:<conversation>:<intent id>`):
        the same key always yields the same booking. It is stored in `metadata.frontdesk_key`.
        Before posting, the client looks for a booking with that key (a redelivered job finds
        the booking its first run made). After a timeout, a 5xx or a dropped connection it looks
        again; only when the booking is certainly absent does it post once more. When Cal.com
        cannot be asked, `BookingUncertain` says so.

        The attendee needs an email or a phone (international format; a WhatsApp id's digits
        are accepted and get a '+'). `time_zone` is the attendee's IANA zone and `language` one
        of Cal.com's languages (`ru`, `en`, ...). Raises SlotTaken, CalcomRejected,
        CalcomUnavailable (nothing was booked) or BookingUncertain.
        """
        start_utc = utc(start)
        body = booking_body(
            event_type_id,
            start_utc,
            attendee_name,
            idempotency_key=idempotency_key,
            time_zone=time_zone,
            language=language,
            email=email,
            phone=phone,
            metadata=metadata,
            length_in_minutes=length_in_minutes,
        )
        cookies = reservation_cookie(reservation_uid)

        async def send() -> Booking:
            return await self._post_booking("/bookings", body, cookies)

        async def find() -> Booking | None:
            return await self.find_booking(event_type_id, start_utc, idempotency_key)

        return await write_once("create", idempotency_key, send, find)

    async def _post_booking(
        self, path: str, body: dict[str, Any], cookies: dict[str, str] | None
    ) -> Booking:
        """One booking write (create or reschedule): never retried here, since `write_once`
        decides after reading what Cal.com holds. A slot operation: a refusal is read as about
        the slot (`errors.rejection`)."""
        data = await self._data(
            "POST",
            path,
            family="bookings",
            json_body=body,
            cookies=cookies,
            idempotent=False,
            slot_op=True,
        )
        return one_booking(data, None)

    async def reschedule(
        self,
        uid: str,
        start: datetime,
        reason: str | None = None,
        *,
        rescheduled_by: str | None = None,
        reservation_uid: str | None = None,
    ) -> Booking:
        """Move a booking to `start`. Cal.com makes a new booking with a new uid and cancels the
        old one, linking them by `rescheduledToUid` (§1.9): the returned booking is the new one.

        Never repeated blindly: before posting and after an ambiguous failure the old booking is
        read; if it already points to a booking at `start`, that booking is returned.
        `rescheduled_by` set to the event type owner's email auto-confirms event types that
        require confirmation.
        """
        start_utc = utc(start)
        body: dict[str, Any] = {"start": iso_z(start_utc)}
        if reason:
            body["reschedulingReason"] = reason
        if rescheduled_by:
            body["rescheduledBy"] = rescheduled_by
        cookies = reservation_cookie(reservation_uid)

        async def send() -> Booking:
            return await self._post_booking(f"/bookings/{segment(uid)}/reschedule", body, cookies)

        async def find() -> Booking | None:
            old = await self.booking(uid)
            if old is None or not old.rescheduled_to_uid:
                return None
            new = await self.booking(old.rescheduled_to_uid)
            return new if new is not None and new.start == start_utc else None

        return await write_once("reschedule", f"reschedule:{uid}", send, find)

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        """Cancel a booking. Cancelling is idempotent in effect, so transient failures are
        retried; a booking that is already cancelled (a double tap, a redelivered job, our own
        earlier attempt) is returned as it is rather than reported as an error."""
        body: dict[str, Any] = {"cancellationReason": reason} if reason else {}
        try:
            data = await self._data(
                "POST",
                f"/bookings/{segment(uid)}/cancel",
                family="bookings",
                json_body=body,
                idempotent=True,
            )
        except CalcomRejected as exc:
            if exc.status not in (400, 409, 422):
                raise
            try:
                current = await self.booking(uid)
            except CalcomError:
                raise exc from None
            if current is not None and current.status == CANCELLED:
                return current
            raise
        return one_booking(data, uid)
