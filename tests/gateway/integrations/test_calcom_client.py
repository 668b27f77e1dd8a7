"""The Cal.com API v2 client against respx, every request checked against the vendor spec.

Payloads are shaped after `shared/contracts/calcom-novu-metabase.md` §1 (the booking example of
§1.6, the slots example of §1.5, the error filter of §1.2). Each test's requests are validated
against `calcom-v2.openapi.json` when it is present (see `api` below).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from gateway.integrations.calcom.api import (
    IDEMPOTENCY_METADATA_KEY,
    VERSION_BOOKINGS,
    VERSION_EVENT_TYPES,
    VERSION_SLOTS,
    BookingUncertain,
    CalcomClient,
    CalcomError,
    CalcomRejected,
    CalcomUnavailable,
    RateLimited,
    SlotTaken,
    api_root,
    is_failure,
)
from gateway.pipeline.resilience import CircuitBreaker, State
from gateway.sandbox.spec import Spec, load_spec
from tests.support.clock import Clock
from tests.support.openapi import request_problems

SPEC_PATH = (
    Path(__file__).resolve().parents[3].parent / "shared" / "contracts" / "calcom-v2.openapi.json"
)
SPEC_MISSING = f"vendor spec not found at {SPEC_PATH}: request conformance is not checked"

BASE = "https://cal.example/api/v2"
KEY = "cal_live_0123456789abcdef"
MOSCOW = ZoneInfo("Europe/Moscow")
START = datetime(2025, 6, 10, 10, 0, tzinfo=MOSCOW)  # 07:00Z
EVENT_TYPE_ID = 1234567


# --- fixtures ---------------------------------------------------------------------------------


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="session")
def spec() -> Spec | None:
    return load_spec(SPEC_PATH) if SPEC_PATH.is_file() else None


def conformance_problems(spec: Spec, calls: respx.models.CallList) -> list[str]:
    problems: list[str] = []
    for call in calls:
        path = call.request.url.path
        prefix = path[: path.index("/v2/")] if "/v2/" in path else ""
        problems += request_problems(spec, call.request, prefix=prefix)
    return problems


@pytest.fixture
def api(spec: Spec | None) -> Iterator[respx.MockRouter]:
    """A fake Cal.com at BASE. After the test, every request the client sent must be one the
    vendor spec accepts (checked only when the spec file is present)."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router
        # Inside the block: respx forgets its calls on exit.
        if spec is not None:
            assert conformance_problems(spec, router.calls) == []


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(
        "calcom", fail_max=3, reset_timeout=30.0, is_failure=is_failure, clock=clock
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(breaker: CircuitBreaker, sleeps: Sleeps) -> AsyncIterator[CalcomClient]:
    async with CalcomClient(BASE, KEY, breaker=breaker, timeout=2.0, sleep=sleeps) as calcom:
        yield calcom


# --- real-shaped payloads ---------------------------------------------------------------------


def ok(data: Any, status: int = 200, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"status": "success", "data": data, **extra})


def error(status: int, code: str, message: str) -> httpx.Response:
    # §1.2: Nest's HttpExceptionFilter.
    return httpx.Response(
        status,
        json={
            "status": "error",
            "timestamp": "2025-06-01T10:00:00.000Z",
            "path": "/v2/bookings",
            "error": {"code": code, "message": message},
        },
    )


def page(items: list[dict[str, Any]], *, more: bool = False) -> httpx.Response:
    return ok(
        items,
        pagination={
            "totalItems": len(items) + (1 if more else 0),
            "remainingItems": 1 if more else 0,
            "returnedItems": len(items),
            "itemsPerPage": 100,
            "currentPage": 1,
            "totalPages": 2 if more else 1,
            "hasNextPage": more,
            "hasPreviousPage": False,
        },
    )


def booking_json(
    uid: str = "6Kfwv6VsmCYKEBaQzuWfZg",
    *,
    start: str = "2025-06-10T07:00:00.000Z",
    end: str = "2025-06-10T08:00:00.000Z",
    status: str = "accepted",
    key: str | None = "k-1",
    **extra: Any,
) -> dict[str, Any]:
    metadata = {"channel": "telegram", "tg_chat_id": "123456789"}
    if key is not None:
        metadata[IDEMPOTENCY_METADATA_KEY] = key
    return {
        "id": 987654,
        "uid": uid,
        "title": "Manicure between Salon and Anna K.",
        "description": "",
        "hosts": [
            {
                "id": 11,
                "name": "Salon",
                "email": "owner@salon.tld",
                "displayEmail": "owner@salon.tld",
                "username": "salon",
                "timeZone": "Europe/Moscow",
            }
        ],
        "status": status,
        "start": start,
        "end": end,
        "duration": 60,
        "eventTypeId": EVENT_TYPE_ID,
        "eventType": {"id": EVENT_TYPE_ID, "slug": "manicure"},
        "location": "ul. Tverskaya 1, Moscow",
        "absentHost": False,
        "createdAt": "2025-06-01T12:00:00.000Z",
        "updatedAt": "2025-06-01T12:00:00.000Z",
        "metadata": metadata,
        "attendees": [
            {
                "name": "Anna K.",
                "email": "anna@example.com",
                "displayEmail": "anna@example.com",
                "timeZone": "Europe/Moscow",
                "language": "ru",
                "absent": False,
                "phoneNumber": "+79161234567",
            }
        ],
        "guests": [],
        "bookingFieldsResponses": {"name": "Anna K."},
        **extra,
    }


def event_type_json(**extra: Any) -> dict[str, Any]:
    return {
        "id": EVENT_TYPE_ID,
        "lengthInMinutes": 60,
        "title": "Manicure",
        "slug": "manicure",
        "description": "Classic manicure",
        "locations": [{"type": "address", "address": "ul. Tverskaya 1", "public": True}],
        "bookingFields": [],
        "disableGuests": True,
        "recurrence": None,
        "metadata": {"category": "nails", "price": "1500"},
        "price": 0,
        "currency": "usd",
        "lockTimeZoneToggleOnBookingPage": False,
        "forwardParamsSuccessRedirect": None,
        "successRedirectUrl": None,
        "isInstantEvent": False,
        "scheduleId": None,
        "hidden": False,
        "bookingRequiresAuthentication": False,
        "ownerId": 11,
        "users": [{"id": 11, "name": "Salon", "username": "salon"}],
        "someFutureField": {"x": 1},
        **extra,
    }


