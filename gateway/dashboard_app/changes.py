"""Staff book, move and cancel on the client's behalf from the Dashboard App.

The calendar is changed here, at once, so that staff see the answer (a time taken meanwhile is
409); what the client is told, the note for staff and the client's list of bookings follow in
the worker that owns the client's conversation (source "dashboard", kind "changed"). A move or
a cancellation is marked as the chat's own first (`CalcomCalendar.changing`): Cal.com's webhook
about it then tells the client nothing twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.ports import (
    AttendeeRejected,
    BookingRequest,
    BookingUncertain,
    CalendarUnavailable,
    SlotTaken,
    Visit,
)
from gateway.dashboard_app.agents import Refused
from gateway.dashboard_app.desk import SOURCE, StaffDesk
from gateway.pipeline.inbox import Event

# How long a press of Book is remembered (a retry comes within seconds, a second tab later).
PRESS_SECONDS = 24 * 3600


async def book(desk: StaffDesk, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    service, start, master = _slot(body)
    request_id = body.get("request")
    # The page names each press: pressing again (or a retried request) books nothing twice.
    if (
        not isinstance(request_id, str)
        or not 8 <= len(request_id) <= 40
        or not request_id.isalnum()
    ):
        raise Refused(400, "request must be the page's id of this press (8-40 letters and digits)")
    client = desk.client(claims)
    pressed = desk.proposals.keys.staff_press(request_id)
    made = await desk.proposals.redis.get(pressed)
    if made is not None:
        return {"uid": made.decode() if isinstance(made, bytes) else str(made)}
    details = await desk.details(client, int(claims["cw"]))
    await _free(desk, service, master, start, None)
    session = await desk.sessions.load(client)
    request = BookingRequest(
        key=f"{client.key}:staff:{request_id}",
        client=client,
        service_key=service,
        master_id=master,
        start=start,
        locale=session.locale or session.app_language or "en",
        **details,
    )
    try:
        visit = await desk.calendar.book(request)
    except SlotTaken as exc:
        raise Refused(409, "that time was just taken") from exc
    except AttendeeRejected as exc:
        raise Refused(422, f"the calendar refused the client's {exc.field}") from exc
    except BookingUncertain as exc:
        raise Refused(503, "the calendar did not say: press again (nothing books twice)") from exc
    except CalendarUnavailable as exc:
        raise Refused(503, "the calendar cannot be reached now") from exc
    await desk.proposals.redis.set(pressed, visit.uid, ex=PRESS_SECONDS)
    await _tell(desk, claims, "booked", visit, None, request_id)
    return {"uid": visit.uid}


async def move(desk: StaffDesk, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    uid = await _clients_visit(desk, claims, body)
    try:
        current = await desk.calendar.visit(uid)
    except CalendarUnavailable as exc:
        raise Refused(503, "the calendar cannot be reached now") from exc
    if current is None or not current.active or current.service_key is None:
        raise Refused(409, "that visit is no longer on")
    start = _start(body.get("start"))
    await _free(desk, current.service_key, current.master_id, start, uid)
    try:
        visit = await desk.calendar.reschedule(uid, start)
    except SlotTaken as exc:
        raise Refused(409, "that time was just taken") from exc
    except CalendarUnavailable as exc:
        raise Refused(503, "the calendar cannot be reached now") from exc
    await _tell(desk, claims, "moved", visit, uid, f"{uid}:{start:%Y%m%d%H%M}")
    return {"uid": visit.uid}


async def cancel(desk: StaffDesk, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    uid = await _clients_visit(desk, claims, body)
    reason = f"Cancelled by {claims['name']} (salon staff) for the client"
    try:
        visit = await desk.calendar.cancel(uid, reason)
    except CalendarUnavailable as exc:
        raise Refused(503, "the calendar cannot be reached now") from exc
    await _tell(desk, claims, "cancelled", visit, uid, uid)
    return {"uid": visit.uid}


async def _clients_visit(desk: StaffDesk, claims: dict[str, Any], body: dict[str, Any]) -> str:
    """The uid in the body, when it is one of this client's bookings (no one else's)."""
    uid = body.get("uid")
    session = await desk.sessions.load(desk.client(claims))
    if not isinstance(uid, str) or uid not in session.bookings:
        raise Refused(404, "no such booking of this client")
    return uid


async def _free(
    desk: StaffDesk, service: str, master: int | None, start: datetime, moving: str | None
) -> None:
    try:
        free = await desk.free_at(service, master, start, moving)
    except CalendarUnavailable as exc:
        raise Refused(503, "the calendar cannot be reached now") from exc
    if not free:
        raise Refused(409, f"{start.isoformat()} is not free now")


async def _tell(
    desk: StaffDesk,
    claims: dict[str, Any],
    change: str,
    visit: Visit,
    previous: str | None,
    name: str,
) -> None:
    body = {
        "kind": "changed",
        "change": change,
        "staff": claims["name"],
        "uid": visit.uid,
        "previous": previous,
        "service": visit.service,
        "start": visit.start.isoformat(),
        "master": visit.master,
    }
    raw = json.dumps(body, ensure_ascii=False).encode()
    await desk.inbox.put(Event(SOURCE, f"{change}:{name}", str(claims["conv"]), raw))


def _slot(body: dict[str, Any]) -> tuple[str, datetime, int | None]:
    service, master = body.get("service"), body.get("master_id")
    if not isinstance(service, str):
        raise Refused(400, "send a service")
    if master is not None and (isinstance(master, bool) or not isinstance(master, int)):
        raise Refused(400, "master_id must be a whole number")
    return service, _start(body.get("start")), master


def _start(value: Any) -> datetime:
    try:
        start = datetime.fromisoformat(str(value))
        if start.tzinfo is None:
            raise Refused(400, "start needs its offset")
        # "9999-12-31T23:00-05:00" is past the last datetime in UTC: OverflowError.
        return start.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise Refused(400, "start is not an ISO time") from exc
