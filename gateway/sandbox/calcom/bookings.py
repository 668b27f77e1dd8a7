"""Cal.com's bookings (§1.6-§1.9): create, list, get, cancel and reschedule, with Cal.com's
checks in its order and its wording, and how the API shows a booking."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import attrgetter

from aiohttp import web

from gateway.sandbox.calcom.errors import (
    _HOSTS_BUSY,
    _OUT_OF_BOUNDS,
    _START_RULE,
    _USER_BUSY,
    CalcomError,
    _ok,
)
from gateway.sandbox.calcom.model import JSON, _Booking, _EventType, _instant, _iso, _short_uid
from gateway.sandbox.calcom.slots import Slots
from gateway.sandbox.calcom.validation import (
    _booking_rules,
    _enum_violation,
    _invalid,
    _pipe_message,
    _Violation,
)

RESERVATION_COOKIE = "uid"  # Cal.com's RESERVED_SLOT_UID_COOKIE_NAME
_STATUS_FILTERS = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
_SORTS = {
    "sortStart": "start",
    "sortEnd": "end",
    "sortCreated": "created",
    "sortUpdatedAt": "updated",
}
_TIME_FILTERS: dict[str, Callable[[_Booking, datetime], bool]] = {
    "afterStart": lambda b, t: b.start >= t,
    "beforeEnd": lambda b, t: b.end <= t,
    "afterCreatedAt": lambda b, t: b.created >= t,
    "beforeCreatedAt": lambda b, t: b.created <= t,
    "afterUpdatedAt": lambda b, t: b.updated >= t,
    "beforeUpdatedAt": lambda b, t: b.updated <= t,
}


def _numbers(query: Mapping[str, str], *names: str) -> set[int]:
    """Comma lists of ids from any of these query parameters."""
    parts = ",".join(query.get(name, "") for name in names).split(",")
    return {int(part) for part in parts if part.isdigit()}


def _status_matches(booking: _Booking, status: str, now: datetime) -> bool:
    """GET /v2/bookings?status=... as Cal.com lists them (§1.7)."""
    live = booking.status == "accepted"
    return {
        "upcoming": live and booking.end >= now,
        "past": live and booking.end < now,
        "cancelled": booking.status in ("cancelled", "rejected"),
        "unconfirmed": booking.status == "pending" and booking.end >= now,
        "recurring": False,
    }[status]


class Bookings(Slots):
    """The booking endpoints."""

    # -- bookings (§1.6-§1.9) -------------------------------------------------------------

    async def _create_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        # Newer Cal.com also takes the reservation uid in the body (or in the `uid` cookie).
        held = body.pop("reservedSlotUid", None) or request.cookies.get(RESERVATION_COOKIE)
        claim = str(held) if held else None
        self._validate(request, "/v2/bookings", body, pipe=True)
        if problems := _booking_rules(body):
            raise CalcomError(400, _pipe_message(problems))
        if body.get("instant"):
            raise CalcomError(400, "Instant meetings are not emulated by the sandbox")
        et = self._booked_event_type(body)
        if body.get("lengthInMinutes") is not None:
            raise CalcomError(
                400,
                "Can't specify 'lengthInMinutes' because event type does not have multiple "
                "possible lengths. Please, remove the 'lengthInMinutes' field from the request.",
            )
        attendee: JSON = dict(body["attendee"])
        if et.email_required and not attendee.get("email"):
            raise CalcomError(
                400,
                "Missing attendee email - the event type's booking fields require it. Pass it as "
                '"attendee.email" string in the request.',
            )
        location = body.get("location")
        if isinstance(location, dict) and location.get("type") != "address":
            raise CalcomError(
                400,
                f"Booking location with type {location.get('type')} not valid for event type with "
                f"id={et.id}. The event type has following location types: address, and only "
                "these types are allowed for booking location.",
            )
        start = _instant(body["start"])
        assert start is not None  # checked by _booking_rules
        hosts = self._pick_hosts(et, start, claim=claim, team_message=et.team_id is not None)
        booking = self._store_booking(
            et,
            start,
            hosts,
            attendee,
            body.get("metadata") or {},
            body.get("bookingFieldsResponses") or {},
            location=location if isinstance(location, str) else None,
        )
        if claim:
            self._reservations.pop(claim, None)
        self._emit("BOOKING_CREATED", booking)
        return _ok(self._booking_json(booking), status=201)

    def _booked_event_type(self, body: JSON) -> _EventType:
        keys = ("eventTypeId", "eventTypeSlug", "username", "teamSlug")
        found = self._lookup(*map(body.get, keys))
        if found is not None:
            return found
        slug, username, team = body.get("eventTypeSlug"), body.get("username"), body.get("teamSlug")
        if slug and (username or team):  # ErrorsBookingsService_2024_08_13's wording
            owner = f"user {username}" if username else f"team {team}"
            raise CalcomError(404, f"Event type with slug {slug} belonging to {owner} not found.")
        raise CalcomError(
            404, f"Event type with id {body.get('eventTypeId', 'undefined')} not found."
        )

    def _pick_hosts(
        self,
        et: _EventType,
        start: datetime,
        *,
        claim: str | None = None,
        ignore: str | None = None,
        prefer: Sequence[int] = (),
        team_message: bool,
    ) -> list[int]:
        """Cal.com's checks in order: past, minimum notice, someone else's hold, availability."""
        now = self._now()
        end = start + timedelta(minutes=et.length)
        if start < now:
            raise CalcomError(400, "Attempting to book a meeting in the past.")
        if start < now + timedelta(minutes=et.notice):
            raise CalcomError(400, _OUT_OF_BOUNDS)
        for held in self._reservations.values():
            same = (held.event_type_id, held.start, held.end) == (et.id, start, end)
            if same and held.uid != claim and held.until > now:
                seconds = math.ceil((held.until - now).total_seconds())
                raise CalcomError(
                    400,
                    "Someone else reserved this booking time slot before you. This time slot "
                    f"will be freed up in {seconds} seconds.",
                )
        hosts = self._hosts(et)
        free = [h for h in hosts if self._free(h, start, end, et, ignore=ignore, claim=claim)]
        busy = _HOSTS_BUSY if team_message else _USER_BUSY
        if et.scheduling == "collective":
            if len(free) < len(hosts):
                raise CalcomError(400, busy)
            return free
        if not free:
            raise CalcomError(400, busy)
        # Round robin: keep the previous host when free, else the least booked one.
        load = {
            h: sum(h in b.host_ids and b.status == "accepted" for b in self._bookings.values())
            for h in free
        }
        kept = [h for h in prefer if h in free]
        return kept[:1] or [min(free, key=lambda h: (load[h], hosts.index(h)))]

    def _store_booking(
        self,
        et: _EventType,
        start: datetime,
        host_ids: list[int],
        attendee: JSON,
        metadata: JSON,
        responses: JSON,
        *,
        location: str | None = None,
    ) -> _Booking:
        now = self._now()
        email = attendee.get("email") or ""
        if not email:  # Cal.com files phone-only attendees under a placeholder address
            email = re.sub(r"\D", "", str(attendee.get("phoneNumber", ""))) + "@sms.cal.com"
        person: JSON = {
            "name": attendee["name"],
            "email": email,
            "displayEmail": email,
            "timeZone": attendee["timeZone"],
            "language": attendee.get("language") or "en",
            "absent": False,
        }
        if attendee.get("phoneNumber"):
            person["phoneNumber"] = attendee["phoneNumber"]
        answers: JSON = {**responses, "name": person["name"], "email": attendee.get("email") or ""}
        if attendee.get("phoneNumber"):
            answers["attendeePhoneNumber"] = attendee["phoneNumber"]
        booking = _Booking(
            id=next(self._ids["booking"]),
            uid=_short_uid(),
            event_type_id=et.id,
            host_ids=host_ids,
            start=start,
            end=start + timedelta(minutes=et.length),
            attendee=person,
            metadata=dict(metadata),
            responses=answers | {"guests": []},
            location=location or self.salon_address,
            created=now,
            updated=now,
        )
        self._bookings[booking.uid] = booking
        return booking

    async def _get_bookings(self, request: web.Request, _authed: bool) -> web.Response:
        """§1.7: the list filters, sorts and pagination (take 1-250, default 100)."""
        self._validate_query(request, "/v2/bookings")
        query, now = request.query, self._now()
        statuses = [status for status in query.get("status", "").split(",") if status]
        bounds = {key: _instant(query[key]) for key in _TIME_FILTERS if key in query}
        take, skip = query.get("take", "100"), query.get("skip", "0")
        problems = [
            _Violation(
                key, query[key], {"isDateString": f"{key} must be a valid ISO 8601 date string"}
            )
            for key, moment in bounds.items()
            if moment is None
        ]
        if not set(statuses) <= set(_STATUS_FILTERS):
            problems.append(_enum_violation("status", statuses, _STATUS_FILTERS))
        if not (take.isdigit() and 1 <= int(take) <= 250 and skip.isdigit()):
            problems.append(_Violation("take", take, {"max": "take must not be greater than 250"}))
        if problems:
            raise _invalid(problems, dict(query), pipe=False)
        email = query.get("attendeeEmail", "").replace(" ", "+").lower()  # §1.7: a space is a +
        name = query.get("attendeeName", "").lower()
        types = _numbers(query, "eventTypeIds", "eventTypeId")
        teams = _numbers(query, "teamsIds", "teamId")
        newest_first = bool(statuses) and set(statuses) <= {"past", "cancelled"}
        found = [
            b
            for b in sorted(self._bookings.values(), key=attrgetter("start"), reverse=newest_first)
            if (not statuses or any(_status_matches(b, status, now) for status in statuses))
            and (not email or b.attendee["email"].lower() == email)
            and name in b.attendee["name"].lower()
            and query.get("bookingUid") in (None, b.uid)
            and (not types or b.event_type_id in types)
            and (not teams or self._event_types[b.event_type_id].team_id in teams)
            and all(_TIME_FILTERS[key](b, moment) for key, moment in bounds.items() if moment)
        ]
        for key, attribute in _SORTS.items():
            if query.get(key) in ("asc", "desc"):
                found.sort(key=attrgetter(attribute), reverse=query[key] == "desc")
        count, size, offset = len(found), int(take), int(skip)
        page = found[offset : offset + size]
        pagination = {
            "totalItems": count,
            "remainingItems": max(0, count - offset - len(page)),
            "returnedItems": len(page),
            "itemsPerPage": size,
            "currentPage": offset // size + 1,
            "totalPages": math.ceil(count / size),
            "hasNextPage": offset + len(page) < count,
            "hasPreviousPage": offset > 0,
        }
        return _ok([self._booking_json(b) for b in page], pagination=pagination)

    def _find_booking(self, request: web.Request) -> _Booking:
        uid = request.match_info["bookingUid"]
        booking = self._bookings.get(uid)
        if booking is None:
            raise CalcomError(404, f"Booking with uid={uid} was not found in the database")
        return booking

    async def _get_booking(self, request: web.Request, _authed: bool) -> web.Response:
        return _ok(self._booking_json(self._find_booking(request)))

    async def _cancel_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        template = "/v2/bookings/{bookingUid}/cancel"
        self._validate(request, template, body, pipe=True)
        if "seatUid" in body:  # no seated event types here
            raise CalcomError(
                400, "Invalid seatUid: this seat does not exist or has already been cancelled."
            )
        booking = self._find_booking(request)
        if booking.status == "cancelled":
            raise CalcomError(400, "This booking has already been cancelled.")
        booking.status = "cancelled"
        booking.cancellation_reason = body.get("cancellationReason")
        booking.cancelled_by = self._users[self.owner_id].email if authed else None
        booking.updated = self._now()
        booking.sequence += 1
        self._emit("BOOKING_CANCELLED", booking)
        return _ok(self._booking_json(booking))

    async def _reschedule_booking(self, request: web.Request, authed: bool) -> web.Response:
        body = await self._json_body(request)
        template = "/v2/bookings/{bookingUid}/reschedule"
        self._validate(request, template, body, pipe=True)
        start = _instant(body.get("start"))
        if start is None:
            raise CalcomError(
                400, _pipe_message([_Violation("start", body.get("start"), _START_RULE)])
            )
        old = self._find_booking(request)
        if old.status == "cancelled":
            if old.rescheduled_to:
                raise CalcomError(
                    400,
                    f"Can't reschedule booking with uid={old.uid} because it has been cancelled "
                    f"and rescheduled already to booking with uid={old.rescheduled_to}. You "
                    f"probably want to reschedule {old.rescheduled_to} instead by passing it "
                    "within the request URL.",
                )
            raise CalcomError(
                400,
                f"Can't reschedule booking with uid={old.uid} because it has been cancelled. "
                "Please provide uid of a booking that is not cancelled.",
            )
        et = self._event_types[old.event_type_id]
        hosts = self._pick_hosts(et, start, ignore=old.uid, prefer=old.host_ids, team_message=False)
        attendee = {
            key: old.attendee.get(key) for key in ("name", "timeZone", "language", "phoneNumber")
        }
        attendee["email"] = old.responses.get("email")
        responses = {k: v for k, v in old.responses.items() if k not in ("name", "email", "guests")}
        # The new booking keeps the old one's metadata (apps/api/v2 ee/bookings/2024-08-13
        # services/input.service.ts transformInputRescheduleBooking: `metadata: booking.metadata
        # || {}`), so its BOOKING_RESCHEDULED webhook carries it.
        new = self._store_booking(
            et, start, hosts, attendee, old.metadata, responses, location=old.location
        )
        new.rescheduled_from = old.uid
        new.sequence = old.sequence + 1
        new.rescheduling_reason = body.get("reschedulingReason")
        by = body.get("rescheduledBy") or (self._users[self.owner_id].email if authed else None)
        new.rescheduled_by = by
        old.status, old.rescheduled_to, old.rescheduled_by = "cancelled", new.uid, by
        old.rescheduling_reason = new.rescheduling_reason
        old.updated = self._now()
        self._emit("BOOKING_RESCHEDULED", new, previous=old)
        return _ok(self._booking_json(new), status=201)

    def _booking_json(self, booking: _Booking) -> JSON:
        """BookingOutput_2024_08_13; optional fields appear only when set, as in Cal.com."""
        et = self._event_types[booking.event_type_id]
        hosts = [
            {
                "id": u.id,
                "name": u.name,
                "email": u.email,
                "username": u.username,
                "timeZone": u.time_zone,
            }
            for u in map(self._users.__getitem__, booking.host_ids)
        ]
        data: JSON = {
            "id": booking.id,
            "uid": booking.uid,
            "title": f"{et.title} between {hosts[0]['name']} and {booking.attendee['name']}",
            "description": "",
            "hosts": hosts,
            "status": booking.status,
        }
        optional = {
            "cancellationReason": booking.cancellation_reason,
            "cancelledByEmail": booking.cancelled_by,
            "reschedulingReason": booking.rescheduling_reason,
            "rescheduledByEmail": booking.rescheduled_by,
            "rescheduledFromUid": booking.rescheduled_from,
            "rescheduledToUid": booking.rescheduled_to,
        }
        data |= {key: value for key, value in optional.items() if value is not None}
        return data | {
            "start": _iso(booking.start),
            "end": _iso(booking.end),
            "duration": int((booking.end - booking.start).total_seconds() // 60),
            "eventTypeId": et.id,
            "eventType": {"id": et.id, "slug": et.slug},
            "location": booking.location,
            "absentHost": False,
            "createdAt": _iso(booking.created),
            "updatedAt": _iso(booking.updated),
            "metadata": dict(booking.metadata),
            "icsUid": f"{booking.uid}@Cal.com",
            "attendees": [dict(booking.attendee)],
            "guests": [],
            "bookingFieldsResponses": dict(booking.responses),
        }