async def create(client: CalcomClient, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "idempotency_key": "k-1",
        "time_zone": "Europe/Moscow",
        "language": "ru",
        "phone": "+79161234567",
        "metadata": {"channel": "telegram", "tg_chat_id": "123456789"},
    }
    args.update(overrides)
    return await client.create_booking(EVENT_TYPE_ID, START, "Anna K.", **args)


def sent_json(route: respx.Route, index: int = -1) -> Any:
    return json.loads(route.calls[index].request.content)


# --- base URL and headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("https://cal.example/api/v2", "https://cal.example/api/v2/event-types"),
        ("https://cal.example/api/v2/", "https://cal.example/api/v2/event-types"),
        ("https://cal.example/api", "https://cal.example/api/v2/event-types"),
        ("https://api.cal.com", "https://api.cal.com/v2/event-types"),
        ("https://api.cal.com/v2", "https://api.cal.com/v2/event-types"),
        ("http://localhost:5555/", "http://localhost:5555/v2/event-types"),
    ],
)
async def test_base_url_gets_v2_exactly_once(
    configured: str, expected: str, breaker: CircuitBreaker, spec: Spec | None
) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.get(expected).mock(return_value=ok([]))
        async with CalcomClient(configured, KEY, breaker=breaker) as calcom:
            assert await calcom.event_types() == []
        assert route.call_count == 1
        if spec is not None:
            assert conformance_problems(spec, router.calls) == []


@pytest.mark.parametrize("bad", ["cal.example/api", "ftp://cal.example", ""])
def test_base_url_must_be_http(bad: str) -> None:
    with pytest.raises(ValueError, match="http"):
        api_root(bad)


