"""Cal.com's slots (§1.5): the masters' working hours in their own zones, what makes them
busy, the free slots on Cal.com's grid, and slot reservations."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from gateway.sandbox.calcom.errors import CalcomError, _ok
from gateway.sandbox.calcom.event_types import EventTypes
from gateway.sandbox.calcom.model import (
    JSON,
    _align,
    _EventType,
    _instant,
    _is_int,
    _iso,
    _Reservation,
    _zone,
)


class Slots(EventTypes):
    """The slot endpoints and the availability under them."""

    # -- slots (§1.5) ---------------------------------------------------------------------

    async def _get_slots(self, request: web.Request, _authed: bool) -> web.Response:
        self._validate_query(request, "/v2/slots")
        query = request.query
        keys = ("eventTypeId", "eventTypeSlug", "username", "teamSlug")
        if not (query.get("eventTypeId") or query.get("eventTypeSlug")):
            raise CalcomError(
                400,
                "Identify the event type with eventTypeId, or eventTypeSlug with username or "
                "teamSlug (dynamic events by usernames are not emulated)",
            )
        et = self._lookup(*map(query.get, keys))
        if et is None:
            raise CalcomError(404, "Event Type not found")
        lo = _instant(query.get("start"))
        hi = _instant(query.get("end"))
        if lo is None:
            raise CalcomError(400, "Invalid start date")
        if hi is None:
            raise CalcomError(400, "Invalid end date")
        if (hi.hour, hi.minute, hi.second) == (0, 0, 0):  # §1.5: a date or midnight: that day
            hi = hi.replace(hour=23, minute=59, second=59)
        if lo > hi:
            raise CalcomError(
                400, "Invalid time range given - check the 'start' and 'end' query parameters."
            )
        zone: ZoneInfo | None = None
        if "timeZone" in query:
            zone = _zone(query["timeZone"])
            if zone is None:
                raise CalcomError(
                    400, f"Could not adjust timezone for slots with {query['timeZone']}"
                )
        length = et.length
        if duration := query.get("duration"):
            if not duration.isdigit() or int(duration) < 1:
                raise CalcomError(400, "duration must be a positive integer")
            length = int(duration)
        ignore = query.get("bookingUidToReschedule")
        data: dict[str, list[JSON]] = {}
        for start in self._slot_starts(et, lo, hi, length, ignore=ignore):
            day = start.astimezone(zone or UTC).date().isoformat()
            slot = {"start": _iso(start, zone)}
            if query.get("format") == "range":
                slot["end"] = _iso(start + timedelta(minutes=length), zone)
            data.setdefault(day, []).append(slot)
        return _ok(data)

    async def _reserve_slot(self, request: web.Request, authed: bool) -> web.Response:
        # Cal.com's rules (apps/api/v2/src/modules/slots/slots-2024-09-04/services/
        # slots.service.ts, reserveSlot): a custom reservationDuration only when authenticated
        # (401), an unknown event type 404, a booked time 422 "Can't reserve a slot if the event
        # is already booked", a time another reservation holds 422 (checkSlotOverlap); the hold
        # lasts reservationDuration minutes (default 5) from now (slots.repository.ts,
        # createSlot). Stricter here: a master busy with another event type's booking or hold
        # is refused too, where Cal.com only checks the same event type.
        body = await self._json_body(request)
        self._validate(request, "/v2/slots/reservations", body, pipe=False)
        minutes = body.get("reservationDuration")
        if minutes is not None and not authed:
            raise CalcomError(
                401,
                "reservationDuration can only be used for authenticated requests - use access "
                "token, api key or OAuth credentials",
            )
        raw_id: Any = body.get("eventTypeId")
        et = self._event_types.get(int(raw_id)) if _is_int(raw_id) else None
        if et is None:
            raise CalcomError(404, f"Event Type with ID={raw_id} not found")
        start = _instant(body.get("slotStart"))
        if start is None:
            raise CalcomError(400, "Invalid start date")
        if body.get("slotDuration") is not None:
            raise CalcomError(
                400,
                "You passed 'slotDuration' but this event type is not a variable length event "
                "type.",
            )
        end = start + timedelta(minutes=et.length)
        hosts = self._hosts(et)
        free = [h for h in hosts if self._busy(h, start, end, et) is None]
        if not free or (et.scheduling == "collective" and len(free) < len(hosts)):
            blocked = {self._busy(h, start, end, et) for h in hosts}
            if "booking" in blocked:
                raise CalcomError(422, "Can't reserve a slot if the event is already booked.")
            raise CalcomError(
                422,
                "This time slot is already reserved by another user. Please choose a different "
                "time.",
            )
        # Cal.com pins a team reservation to hosts[0]; the first *free* host makes the hold real.
        pinned = free if et.scheduling == "collective" else free[:1]
        duration = int(minutes) if isinstance(minutes, int | float) else 5
        until = self._now() + timedelta(minutes=duration)
        reservation = _Reservation(str(uuid.uuid4()), et.id, pinned, start, end, until)
        self._reservations[reservation.uid] = reservation
        data = self._reservation_json(reservation) | {"reservationDuration": duration}
        return _ok(data, status=201)

    async def _get_reservation(self, request: web.Request, _authed: bool) -> web.Response:
        reservation = self._reservations.get(request.match_info["uid"])
        return _ok(self._reservation_json(reservation) if reservation else None)

    async def _delete_reservation(self, request: web.Request, _authed: bool) -> web.Response:
        # slots.repository.ts deleteSlot is a deleteMany: an unknown uid is no error.
        self._reservations.pop(request.match_info["uid"], None)
        return web.json_response({"status": "success"})

    def _reservation_json(self, reservation: _Reservation) -> JSON:
        return {
            "eventTypeId": reservation.event_type_id,
            "slotStart": _iso(reservation.start),
            "slotEnd": _iso(reservation.end),
            "slotDuration": int((reservation.end - reservation.start).total_seconds() // 60),
            "reservationUid": reservation.uid,
            "reservationUntil": _iso(reservation.until),
        }

    # -- availability ---------------------------------------------------------------------

    def _hosts(self, et: _EventType) -> list[int]:
        return list(et.host_ids) if et.team_id is not None else [et.owner_id or self.owner_id]

    def _working(self, user_id: int, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        """The master's working ranges (UTC) meeting [lo, hi], computed day by day in their zone,
        so a DST change moves the UTC instants and not the local hours."""
        schedule = self._users[user_id].schedule
        if schedule is None:
            return []
        zone = ZoneInfo(schedule.time_zone)
        day, last = lo.astimezone(zone).date() - timedelta(days=1), hi.astimezone(zone).date()
        ranges = []
        while day <= last:
            for a, b in schedule.ranges(day):
                start = datetime.combine(day, a, zone).astimezone(UTC)
                end = datetime.combine(day, b, zone).astimezone(UTC)
                if start < end and start <= hi and end >= lo:
                    ranges.append((start, end))
            day += timedelta(days=1)
        return ranges

    def _busy(
        self,
        user_id: int,
        start: datetime,
        end: datetime,
        et: _EventType,
        *,
        ignore: str | None = None,
        claim: str | None = None,
    ) -> str | None:
        """What makes the master busy for [start, end] with this event type's buffers: an
        accepted booking (not `ignore`), an unexpired reservation (not `claim`), or nothing."""
        lo, hi = start - timedelta(minutes=et.before), end + timedelta(minutes=et.after)
        now = self._now()
        blockers = [
            ("booking", b.event_type_id, b.host_ids, b.start, b.end)
            for b in self._bookings.values()
            if b.status == "accepted" and b.uid != ignore
        ] + [
            ("reservation", r.event_type_id, r.host_ids, r.start, r.end)
            for r in self._reservations.values()
            if r.uid != claim and r.until > now
        ]
        for kind, type_id, hosts, taken_from, taken_to in blockers:
            other = self._event_types[type_id]  # its own buffers widen what it takes
            taken_from -= timedelta(minutes=other.before)
            taken_to += timedelta(minutes=other.after)
            if user_id in hosts and taken_from < hi and lo < taken_to:
                return kind
        return None

    def _free(
        self,
        user_id: int,
        start: datetime,
        end: datetime,
        et: _EventType,
        *,
        ignore: str | None = None,
        claim: str | None = None,
    ) -> bool:
        working = any(a <= start and end <= b for a, b in self._working(user_id, start, end))
        return working and self._busy(user_id, start, end, et, ignore=ignore, claim=claim) is None

    def _slot_starts(
        self, et: _EventType, lo: datetime, hi: datetime, length: int, *, ignore: str | None
    ) -> list[datetime]:
        """Slot starts in [lo, hi]: each working range stepped by slotInterval (else the length);
        after the minimum notice the grid restarts on the hour, as Cal.com's getSlots does."""
        earliest = self._now() + timedelta(minutes=et.notice)
        step = timedelta(minutes=et.slot_interval or length)
        duration = timedelta(minutes=length)
        per_host: list[set[datetime]] = []
        for host in self._hosts(et):
            zone = ZoneInfo(self._users[host].time_zone)
            starts: set[datetime] = set()
            for begin, finish in self._working(host, lo, hi + duration):
                moment = begin if begin >= earliest else _align(earliest, step, zone)
                while moment + duration <= finish and moment <= hi:
                    end = moment + duration
                    if moment >= lo and self._busy(host, moment, end, et, ignore=ignore) is None:
                        starts.add(moment)
                    moment += step
            per_host.append(starts)
        if et.scheduling == "collective":
            return sorted(per_host[0].intersection(*per_host[1:])) if per_host else []
        return sorted(set[datetime]().union(*per_host))

    def _next_working_day(self, user_id: int, day: date) -> date:
        schedule = self._users[user_id].schedule
        while schedule is not None and not schedule.ranges(day):
            day += timedelta(days=1)
        return day