async def test_every_family_gets_its_version_header_and_bearer_auth(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/event-types").mock(return_value=ok([]))
    api.get("/teams/5/event-types").mock(return_value=ok([]))
    api.get("/slots").mock(return_value=ok({}))
    api.post("/slots/reservations").mock(
        return_value=error(404, "NotFoundException", "Cannot POST")
    )
    api.get("/bookings/abc").mock(return_value=ok(booking_json("abc")))

    await client.event_types()
    await client.event_types(team_id=5)
    await client.slots(EVENT_TYPE_ID, START, START + timedelta(days=1), "Europe/Moscow")
    await client.reserve(EVENT_TYPE_ID, START)
    await client.booking("abc")

    seen = {(c.request.method, c.request.url.path): c.request.headers for c in api.calls}
    assert seen[("GET", "/api/v2/event-types")]["cal-api-version"] == VERSION_EVENT_TYPES
    assert seen[("GET", "/api/v2/teams/5/event-types")]["cal-api-version"] == VERSION_EVENT_TYPES
    assert seen[("GET", "/api/v2/slots")]["cal-api-version"] == VERSION_SLOTS
    assert seen[("POST", "/api/v2/slots/reservations")]["cal-api-version"] == VERSION_SLOTS
    assert seen[("GET", "/api/v2/bookings/abc")]["cal-api-version"] == VERSION_BOOKINGS
    assert {h["authorization"] for h in seen.values()} == {f"Bearer {KEY}"}
    # Every call carries a bounded timeout.
    for call in api.calls:
        timeout = call.request.extensions["timeout"]
        assert timeout["read"] == 2.0
        assert timeout["connect"] == 2.0


# --- envelopes and models ---------------------------------------------------------------------


async def test_event_types_are_parsed_tolerantly(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    team_type = event_type_json(
        id=77,
        slug="haircut",
        title="Haircut",
        ownerId=None,
        users=None,
        teamId=5,
        schedulingType="roundRobin",
        hosts=[{"userId": 21, "name": "Olga", "username": "olga"}, "22"],
        metadata={"category": "hair"},
        price=150000,
        currency="rub",
    )
    broken = {"id": 3, "title": "no slug, no length"}
    api.get("/event-types").mock(return_value=ok([event_type_json(), team_type, broken]))

    manicure, haircut = await client.event_types()

    assert (manicure.id, manicure.slug, manicure.length_in_minutes) == (
        EVENT_TYPE_ID,
        "manicure",
        60,
    )
    assert manicure.category == "nails"
    assert manicure.listed_price == "1500"
    assert manicure.owner_id == 11
    assert manicure.users[0].username == "salon"
    assert manicure.model_extra == {
        "locations": [{"type": "address", "address": "ul. Tverskaya 1", "public": True}],
        "bookingFields": [],
        "disableGuests": True,
        "lockTimeZoneToggleOnBookingPage": False,
        "isInstantEvent": False,
        "bookingRequiresAuthentication": False,
        "someFutureField": {"x": 1},
    }
    assert haircut.team_id == 5
    assert [h.id for h in haircut.hosts] == [21, 22]
    assert haircut.users == []
    assert haircut.listed_price == "150000"  # Cal.com's own price when metadata has none


async def test_event_type_by_id_and_unknown_ones(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get(f"/event-types/{EVENT_TYPE_ID}").mock(return_value=ok(event_type_json()))
    api.get("/event-types/404").mock(
        return_value=error(404, "NotFoundException", "Event type not found")
    )
    api.get("/event-types/405").mock(return_value=ok(None))
    api.get(f"/teams/5/event-types/{EVENT_TYPE_ID}").mock(return_value=ok(event_type_json()))

    found = await client.event_type(EVENT_TYPE_ID)
    assert found is not None
    assert found.title == "Manicure"
    assert await client.event_type(404) is None
    assert await client.event_type(405) is None
    assert await client.event_type(EVENT_TYPE_ID, team_id=5) is not None


async def test_booking_status_is_lowercased_and_times_are_aware_utc(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    data = booking_json(
        "abc",
        status="ACCEPTED",
        start="2025-06-10T10:00:00.000+03:00",
        end="2025-06-10T11:00:00+03:00",
        eventTypeId=None,
        rescheduledFromUid="old-uid",
    )
    api.get("/bookings/abc").mock(return_value=ok(data))

    booking = await client.booking("abc")

    assert booking is not None
    assert booking.status == "accepted"
    assert booking.start == datetime(2025, 6, 10, 7, 0, tzinfo=UTC)
    assert booking.start.tzinfo is UTC
    assert booking.end.tzinfo is UTC
    assert booking.event_type_id == EVENT_TYPE_ID  # from eventType.id when the field is null
    assert booking.attendees[0].phone_number == "+79161234567"
    assert booking.hosts[0].time_zone == "Europe/Moscow"
    assert booking.rescheduled_from_uid == "old-uid"
    assert booking.idempotency_key == "k-1"


async def test_a_recurring_series_uid_reads_as_its_first_occurrence(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    later = booking_json("occ-2", start="2025-06-17T07:00:00.000Z", end="2025-06-17T08:00:00.000Z")
    first = booking_json("occ-1")
    api.get("/bookings/series").mock(return_value=ok([later, first]))
    booking = await client.booking("series")
    assert booking is not None
    assert booking.uid == "occ-1"


async def test_validation_errors_keep_their_details(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    api.post("/bookings").mock(
        return_value=httpx.Response(
            400,
            json={
                "status": "error",
                "error": {
                    "code": "BadRequestException",
                    "message": ["attendee.phoneNumber must be a valid phone number"],
                },
            },
        )
    )
    with pytest.raises(CalcomRejected) as exc:
        await create(client)
    assert "must be a valid phone number" in exc.value.message


async def test_error_envelope_becomes_a_typed_rejection(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings/missing").mock(return_value=error(404, "NotFoundException", "not found"))
    api.get("/bookings/forbidden").mock(
        return_value=error(403, "ForbiddenException", "not your booking")
    )
    api.get("/bookings/html").mock(return_value=httpx.Response(400, text="<html>bad</html>"))

    assert await client.booking("missing") is None
    with pytest.raises(CalcomRejected) as rejected:
        await client.booking("forbidden")
    assert (rejected.value.status, rejected.value.code) == (403, "ForbiddenException")
    assert rejected.value.message == "not your booking"
    assert not isinstance(rejected.value, SlotTaken)
    with pytest.raises(CalcomRejected) as html:
        await client.booking("html")
    assert html.value.message == "<html>bad</html>"


async def test_a_success_without_envelope_is_not_trusted(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    api.get("/event-types").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(CalcomUnavailable) as exc:
        await client.event_types()
    assert exc.value.code == "bad_response"


# --- slots ------------------------------------------------------------------------------------


async def test_slots_send_utc_instants_and_group_by_the_salon_day(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    # Grouped by Cal.com under a key in another zone: the client regroups by the Moscow date.
    api.get("/slots").mock(
        return_value=ok(
            {
                "2025-06-10": [
                    {
                        "start": "2025-06-10T10:00:00.000+03:00",
                        "end": "2025-06-10T11:00:00.000+03:00",
                    },
                    {
                        "start": "2025-06-10T09:00:00.000+03:00",
                        "end": "2025-06-10T10:00:00.000+03:00",
                    },
                    {
                        "start": "2025-06-11T01:00:00.000+03:00",
                        "end": "2025-06-11T02:00:00.000+03:00",
                    },
                ],
                "2025-06-11": [
                    {
                        "start": "2025-06-11T09:00:00.000+03:00",
                        "end": "2025-06-11T10:00:00.000+03:00",
                    }
                ],
            }
        )
    )
    day_start = datetime(2025, 6, 10, tzinfo=MOSCOW)

    slots = await client.slots(
        EVENT_TYPE_ID, day_start, day_start + timedelta(days=2), "Europe/Moscow"
    )

    sent = dict(api.calls.last.request.url.params)
    assert sent == {
        "eventTypeId": str(EVENT_TYPE_ID),
        "start": "2025-06-09T21:00:00Z",
        "end": "2025-06-11T21:00:00Z",
        "timeZone": "Europe/Moscow",
        "format": "range",
    }
    assert list(slots) == [date(2025, 6, 10), date(2025, 6, 11)]
    assert [s.start.hour for s in slots[date(2025, 6, 10)]] == [6, 7]  # UTC, sorted
    assert [s.start.hour for s in slots[date(2025, 6, 11)]] == [22, 6]
    for day in slots.values():
        for slot in day:
            assert slot.start.tzinfo is UTC
            assert slot.end.tzinfo is UTC
            assert slot.end - slot.start == timedelta(hours=1)


async def test_slots_across_a_dst_change(api: respx.MockRouter, client: CalcomClient) -> None:
    # Berlin leaves summer time on 2025-10-26: same local hour, different UTC hour.
    api.get("/slots").mock(
        return_value=ok(
            {
                "2025-10-25": [
                    {
                        "start": "2025-10-25T10:00:00.000+02:00",
                        "end": "2025-10-25T11:00:00.000+02:00",
                    }
                ],
                "2025-10-26": [
                    {
                        "start": "2025-10-26T10:00:00.000+01:00",
                        "end": "2025-10-26T11:00:00.000+01:00",
                    }
                ],
            }
        )
    )
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 10, 25, tzinfo=berlin)

    slots = await client.slots(EVENT_TYPE_ID, start, start + timedelta(days=2), "Europe/Berlin")

    assert [s.start for day in slots.values() for s in day] == [
        datetime(2025, 10, 25, 8, 0, tzinfo=UTC),
        datetime(2025, 10, 26, 9, 0, tzinfo=UTC),
    ]
    assert list(slots) == [date(2025, 10, 25), date(2025, 10, 26)]


async def test_slots_end_at_utc_midnight_is_pulled_back_and_options_are_sent(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/slots").mock(return_value=ok({}))
    start = datetime(2025, 6, 10, tzinfo=UTC)

    assert (
        await client.slots(
            EVENT_TYPE_ID,
            start,
            start + timedelta(days=1),
            "UTC",
            duration=90,
            booking_uid_to_reschedule="abc",
        )
        == {}
    )
    params = api.calls.last.request.url.params
    # §1.5: an end at exactly 00:00:00Z would be stretched to 23:59:59 of the 11th.
    assert params["end"] == "2025-06-10T23:59:59Z"
    assert params["duration"] == "90"
    assert params["bookingUidToReschedule"] == "abc"


async def test_slots_without_end_use_the_duration(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/slots").mock(return_value=ok({"2025-06-10": ["2025-06-10T09:00:00.000Z"]}))
    start = datetime(2025, 6, 10, tzinfo=UTC)
    slots = await client.slots(
        EVENT_TYPE_ID, start, start + timedelta(hours=12), "UTC", duration=30
    )
    (slot,) = slots[date(2025, 6, 10)]
    assert slot.end == datetime(2025, 6, 10, 9, 30, tzinfo=UTC)


async def test_naive_and_backwards_times_are_refused(client: CalcomClient) -> None:
    naive = datetime(2025, 6, 10, 10, 0)  # tests/** allow DTZ001: the point
    with pytest.raises(ValueError, match="aware"):
        await client.slots(EVENT_TYPE_ID, naive, naive, "UTC")
    with pytest.raises(ValueError, match="after"):
        await client.slots(EVENT_TYPE_ID, START, START, "UTC")
    with pytest.raises(ValueError, match="time zone"):
        await client.slots(EVENT_TYPE_ID, START, START + timedelta(hours=1), "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        await client.create_booking(
            EVENT_TYPE_ID,
            naive,
            "A",
            idempotency_key="k",
            time_zone="UTC",
            language="en",
            email="a@b.c",
        )


# --- reservations -----------------------------------------------------------------------------


async def test_release_takes_cal_coms_bare_success(client: CalcomClient) -> None:
    """deleteReservedSlot answers {"status": "success"} with no `data` (slots.controller.ts).
    Not checked against the spec file: its slots contract lists only POST /v2/slots/reservations,
    while Cal.com's controller serves GET, PATCH and DELETE /v2/slots/reservations/{uid}."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.delete("/slots/reservations/e84be5a3").mock(
            return_value=httpx.Response(200, json={"status": "success"})
        )
        await client.release("e84be5a3")
        assert route.call_count == 1
        router.delete("/slots/reservations/gone").mock(
            return_value=httpx.Response(500, json={"status": "error"})
        )
        with pytest.raises(CalcomError):
            await client.release("gone")


async def test_reserve_returns_the_hold(api: respx.MockRouter, client: CalcomClient) -> None:
    route = api.post("/slots/reservations").mock(
        return_value=ok(
            {
                "eventTypeId": EVENT_TYPE_ID,
                "slotStart": "2025-06-10T07:00:00.000Z",
                "slotEnd": "2025-06-10T08:00:00.000Z",
                "slotDuration": 60,
                "reservationUid": "e84be5a3-4696-49e3-acc7-b2f3999c3b94",
                "reservationDuration": 10,
                "reservationUntil": "2025-06-10T07:10:00.000Z",
            },
            status=201,
        )
    )

    held = await client.reserve(EVENT_TYPE_ID, START, duration=60, hold_minutes=10)

    assert held is not None
    assert held.uid == "e84be5a3-4696-49e3-acc7-b2f3999c3b94"
    assert held.until == datetime(2025, 6, 10, 7, 10, tzinfo=UTC)
    assert held.start == START
    assert sent_json(route) == {
        "eventTypeId": EVENT_TYPE_ID,
        "slotStart": "2025-06-10T07:00:00Z",
        "slotDuration": 60,
        "reservationDuration": 10,
    }


async def test_reserve_on_an_instance_without_the_endpoint_is_none(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.post("/slots/reservations").mock(
        return_value=httpx.Response(
            404, json={"message": "Cannot POST /v2/slots/reservations", "error": "Not Found"}
        )
    )
    assert await client.reserve(EVENT_TYPE_ID, START) is None


async def test_reserve_for_an_unknown_event_type_is_an_error(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.post("/slots/reservations").mock(
        return_value=error(404, "NotFoundException", "Event Type with ID=1 not found")
    )
    with pytest.raises(CalcomRejected) as exc:
        await client.reserve(1, START)
    assert exc.value.status == 404


@pytest.mark.parametrize(
    "message",
    [
        "This time slot is already reserved by another user. Please choose a different time.",
        "Can't reserve a slot if the event is already booked.",
    ],
)
async def test_reserve_of_a_held_slot_is_slot_taken(
    api: respx.MockRouter, client: CalcomClient, message: str
) -> None:
    api.post("/slots/reservations").mock(
        return_value=error(422, "UnprocessableEntityException", message)
    )
    with pytest.raises(SlotTaken):
        await client.reserve(EVENT_TYPE_ID, START)


# --- create booking ---------------------------------------------------------------------------


async def test_create_with_phone_only(api: respx.MockRouter, client: CalcomClient) -> None:
    lookup = api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(return_value=ok(booking_json(status="ACCEPTED"), status=201))

    booking = await create(client, phone="+7 (916) 123-45-67")

    assert booking.uid == "6Kfwv6VsmCYKEBaQzuWfZg"
    assert booking.status == "accepted"
    assert sent_json(post) == {
        "start": "2025-06-10T07:00:00Z",
        "eventTypeId": EVENT_TYPE_ID,
        "attendee": {
            "name": "Anna K.",
            "timeZone": "Europe/Moscow",
            "language": "ru",
            "phoneNumber": "+79161234567",
        },
        "metadata": {"channel": "telegram", "tg_chat_id": "123456789", "frontdesk_key": "k-1"},
    }
    # The booking was looked for by its key first (a redelivered job must not book twice).
    params = lookup.calls[0].request.url.params
    assert params["eventTypeId"] == str(EVENT_TYPE_ID)
    assert params["afterStart"] == "2025-06-10T06:59:00Z"
    assert params["beforeEnd"] == "2025-06-11T07:00:00Z"


async def test_create_with_email_only_and_a_reservation(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(return_value=ok(booking_json(), status=201))

    await create(
        client, phone=None, email=" anna@example.com ", language="en", reservation_uid="r-1"
    )

    body = sent_json(post)
    assert body["attendee"] == {
        "name": "Anna K.",
        "timeZone": "Europe/Moscow",
        "language": "en",
        "email": "anna@example.com",
    }
    # The hold travels as Cal.com's `uid` cookie, not as a body field the 2024-08-13 body
    # validation (forbidNonWhitelisted) may refuse.
    assert "reservedSlotUid" not in body
    assert post.calls[0].request.headers["cookie"] == "uid=r-1"


async def test_whatsapp_ids_become_international_numbers(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(return_value=ok(booking_json(), status=201))
    await create(client, phone="79161234567")
    assert sent_json(post)["attendee"]["phoneNumber"] == "+79161234567"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"phone": None, "email": None}, "email or a phone"),
        ({"phone": "12"}, "international"),
        ({"language": "klingon"}, "language"),
        ({"time_zone": "Moscow"}, "time zone"),
        ({"metadata": {f"k{i}": "v" for i in range(50)}}, "at most 50 keys"),
        ({"metadata": {"k" * 41: "v"}}, "1-40 characters"),
        ({"metadata": {"note": "x" * 501}}, "at most 500"),
        ({"metadata": {"n": 1}}, "string"),
        ({"metadata": {IDEMPOTENCY_METADATA_KEY: "other"}}, "differs"),
        ({"idempotency_key": ""}, "idempotency key"),
        ({"reservation_uid": "a;b"}, "reservation uid"),
    ],
)
async def test_create_refuses_what_cal_com_would_refuse_before_sending(
    api: respx.MockRouter, client: CalcomClient, overrides: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        await create(client, **overrides)
    assert api.calls.call_count == 0


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "BadRequestException",
            "User either already has booking at this time or is not available",
        ),
        (
            400,
            "BadRequestException",
            "One of the hosts either already has booking at this time or is not available",
        ),
        (400, "BadRequestException", "no_available_users_found_error"),
        (
            409,
            "ConflictException",
            "Someone else reserved this booking time slot before you. This time slot will be "
            "freed up in 120 seconds.",
        ),
        (409, "CONFLICT", "Invalid Input: Trying to create a record that already exists."),
        (400, "BadRequestException", "Attempting to book a meeting in the past."),
    ],
)
async def test_slot_no_longer_free_is_slot_taken(
    api: respx.MockRouter, client: CalcomClient, status: int, code: str, message: str
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(return_value=error(status, code, message))
    with pytest.raises(SlotTaken) as exc:
        await create(client)
    assert (exc.value.status, exc.value.code, exc.value.message) == (status, code, message)
    assert post.call_count == 1


async def test_other_rejections_are_not_slot_taken(
    api: respx.MockRouter, client: CalcomClient, breaker: CircuitBreaker
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    api.post("/bookings").mock(
        return_value=error(
            400,
            "BadRequestException",
            "Missing attendee phone number - it is required by the event type. "
            'Pass it as "attendee.phoneNumber" string in the request.',
        )
    )
    with pytest.raises(CalcomRejected) as exc:
        await create(client, phone=None, email="anna@example.com")
    assert type(exc.value) is CalcomRejected
    assert "phone number" in exc.value.message


async def test_create_after_a_timeout_finds_the_booking_instead_of_booking_twice(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    someone_else = booking_json("other", key="k-other")
    mine = booking_json("mine", key="k-1")
    lookup = api.get("/bookings").mock(side_effect=[page([]), page([someone_else, mine])])
    post = api.post("/bookings").mock(side_effect=httpx.ReadTimeout("no answer"))

    booking = await create(client)

    assert booking.uid == "mine"
    assert post.call_count == 1
    assert lookup.call_count == 2


async def test_create_after_a_5xx_retries_once_when_certainly_absent(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    lookup = api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(
        side_effect=[
            error(500, "INTERNAL_SERVER_ERROR", "There was an error, please try again later."),
            ok(booking_json(), status=201),
        ]
    )

    booking = await create(client)

    assert booking.uid == "6Kfwv6VsmCYKEBaQzuWfZg"
    assert post.call_count == 2
    assert lookup.call_count == 2  # before the first post, and after the 500
    assert sent_json(post, 0) == sent_json(post, 1)


async def test_create_when_the_lookup_fails_too_is_uncertain_not_repeated(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    failures: list[httpx.Response | Exception] = [httpx.ConnectError("down")] * 6
    api.get("/bookings").mock(side_effect=[page([]), *failures])
    post = api.post("/bookings").mock(side_effect=httpx.ReadTimeout("no answer"))

    with pytest.raises(BookingUncertain) as exc:
        await create(client)

    assert exc.value.idempotency_key == "k-1"
    assert isinstance(exc.value, CalcomUnavailable)  # "the calendar is unreachable" to the user
    assert post.call_count == 1


async def test_create_that_never_left_is_retried_without_a_lookup(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    lookup = api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(
        side_effect=[httpx.ConnectError("refused"), ok(booking_json(), status=201)]
    )
    await create(client)
    assert post.call_count == 2
    assert lookup.call_count == 1


async def test_create_twice_failing_ambiguously_is_uncertain(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(BookingUncertain):
        await create(client)
    assert post.call_count == 2


async def test_create_whose_first_attempt_committed_late(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    # The timed-out first post commits while the lookup runs; the retry then collides with it.
    api.get("/bookings").mock(side_effect=[page([]), page([]), page([booking_json("late")])])
    post = api.post("/bookings").mock(
        side_effect=[
            httpx.ReadTimeout("no answer"),
            error(409, "CONFLICT", "Invalid Input: Trying to create a record that already exists."),
        ]
    )
    booking = await create(client)
    assert booking.uid == "late"
    assert post.call_count == 2


async def test_create_slot_taken_after_an_ambiguous_attempt_is_checked_then_raised(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    lookup = api.get("/bookings").mock(return_value=page([]))
    api.post("/bookings").mock(
        side_effect=[
            httpx.ReadTimeout("no answer"),
            error(400, "BadRequestException", "no_available_users_found_error"),
        ]
    )
    with pytest.raises(SlotTaken):
        await create(client)
    assert lookup.call_count == 3  # before, after the timeout, after the refusal


async def test_create_of_a_redelivered_job_does_not_post(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(
        return_value=page([booking_json("cancelled-one", status="cancelled"), booking_json("mine")])
    )
    post = api.post("/bookings").mock(return_value=ok(booking_json(), status=201))
    booking = await create(client)
    assert booking.uid == "mine"  # the active one wins
    assert post.call_count == 0


async def test_create_with_an_open_breaker_is_unavailable_and_certainly_not_booked(
    api: respx.MockRouter, client: CalcomClient, breaker: CircuitBreaker
) -> None:
    lookup = api.get("/bookings").mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(CalcomUnavailable) as exc:
        await create(client)
    assert not isinstance(exc.value, BookingUncertain)
    assert breaker.state is State.OPEN
    with pytest.raises(CalcomUnavailable) as again:
        await create(client)
    assert again.value.code == "circuit_open"
    assert again.value.sent is False
    assert lookup.call_count == 3


# --- rate limits ------------------------------------------------------------------------------


def throttled(**headers: str) -> httpx.Response:
    response = error(429, "ThrottlerException", "ThrottlerException: Too Many Requests")
    response.headers.update(headers)
    return response


async def test_429_is_waited_out_and_the_budget_recorded(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    api.get("/event-types").mock(
        side_effect=[
            throttled(**{"Retry-After": "2", "X-RateLimit-Remaining-Default": "0"}),
            httpx.Response(
                200,
                json={"status": "success", "data": []},
                headers={
                    "X-RateLimit-Limit-Default": "120",
                    "X-RateLimit-Remaining-Default": "119",
                    "X-RateLimit-Reset-Default": "60",
                },
            ),
        ]
    )

    assert await client.event_types() == []

    assert sleeps == [2.0]
    budget = client.rate_budget
    assert budget is not None
    assert (budget.name, budget.limit, budget.remaining, budget.reset_after) == (
        "default",
        120,
        119,
        60,
    )


async def test_429_uses_the_reset_header_when_there_is_no_retry_after(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    api.get("/bookings/abc").mock(
        side_effect=[throttled(**{"X-RateLimit-Reset-Default": "3"}), ok(booking_json("abc"))]
    )
    assert await client.booking("abc") is not None
    assert sleeps == [3.0]


async def test_429_with_a_long_wait_is_not_slept_through(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps, breaker: CircuitBreaker
) -> None:
    api.get("/event-types").mock(return_value=throttled(**{"X-RateLimit-Reset-Default": "45"}))
    with pytest.raises(RateLimited) as exc:
        await client.event_types()
    assert exc.value.retry_after == 45
    assert exc.value.status == 429
    assert sleeps == []
    assert breaker.state is State.CLOSED  # being throttled is not being down


async def test_429_on_a_booking_is_repeated_because_it_had_no_effect(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(
        side_effect=[throttled(**{"Retry-After": "1"}), ok(booking_json(), status=201)]
    )
    await create(client)
    assert post.call_count == 2
    assert sleeps == [1.0]


async def test_429_reset_as_an_epoch_or_retry_after_as_a_date(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    soon = time.time() + 5
    api.get("/bookings/abc").mock(
        side_effect=[
            throttled(**{"X-RateLimit-Reset-Default": str(int(soon * 1000))}),
            ok(booking_json("abc")),
        ]
    )
    api.get("/bookings/def").mock(
        side_effect=[
            throttled(
                **{"Retry-After": email.utils.format_datetime(datetime.now(UTC), usegmt=True)}
            ),
            ok(booking_json("def")),
        ]
    )
    await client.booking("abc")
    await client.booking("def")
    assert 3 < sleeps[0] <= 5
    assert sleeps[1] == 0


async def test_a_throttled_booking_is_rate_limited_not_uncertain(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings").mock(return_value=page([]))
    post = api.post("/bookings").mock(return_value=throttled())
    with pytest.raises(RateLimited) as exc:
        await create(client)
    assert exc.value.retry_after == 60.0  # §1.3: no usable header, back off about a minute
    assert exc.value.sent is False
    assert post.call_count == 1


async def test_a_low_budget_is_logged(
    api: respx.MockRouter, client: CalcomClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.get("/event-types").mock(
        return_value=httpx.Response(
            200,
            json={"status": "success", "data": []},
            headers={"X-RateLimit-Limit-Default": "120", "X-RateLimit-Remaining-Default": "3"},
        )
    )
    with caplog.at_level(logging.WARNING, logger="gateway.integrations.calcom.api"):
        await client.event_types()
    assert "3 of 120 left" in caplog.text


# --- transient failures and the breaker --------------------------------------------------------


async def test_get_is_retried_on_500_then_succeeds(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    route = api.get("/event-types").mock(
        side_effect=[
            error(500, "InternalServerErrorException", "boom"),
            error(502, "BadGateway", "upstream"),
            ok([event_type_json()]),
        ]
    )
    assert len(await client.event_types()) == 1
    assert route.call_count == 3
    assert sleeps == [0.3, 0.6]


@pytest.mark.parametrize(
    ("failure", "code", "status"),
    [
        (error(503, "ServiceUnavailable", "maintenance"), "ServiceUnavailable", 503),
        (httpx.ReadTimeout("slow"), "timeout", None),
        (httpx.ConnectError("refused"), "connect", None),
        (httpx.RemoteProtocolError("dropped"), "connection", None),
    ],
)
async def test_get_that_keeps_failing_is_unavailable(
    api: respx.MockRouter,
    client: CalcomClient,
    failure: httpx.Response | Exception,
    code: str,
    status: int | None,
) -> None:
    route = api.get("/bookings/abc")
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    with pytest.raises(CalcomUnavailable) as exc:
        await client.booking("abc")
    assert (exc.value.code, exc.value.status) == (code, status)
    assert route.call_count == 3  # the first try and two retries


async def test_breaker_opens_after_repeated_5xx(
    api: respx.MockRouter, client: CalcomClient, breaker: CircuitBreaker, clock: Clock
) -> None:
    route = api.get("/event-types").mock(
        return_value=error(500, "InternalServerErrorException", "x")
    )
    with pytest.raises(CalcomUnavailable):
        await client.event_types()
    assert breaker.state is State.OPEN
    assert route.call_count == 3

    with pytest.raises(CalcomUnavailable) as exc:
        await client.event_types()
    assert exc.value.code == "circuit_open"
    assert exc.value.retry_after == 30.0
    assert route.call_count == 3  # nothing reached Cal.com

    clock.now += 30
    route.mock(return_value=ok([]))
    assert await client.event_types() == []  # the trial call closes it again
    assert state_of(breaker) is State.CLOSED


async def test_breaker_stays_closed_on_4xx(
    api: respx.MockRouter, client: CalcomClient, breaker: CircuitBreaker
) -> None:
    route = api.post("/bookings/abc/cancel").mock(
        return_value=error(403, "ForbiddenException", "not yours")
    )
    for _ in range(10):
        with pytest.raises(CalcomRejected):
            await client.cancel("abc")
    assert breaker.state is State.CLOSED
    assert route.call_count == 10  # and a 4xx is never retried


def state_of(breaker: CircuitBreaker) -> State:
    return breaker.state


def test_breaker_predicate() -> None:
    assert is_failure(CalcomUnavailable("x", status=500))
    assert not is_failure(CalcomRejected("x", status=400))
    assert not is_failure(RateLimited("x", status=429))
    assert not is_failure(ValueError())


# --- reschedule and cancel --------------------------------------------------------------------


async def test_reschedule_returns_the_new_booking(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings/old").mock(return_value=ok(booking_json("old")))
    new_start = START + timedelta(days=1)
    post = api.post("/bookings/old/reschedule").mock(
        return_value=ok(
            booking_json(
                "new",
                start="2025-06-11T07:00:00.000Z",
                end="2025-06-11T08:00:00.000Z",
                rescheduledFromUid="old",
            ),
            status=201,
        )
    )

    booking = await client.reschedule("old", new_start, "Client asked via Telegram")

    assert (booking.uid, booking.rescheduled_from_uid) == ("new", "old")
    assert sent_json(post) == {
        "start": "2025-06-11T07:00:00Z",
        "reschedulingReason": "Client asked via Telegram",
    }


async def test_reschedule_after_a_timeout_finds_the_new_booking(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    new_start = START + timedelta(days=1)
    api.get("/bookings/old").mock(
        side_effect=[
            ok(booking_json("old")),
            ok(booking_json("old", status="cancelled", rescheduledToUid="new")),
        ]
    )
    api.get("/bookings/new").mock(
        return_value=ok(
            booking_json("new", start="2025-06-11T07:00:00.000Z", end="2025-06-11T08:00:00.000Z")
        )
    )
    post = api.post("/bookings/old/reschedule").mock(side_effect=httpx.ReadTimeout("slow"))

    booking = await client.reschedule("old", new_start)

    assert booking.uid == "new"
    assert post.call_count == 1


async def test_reschedule_already_done_is_not_repeated(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.get("/bookings/old").mock(
        return_value=ok(booking_json("old", status="cancelled", rescheduledToUid="new"))
    )
    api.get("/bookings/new").mock(return_value=ok(booking_json("new")))
    post = api.post("/bookings/old/reschedule").mock(return_value=ok(booking_json("x"), status=201))
    # The new booking is at START, as asked.
    assert (await client.reschedule("old", START)).uid == "new"
    assert post.call_count == 0


async def test_cancel_is_retried_and_idempotent(
    api: respx.MockRouter, client: CalcomClient, sleeps: Sleeps
) -> None:
    post = api.post("/bookings/abc/cancel").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            error(400, "BadRequestException", "This booking has already been cancelled."),
        ]
    )
    api.get("/bookings/abc").mock(
        return_value=ok(booking_json("abc", status="cancelled", cancellationReason="Changed plans"))
    )

    booking = await client.cancel("abc", "Changed plans")

    assert booking.status == "cancelled"
    assert booking.cancellation_reason == "Changed plans"
    assert post.call_count == 2
    assert sent_json(post) == {"cancellationReason": "Changed plans"}


async def test_cancel_returns_the_cancelled_booking(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    post = api.post("/bookings/abc/cancel").mock(
        return_value=ok(booking_json("abc", status="cancelled"))
    )
    assert (await client.cancel("abc")).status == "cancelled"
    assert sent_json(post) == {}


async def test_cancel_refused_for_another_reason_is_an_error(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    api.post("/bookings/abc/cancel").mock(
        return_value=error(400, "BadRequestException", "Cannot cancel a past booking")
    )
    api.get("/bookings/abc").mock(return_value=ok(booking_json("abc")))
    with pytest.raises(CalcomRejected, match="past booking"):
        await client.cancel("abc")


# --- listing ----------------------------------------------------------------------------------


async def test_bookings_follow_pages_and_filter(
    api: respx.MockRouter, client: CalcomClient
) -> None:
    route = api.get("/bookings").mock(
        side_effect=[page([booking_json("a")], more=True), page([booking_json("b")])]
    )
    since = datetime(2025, 6, 1, tzinfo=UTC)

    found = await client.bookings(
        attendee_email="anna+salon@example.com",
        status=["upcoming", "unconfirmed"],
        after_updated_at=since,
        take=1,
    )

    assert [b.uid for b in found] == ["a", "b"]
    first, second = (dict(c.request.url.params) for c in route.calls)
    assert first == {
        "attendeeEmail": "anna+salon@example.com",
        "status": "upcoming,unconfirmed",
        "afterUpdatedAt": "2025-06-01T00:00:00Z",
        "sortUpdatedAt": "asc",
        "take": "1",
        "skip": "0",
    }
    assert second["skip"] == "1"
    assert b"anna%2Bsalon%40example.com" in route.calls[0].request.url.query


async def test_bookings_refuse_booking_statuses_as_filters(client: CalcomClient) -> None:
    # §1.7: the filter takes upcoming/past/cancelled/unconfirmed/recurring, not "accepted".
    with pytest.raises(ValueError, match="accepted"):
        await client.bookings(status="accepted")
    with pytest.raises(ValueError, match="take"):
        await client.bookings(take=251)


# --- lifecycle and conformance ------------------------------------------------------------------


async def test_aclose_closes_only_its_own_http_client(breaker: CircuitBreaker) -> None:
    shared = httpx.AsyncClient()
    calcom = CalcomClient(BASE, KEY, breaker=breaker, http=shared)
    await calcom.aclose()
    assert not shared.is_closed
    await shared.aclose()

    owned = CalcomClient(BASE, KEY, breaker=breaker)
    await owned.aclose()
    assert owned._http.is_closed


def test_an_api_key_is_required(breaker: CircuitBreaker) -> None:
    with pytest.raises(ValueError, match="API key"):
        CalcomClient(BASE, "", breaker=breaker)


async def test_requests_conform_to_the_vendor_spec(spec: Spec | None, client: CalcomClient) -> None:
    """One pass through every operation, each request checked explicitly against the spec."""
    if spec is None:
        pytest.skip(SPEC_MISSING)
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/event-types").mock(return_value=ok([event_type_json()]))
        router.get("/teams/5/event-types").mock(return_value=ok([]))
        router.get(f"/event-types/{EVENT_TYPE_ID}").mock(return_value=ok(event_type_json()))
        router.get("/slots").mock(return_value=ok({}))
        router.post("/slots/reservations").mock(return_value=error(404, "NotFoundException", "x"))
        router.get("/bookings").mock(return_value=page([]))
        router.post("/bookings").mock(return_value=ok(booking_json(), status=201))
        router.get("/bookings/abc").mock(return_value=ok(booking_json("abc")))
        router.post("/bookings/abc/reschedule").mock(return_value=ok(booking_json("n"), status=201))
        router.post("/bookings/abc/cancel").mock(
            return_value=ok(booking_json("abc", status="cancelled"))
        )

        await client.event_types()
        await client.event_types(team_id=5)
        await client.event_type(EVENT_TYPE_ID)
        await client.slots(
            EVENT_TYPE_ID, START, START + timedelta(days=7), "Europe/Moscow", duration=60
        )
        await client.reserve(EVENT_TYPE_ID, START, duration=60, hold_minutes=10)
        await create(client, email="anna@example.com", length_in_minutes=60)
        await client.bookings(status="upcoming", attendee_email="anna@example.com", event_type_id=1)
        await client.reschedule("abc", START, "why", rescheduled_by="owner@salon.tld")
        await client.cancel("abc", "why")

        assert router.calls.call_count == 11
        assert conformance_problems(spec, router.calls) == []


def test_the_validator_catches_what_cal_com_rejects(spec: Spec | None) -> None:
    """The conformance checks above mean something: the validator flags real mistakes."""
    if spec is None:
        pytest.skip(SPEC_MISSING)
    wrong_version = httpx.Request(
        "POST",
        f"{BASE}/bookings",
        headers={"cal-api-version": VERSION_EVENT_TYPES, "Authorization": f"Bearer {KEY}"},
        json={
            "start": "2025-06-10T07:00:00Z",
            "attendee": {"name": "A", "timeZone": "UTC", "phone": "+7916", "language": "xx"},
            "reservedSlotUid": "r-1",
        },
    )
    problems = "\n".join(request_problems(spec, wrong_version, prefix="/api"))
    assert "requires '2024-08-13'" in problems
    assert "'reservedSlotUid' is not in the schema" in problems
    assert "'phone' is not in the schema" in problems
    old_slots = httpx.Request(
        "GET", f"{BASE}/slots/available?startTime=x", headers={"cal-api-version": VERSION_SLOTS}
    )
    assert request_problems(spec, old_slots, prefix="/api") == [
        "GET /v2/slots/available: no such operation in the spec"
    ]
    missing_end = httpx.Request(
        "GET",
        f"{BASE}/slots?eventTypeId=1&start=2025-06-10",
        headers={"cal-api-version": VERSION_SLOTS},
    )
    assert request_problems(spec, missing_end, prefix="/api") == [
        "GET /v2/slots: missing required query parameter 'end'"
    ]
    status_filter = httpx.Request(
        "GET",
        f"{BASE}/bookings?status=accepted",
        headers={"cal-api-version": VERSION_BOOKINGS, "Authorization": f"Bearer {KEY}"},
    )
    assert "is not one of" in request_problems(spec, status_filter, prefix="/api")[0]


def test_errors_read_well() -> None:
    assert str(CalcomRejected("nope", status=400, code="BadRequestException")) == (
        "400 BadRequestException: nope"
    )
    assert str(CalcomError("x", code="timeout")) == "timeout: x"


# --- webhooks ---------------------------------------------------------------------------------


def webhook(**fields: Any) -> dict[str, Any]:
    """UserWebhookOutputDto (apps/api/v2/src/modules/webhooks/outputs), as Cal.com sends it."""
    return {
        "id": "wh-1",
        "userId": 11,
        "payloadTemplate": None,
        "triggers": ["BOOKING_CREATED", "BOOKING_CANCELLED"],
        "subscriberUrl": "https://gw.example/webhooks/calcom",
        "active": True,
        "secret": "s1",
        **fields,
    }


async def test_ensure_webhook_patches_only_what_differs(client: CalcomClient) -> None:
    """WebhookOutputDto exposes `secret`; UpdateWebhookInputDto is a PartialType, so a PATCH
    carries only the changed fields. (The trimmed vendor spec holds no /v2/webhooks paths: the
    DTOs are read from the source, so these requests are not checked against it.)"""
    url = "https://gw.example/webhooks/calcom"
    wanted = ["BOOKING_CANCELLED", "BOOKING_CREATED"]
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        # A first page of 250 others, then ours: an old one, off, with a template, its id a
        # number in some versions.
        others = [webhook(id=n, subscriberUrl=f"https://x.example/{n}") for n in range(250)]
        listing = router.get("/webhooks").mock(
            side_effect=[ok(others), ok([webhook(id=7, active=False, payloadTemplate="{}")])]
        )
        patch = router.patch("/webhooks/7").mock(return_value=ok(webhook(id=7)))
        done, found = await client.ensure_webhook(url, wanted, "s1")
        assert done == "updated: active, payloadTemplate"
        assert found.id == "7"
        assert json.loads(patch.calls[0].request.content) == {
            "active": True,
            "payloadTemplate": None,
        }
        pages = [call.request.url.params["skip"] for call in listing.calls]
        assert pages == ["0", "250"]
        assert listing.calls[0].request.headers["cal-api-version"] == VERSION_BOOKINGS

        # A Cal.com that does not show the secret gets it again; the triggers are a set.
        listing.side_effect = None
        listing.return_value = ok([webhook(secret=None, triggers=list(reversed(wanted)))])
        router.patch("/webhooks/wh-1").mock(return_value=ok(webhook()))
        assert (await client.ensure_webhook(url, wanted, "s1"))[0] == "updated: secret"
        listing.return_value = ok([webhook()])
        assert (await client.ensure_webhook(url, wanted, "s1"))[0] == "unchanged"

        listing.return_value = ok([])
        create = router.post("/webhooks").mock(return_value=ok(webhook(), status=201))
        assert (await client.ensure_webhook(url, wanted, "s1"))[0] == "created"
        assert json.loads(create.calls[0].request.content) == {
            "subscriberUrl": url,
            "triggers": wanted,
            "active": True,
            "secret": "s1",
        }
