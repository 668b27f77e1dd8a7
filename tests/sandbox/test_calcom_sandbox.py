"""The Cal.com sandbox answers like API v2 (contract §1) and signs webhooks like Cal.com."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient, TestServer

from gateway.sandbox.calcom import SIGNATURE_HEADER, VERSIONS, CalcomSandbox
from tests.support.clock import Clock

API_KEY = "cal_test_sandbox_key_0123456789"
SPEC = (
    Path(__file__).resolve().parents[2].parent / "shared" / "contracts" / "calcom-v2.openapi.json"
)
BERLIN = ZoneInfo("Europe/Berlin")
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BOOKINGS = {**AUTH, "cal-api-version": VERSIONS["bookings"]}
SLOTS = {"cal-api-version": VERSIONS["slots"]}
EVENT_TYPES = {**AUTH, "cal-api-version": VERSIONS["event-types"]}
# Berlin leaves CET (+01:00) for CEST (+02:00) on Sunday 2026-03-29.
SATURDAY, MONDAY = date(2026, 3, 28), date(2026, 3, 30)

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass
class Salon:
    sandbox: CalcomSandbox
    client: TestClient[Any, Any]
    clock: Clock
    anna: int
    ben: int
    haircut: int  # Anna's own, 60 min, no notice
    team_haircut: int  # round robin between Anna and Ben


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BERLIN)


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_day(day: date) -> dict[str, str]:
    """The UTC window of one Berlin day: `start`/`end` are read as UTC (§1.5)."""
    return {
        "start": z(berlin(day, 0)),
        "end": z(berlin(day + timedelta(days=1), 0) - timedelta(seconds=1)),
    }


def booking_body(event_type_id: int, start: datetime, **attendee: Any) -> dict[str, Any]:
    person = {"name": "Clara Client", "phoneNumber": "+4915112345678", "timeZone": "Europe/Berlin"}
    return {"start": z(start), "eventTypeId": event_type_id, "attendee": person | attendee}


@pytest.fixture
def spec() -> Path:
    if not SPEC.is_file():
        pytest.skip(f"needs the vendor Cal.com spec at ../shared/contracts/{SPEC.name} (absent)")
    return SPEC


@pytest.fixture
async def salon(aiohttp_client: ClientFactory) -> Salon:
    clock = Clock(datetime(2026, 3, 26, 8, 0, tzinfo=UTC))  # Thursday before the DST change
    sandbox = CalcomSandbox(API_KEY, SPEC if SPEC.is_file() else None, clock=clock)
    mon_sat = {day: [("10:00", "18:00")] for day in range(6)}
    anna = sandbox.add_master(
        "Anna", "anna@salon.example", "Europe/Berlin", mon_sat, [("13:00", "14:00")]
    )
    mon_fri = {day: [("12:00", "20:00")] for day in range(5)}
    ben = sandbox.add_master("Ben", "ben@salon.example", "Europe/Berlin", mon_fri)
    haircut = sandbox.add_event_type(
        anna,
        "haircut",
        "Haircut",
        60,
        price=2500,
        category="Hair",
        minimum_notice=0,
        email_required=False,
    )
    team_haircut = sandbox.add_team_event_type(
        "haircut", "Haircut", 60, host_ids=[anna, ben], minimum_notice=0, email_required=False
    )
    # No access log: every request carries the API key.
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    return Salon(sandbox, client, clock, anna, ben, haircut, team_haircut)


async def slot_starts(salon: Salon, day: date, **query: Any) -> list[str]:
    params = {"eventTypeId": salon.haircut, **local_day(day), "timeZone": "Europe/Berlin", **query}
    response = await salon.client.get("/v2/slots", params=params, headers=SLOTS)
    assert response.status == 200
    body = await response.json()
    return [slot["start"] for slots in body["data"].values() for slot in slots]


async def book(salon: Salon, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, Any]]:
    response = await salon.client.post("/v2/bookings", json=body, headers=BOOKINGS | headers)
    return response.status, await response.json()


async def test_auth_envelope_and_rate_limit_headers(salon: Salon) -> None:
    response = await salon.client.get("/v2/bookings", headers={"cal-api-version": "2024-08-13"})
    body = await response.json()
    assert response.status == 401
    assert body["status"] == "error"
    assert body["path"] == "/v2/bookings"
    assert body["error"]["code"] == "UnauthorizedException"
    assert body["error"]["message"].startswith("No authentication method provided")
    assert body["error"]["details"]["statusCode"] == 401

    wrong = {**BOOKINGS, "Authorization": "Bearer cal_wrong"}
    response = await salon.client.get("/v2/bookings", headers=wrong)
    assert (response.status, (await response.json())["error"]["message"]) == (
        401,
        "Your api key is not valid",
    )

    response = await salon.client.get("/v2/bookings", headers=BOOKINGS)
    body = await response.json()
    assert response.status == 200
    assert (body["status"], body["data"], body["pagination"]["totalItems"]) == ("success", [], 0)
    assert response.headers["X-RateLimit-Limit-Default"] == "120"
    assert int(response.headers["X-RateLimit-Remaining-Default"]) < 120

    response = await salon.client.get("/v2/me", headers=AUTH)
    assert (await response.json())["data"]["id"] == salon.sandbox.owner_id


async def test_each_family_needs_its_own_version(salon: Salon) -> None:
    client = salon.client
    cases = [
        # The slots family's older version has no GET /v2/slots at all.
        (client.get("/v2/slots", params={"eventTypeId": salon.haircut, **local_day(MONDAY)}), 404),
        # A known but foreign version: no bookings controller for it (calcom/cal.com#22079).
        (client.post("/v2/bookings", json={}, headers=AUTH | SLOTS), 404),
        (client.get("/v2/event-types", headers={**AUTH, "cal-api-version": "2024-08-13"}), 404),
        # No header: the 2024-04-15 fallback, which fails on bookings (calcom/cal.com#16924).
        (client.get("/v2/bookings", headers=AUTH), 500),
        (client.get("/v2/event-types", headers=AUTH), 400),
    ]
    for request, status in cases:
        response = await request
        assert response.status == status, await response.text()
    response = await client.post("/v2/bookings", json={}, headers=AUTH | SLOTS)
    assert (await response.json())["error"]["message"] == "Cannot POST /v2/bookings"
    response = await client.get("/v2/bookings", headers=AUTH)
    assert await response.json() == {"statusCode": 500, "message": "Internal server error"}
    response = await client.get("/v2/event-types", headers=EVENT_TYPES)
    assert response.status == 200
    response = await client.get("/v2/bookings/unknown-uid", headers=BOOKINGS)
    assert (response.status, (await response.json())["error"]["code"]) == (404, "NotFoundException")


async def test_event_types_personal_shared_slug_and_team(salon: Salon) -> None:
    sandbox, client = salon.sandbox, salon.client
    bens = sandbox.add_event_type(salon.ben, "haircut", "Haircut", 45, price=2000, paid=True)
    response = await client.get("/v2/event-types", params={"username": "anna"}, headers=EVENT_TYPES)
    [haircut] = (await response.json())["data"]
    assert (haircut["id"], haircut["lengthInMinutes"], haircut["slug"]) == (
        salon.haircut,
        60,
        "haircut",
    )
    # The salon's list price sits in metadata; Cal.com's own `price` is a payment app's.
    assert haircut["metadata"] == {"category": "Hair", "price": 2500}
    assert (haircut["price"], haircut["currency"]) == (0, "usd")
    assert haircut["users"][0]["username"] == "anna"
    params = {"username": "ben", "eventSlug": "haircut"}
    response = await client.get("/v2/event-types", params=params, headers=EVENT_TYPES)
    [ben_haircut] = (await response.json())["data"]
    assert ben_haircut["id"] == bens
    assert (ben_haircut["price"], ben_haircut["currency"]) == (200000, "rub")  # minor units

    team_id = (
        await (
            await client.get(f"/v2/event-types/{salon.team_haircut}", headers=EVENT_TYPES)
        ).json()
    )["data"]["teamId"]
    response = await client.get(f"/v2/teams/{team_id}/event-types", headers=AUTH)
    [team_haircut] = (await response.json())["data"]
    assert team_haircut["schedulingType"] == "roundRobin"
    assert [host["userId"] for host in team_haircut["hosts"]] == [salon.anna, salon.ben]
    response = await client.get("/v2/event-types/999999", headers=EVENT_TYPES)
    assert response.status == 404


async def test_personal_slots_follow_the_dst_change_and_the_break(salon: Salon) -> None:
    saturday = await slot_starts(salon, SATURDAY, format="range")
    assert saturday[0] == "2026-03-28T10:00:00.000+01:00"
    monday = await slot_starts(salon, MONDAY)
    # Same local hours after the change, the lunch break (13-14) cut out, the last ends at 18.
    hours = [10, 11, 12, 14, 15, 16, 17]
    assert monday == [f"2026-03-30T{hour:02d}:00:00.000+02:00" for hour in hours]

    # Without timeZone the slots come in UTC: 10:00 is 09:00Z before the change, 08:00Z after.
    params: dict[str, Any] = {
        "eventTypeId": salon.haircut,
        "start": "2026-03-28",
        "end": "2026-03-30",
        "format": "range",
    }
    response = await salon.client.get("/v2/slots", params=params, headers=SLOTS)
    data = (await response.json())["data"]
    assert data["2026-03-28"][0] == {
        "start": "2026-03-28T09:00:00.000Z",
        "end": "2026-03-28T10:00:00.000Z",
    }
    assert "2026-03-29" not in data  # Sunday: Anna's day off
    assert data["2026-03-30"][0]["start"] == "2026-03-30T08:00:00.000Z"

    salon.sandbox.add_override(salon.anna, SATURDAY)  # a date override: that Saturday off
    assert await slot_starts(salon, SATURDAY) == []


async def test_team_slots_are_free_when_any_host_is(salon: Salon) -> None:
    params = {"eventTypeId": salon.team_haircut}
    monday = await slot_starts(salon, MONDAY, **params)
    # Anna 10-13 and 14-18, Ben 12-20: the union, in CEST.
    assert monday == [f"2026-03-30T{hour:02d}:00:00.000+02:00" for hour in range(10, 20)]

    status, _ = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10)))
    assert status == 201
    monday = await slot_starts(salon, MONDAY, **params)
    assert "2026-03-30T10:00:00.000+02:00" not in monday  # Anna is booked, Ben starts at 12
    assert "2026-03-30T12:00:00.000+02:00" in monday

    # Round robin: the free host with the fewest bookings takes it.
    status, body = await book(salon, booking_body(salon.team_haircut, berlin(MONDAY, 12)))
    assert status == 201
    assert [host["id"] for host in body["data"]["hosts"]] == [salon.ben]
    assert body["data"]["start"] == "2026-03-30T10:00:00.000Z"

    # Collective: every host at once, so only where both are free (Ben is taken at 12).
    duo = salon.sandbox.add_team_event_type(
        "duo",
        "Duo styling",
        60,
        host_ids=[salon.anna, salon.ben],
        scheduling="collective",
        minimum_notice=0,
    )
    duo_slots = await slot_starts(salon, MONDAY, eventTypeId=duo)
    assert duo_slots == [f"2026-03-30T{hour:02d}:00:00.000+02:00" for hour in (14, 15, 16, 17)]


async def test_buffers_and_minimum_notice(salon: Salon) -> None:
    sandbox, clock = salon.sandbox, salon.clock
    colour = sandbox.add_event_type(
        salon.anna,
        "colour",
        "Colour",
        60,
        minimum_notice=120,
        before_buffer=15,
        after_buffer=30,
        slot_interval=30,
        email_required=False,
    )
    status, _ = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 16)))
    assert status == 201
    clock.now = berlin(MONDAY, 10, 10)
    starts = await slot_starts(salon, MONDAY, eventTypeId=colour)
    # Notice: nothing before 12:10, then the half-hour grid (12:30 would cross the break).
    # Buffers: 15:00 would run into the 16:00 booking with its 30 min after-buffer, and 17:00
    # would start inside its own 15 min before-buffer.
    assert starts == ["2026-03-30T14:00:00.000+02:00", "2026-03-30T14:30:00.000+02:00"]

    status, body = await book(salon, booking_body(colour, berlin(MONDAY, 11)))
    assert status == 400
    assert body["error"]["message"].startswith('The event type can\'t be booked at the "start"')
    status, body = await book(salon, booking_body(colour, berlin(MONDAY, 9)))
    assert (status, body["error"]["message"]) == (400, "Attempting to book a meeting in the past.")


async def test_a_taken_slot_is_refused_as_cal_com_does(salon: Salon) -> None:
    body = booking_body(salon.haircut, berlin(MONDAY, 10))
    body["metadata"] = {"channel": "telegram", "tg_chat_id": "42"}
    status, first = await book(salon, body)
    assert status == 201
    booking = first["data"]
    assert (booking["status"], booking["start"], booking["end"]) == (
        "accepted",
        "2026-03-30T08:00:00.000Z",
        "2026-03-30T09:00:00.000Z",
    )
    assert booking["metadata"] == {"channel": "telegram", "tg_chat_id": "42"}
    attendee = booking["attendees"][0]
    assert (attendee["phoneNumber"], attendee["email"]) == (
        "+4915112345678",
        "4915112345678@sms.cal.com",
    )

    status, second = await book(salon, body)
    assert status == 400  # §1.2: a 4xx; Cal.com's ErrorsBookingsService answers 400
    assert second["error"]["code"] == "BadRequestException"
    assert (
        second["error"]["message"]
        == "User either already has booking at this time or is not available"
    )
    status, team = await book(salon, booking_body(salon.team_haircut, berlin(MONDAY, 10)))
    assert status == 400
    assert team["error"]["message"].startswith("One of the hosts either already has booking")
    status, sunday = await book(salon, booking_body(salon.haircut, berlin(date(2026, 3, 29), 11)))
    assert (status, sunday["error"]["message"]) == (400, second["error"]["message"])


async def test_a_reservation_holds_the_slot_until_it_expires(salon: Salon) -> None:
    client, clock = salon.client, salon.clock
    eleven = berlin(MONDAY, 11)
    hold = {"eventTypeId": salon.haircut, "slotStart": z(eleven)}
    response = await client.post("/v2/slots/reservations", json=hold, headers=SLOTS)
    assert response.status == 201
    reservation = (await response.json())["data"]
    assert reservation["slotStart"] == "2026-03-30T09:00:00.000Z"
    assert reservation["reservationUntil"] == "2026-03-26T08:05:00.000Z"  # 5 min by default
    assert "2026-03-30T11:00:00.000+02:00" not in await slot_starts(salon, MONDAY)

    response = await client.post("/v2/slots/reservations", json=hold, headers=SLOTS)
    assert response.status == 422
    custom = hold | {"reservationDuration": 10}
    response = await client.post("/v2/slots/reservations", json=custom, headers=SLOTS)
    assert response.status == 401  # a custom duration needs credentials

    status, body = await book(salon, booking_body(salon.haircut, eleven))
    assert status == 400
    assert body["error"]["message"] == (
        "Someone else reserved this booking time slot before you. This time slot will be freed "
        "up in 300 seconds."
    )
    # The holder books with its reservation uid (the `uid` cookie, as Cal.com's booker sends).
    status, body = await book(
        salon, booking_body(salon.haircut, eleven), Cookie=f"uid={reservation['reservationUid']}"
    )
    assert status == 201
    response = await client.get(
        f"/v2/slots/reservations/{reservation['reservationUid']}", headers=SLOTS
    )
    assert (await response.json())["data"] is None  # consumed by the booking

    noon = {
        "eventTypeId": salon.haircut,
        "slotStart": z(berlin(MONDAY, 12)),
        "reservationDuration": 2,
    }
    response = await client.post("/v2/slots/reservations", json=noon, headers=AUTH | SLOTS)
    assert response.status == 201
    clock.now += timedelta(minutes=2, seconds=1)
    status, _ = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 12)))
    assert status == 201  # the hold has expired


async def test_cancel_and_reschedule(salon: Salon) -> None:
    client = salon.client
    _, created = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10)))
    old = created["data"]["uid"]
    ten = "2026-03-30T10:00:00.000+02:00"
    assert ten not in await slot_starts(salon, MONDAY)
    assert ten in await slot_starts(salon, MONDAY, bookingUidToReschedule=old)

    move = {"start": z(berlin(MONDAY, 15)), "reschedulingReason": "Client asked via Telegram"}
    response = await client.post(f"/v2/bookings/{old}/reschedule", json=move, headers=BOOKINGS)
    assert response.status == 201
    new = (await response.json())["data"]
    assert new["uid"] != old
    assert (new["rescheduledFromUid"], new["start"], new["status"]) == (
        old,
        "2026-03-30T13:00:00.000Z",
        "accepted",
    )
    previous = (await (await client.get(f"/v2/bookings/{old}", headers=BOOKINGS)).json())["data"]
    assert (previous["status"], previous["rescheduledToUid"]) == ("cancelled", new["uid"])
    assert ten in await slot_starts(salon, MONDAY)
    response = await client.post(f"/v2/bookings/{old}/reschedule", json=move, headers=BOOKINGS)
    assert response.status == 400
    assert (
        f"rescheduled already to booking with uid={new['uid']}"
        in (await response.json())["error"]["message"]
    )

    reason = {"cancellationReason": "Client asked via Telegram"}
    response = await client.post(f"/v2/bookings/{new['uid']}/cancel", json=reason, headers=BOOKINGS)
    cancelled = (await response.json())["data"]
    assert (response.status, cancelled["status"]) == (200, "cancelled")
    assert cancelled["cancellationReason"] == "Client asked via Telegram"
    response = await client.post(f"/v2/bookings/{new['uid']}/cancel", json={}, headers=BOOKINGS)
    assert (await response.json())["error"]["message"] == "This booking has already been cancelled."

    response = await client.get("/v2/bookings", params={"status": "cancelled"}, headers=BOOKINGS)
    assert {b["uid"] for b in (await response.json())["data"]} == {old, new["uid"]}
    response = await client.get("/v2/bookings", params={"status": "upcoming"}, headers=BOOKINGS)
    assert (await response.json())["data"] == []


async def test_webhooks_are_signed_over_the_raw_body(
    salon: Salon, aiohttp_server: ServerFactory
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hooks/calcom", hook)
    server = await aiohttp_server(app)
    secret = "whsec-test"
    salon.sandbox.webhook_url = str(server.make_url("/hooks/calcom"))
    salon.sandbox.webhook_secret = secret

    body = booking_body(salon.haircut, berlin(MONDAY, 10)) | {"metadata": {"tg_chat_id": "42"}}
    _, created = await book(salon, body)
    uid = created["data"]["uid"]
    await salon.client.post(
        f"/v2/bookings/{uid}/cancel", json={"cancellationReason": "x"}, headers=BOOKINGS
    )
    await salon.sandbox.flush_webhooks()

    assert [sent.trigger for sent in salon.sandbox.webhooks_sent] == [
        "BOOKING_CREATED",
        "BOOKING_CANCELLED",
    ]
    assert [sent.status for sent in salon.sandbox.webhooks_sent] == [200, 200]
    for raw, headers in received:
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
        assert headers["X-Cal-Webhook-Version"] == "2021-10-20"
    created_hook, cancelled_hook = (json.loads(raw) for raw, _ in received)
    assert set(created_hook) == {"triggerEvent", "createdAt", "payload"}
    payload = created_hook["payload"]
    assert (payload["uid"], payload["status"], payload["startTime"]) == (
        uid,
        "ACCEPTED",
        "2026-03-30T08:00:00Z",
    )
    assert payload["metadata"] == {"tg_chat_id": "42"}
    assert cancelled_hook["payload"]["status"] == "CANCELLED"
    assert (
        cancelled_hook["payload"]["startTime"] == "2026-03-30T08:00:00+00:00"
    )  # §1.10 format drift

    salon.sandbox.webhook_secret = None
    await book(salon, booking_body(salon.haircut, berlin(MONDAY, 11)))
    await salon.sandbox.flush_webhooks()
    assert received[-1][1][SIGNATURE_HEADER] == "no-secret-provided"


async def test_a_cancellation_carries_no_metadata_and_no_attendee_phone(
    salon: Salon, aiohttp_server: ServerFactory
) -> None:
    """handleCancelBooking (calcom/cal.com packages/features/bookings/lib/handleCancelBooking.ts)
    sends its CalendarEvent with the event type's info, `status: "CANCELLED"`,
    `smsReminderNumber` and `cancelledBy`: no `metadata`, and attendees built from name, email,
    timeZone and language only (@ 2446b58b7f257ba3b40ba3e0aacaca9a18fd188e)."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hooks/calcom", hook)
    server = await aiohttp_server(app)
    salon.sandbox.webhook_url = str(server.make_url("/hooks/calcom"))
    salon.sandbox.webhook_secret = "s"
    body = booking_body(salon.haircut, berlin(MONDAY, 10), email="clara@example.com")
    _, created = await book(salon, body | {"metadata": {"frontdesk_chat": "42"}})
    uid = created["data"]["uid"]
    await salon.client.post(
        f"/v2/bookings/{uid}/cancel", json={"cancellationReason": "ill"}, headers=BOOKINGS
    )
    await salon.sandbox.flush_webhooks()

    made, cancelled = (envelope["payload"] for envelope in received)
    assert made["metadata"] == {"frontdesk_chat": "42"}
    assert made["attendees"][0]["phoneNumber"] == "+4915112345678"
    assert "metadata" not in cancelled
    [attendee] = cancelled["attendees"]
    assert "phoneNumber" not in attendee
    assert (attendee["email"], cancelled["uid"]) == ("clara@example.com", uid)
    assert (cancelled["status"], cancelled["cancellationReason"]) == ("CANCELLED", "ill")
    assert cancelled["cancelledBy"] == "owner@salon.example"
    assert cancelled["iCalSequence"] == made["iCalSequence"] + 1


async def test_webhooks_are_managed_like_the_v2_api(
    salon: Salon, aiohttp_server: ServerFactory
) -> None:
    """apps/api/v2/src/modules/webhooks: CreateWebhookInputDto requires `active` (boolean),
    `subscriberUrl` (string) and `triggers` (WebhookTriggerEvents[]), `secret` and
    `payloadTemplate` are optional strings; UpdateWebhookInputDto is its PartialType; one
    webhook per user and subscriber URL (409); the output shows `triggers` and `secret`; the
    active webhooks holding a trigger get it, each signed with its own secret (sendPayload.ts)."""
    received: list[tuple[str, bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.path, await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response()

    app = web.Application()
    app.router.add_post("/a", hook)
    app.router.add_post("/b", hook)
    server = await aiohttp_server(app)
    url_a, url_b = str(server.make_url("/a")), str(server.make_url("/b"))
    client = salon.client

    response = await client.post("/v2/webhooks", json={"subscriberUrl": url_a}, headers=AUTH)
    assert response.status == 400
    errors = (await response.json())["error"]["details"]["errors"]
    assert [e["property"] for e in errors] == ["active", "triggers"]
    wrong = {"subscriberUrl": url_a, "active": True, "triggers": ["BOOKING_CONFIRMED"]}
    response = await client.post("/v2/webhooks", json=wrong, headers=AUTH)
    assert response.status == 400
    assert (await client.get("/v2/webhooks")).status == 401

    a = {"subscriberUrl": url_a, "active": True, "triggers": ["BOOKING_CREATED"], "secret": "sa"}
    response = await client.post("/v2/webhooks", json=a, headers=AUTH)
    assert response.status == 201
    made = (await response.json())["data"]
    assert (made["triggers"], made["secret"], made["active"]) == (["BOOKING_CREATED"], "sa", True)
    assert (await client.post("/v2/webhooks", json=a, headers=AUTH)).status == 409
    b = {"subscriberUrl": url_b, "active": True, "triggers": ["BOOKING_CANCELLED"]}
    b_id = (await (await client.post("/v2/webhooks", json=b, headers=AUTH)).json())["data"]["id"]
    listed = (await (await client.get("/v2/webhooks", headers=AUTH)).json())["data"]
    assert [w["subscriberUrl"] for w in listed] == [url_a, url_b]

    patch = {"secret": "sb", "triggers": ["BOOKING_CREATED", "BOOKING_CANCELLED"]}
    response = await client.patch(f"/v2/webhooks/{b_id}", json=patch, headers=AUTH)
    assert (await response.json())["data"]["secret"] == "sb"
    response = await client.patch(f"/v2/webhooks/{b_id}", json={"active": "yes"}, headers=AUTH)
    assert response.status == 400
    moved = {"subscriberUrl": url_b, "payloadTemplate": None, "active": None}
    response = await client.patch(f"/v2/webhooks/{b_id}", json=moved, headers=AUTH)
    hook_b = (await response.json())["data"]
    assert (hook_b["subscriberUrl"], hook_b["payloadTemplate"], hook_b["active"]) == (
        url_b,
        None,
        True,
    )

    await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10)))
    await salon.sandbox.flush_webhooks()
    assert sorted(path for path, _, _ in received) == ["/a", "/b"]
    for path, raw, signature in received:
        secret = {"/a": "sa", "/b": "sb"}[path]
        assert signature == hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()

    received.clear()
    await client.patch(f"/v2/webhooks/{made['id']}", json={"active": False}, headers=AUTH)
    assert (await client.delete(f"/v2/webhooks/{b_id}", headers=AUTH)).status == 200
    assert (await client.get(f"/v2/webhooks/{b_id}", headers=AUTH)).status == 404
    await book(salon, booking_body(salon.haircut, berlin(MONDAY, 11)))
    await salon.sandbox.flush_webhooks()
    assert received == []
    assert [w["id"] for w in salon.sandbox.webhooks] == [made["id"]]


async def test_the_spec_rejects_bodies_like_the_vendor(spec: Path, salon: Salon) -> None:
    assert salon.sandbox.validating
    body = booking_body(salon.haircut, berlin(MONDAY, 10))
    del body["start"]
    status, answer = await book(salon, body)
    assert status == 400
    assert (
        answer["error"]["message"]
        == "start property is wrong,start must be a valid ISO 8601 date string "
    )
    status, answer = await book(
        salon, booking_body(salon.haircut, berlin(MONDAY, 10)) | {"colour": "red"}
    )
    assert "property colour should not exist" in answer["error"]["message"]
    status, answer = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10), phone="+49"))
    assert "attendee property is wrong, phone property is wrong" in answer["error"]["message"]

    response = await salon.client.post(
        "/v2/slots/reservations", json={"eventTypeId": salon.haircut}, headers=SLOTS
    )
    error = (await response.json())["error"]
    assert (response.status, error["message"]) == (400, "Bad Request Exception")
    assert [e["property"] for e in error["details"]["errors"]] == ["slotStart"]
    response = await salon.client.get(
        "/v2/slots", params={"eventTypeId": salon.haircut}, headers=SLOTS
    )
    assert [e["property"] for e in (await response.json())["error"]["details"]["errors"]] == [
        "start",
        "end",
    ]
    response = await salon.client.get(
        "/v2/bookings", params={"status": "accepted"}, headers=BOOKINGS
    )
    assert response.status == 400  # §1.7: list filters are upcoming/past/cancelled/...


async def test_attendee_rules_hold_without_the_spec(aiohttp_client: ClientFactory) -> None:
    clock = Clock(datetime(2026, 3, 26, 8, 0, tzinfo=UTC))
    sandbox = CalcomSandbox(API_KEY, clock=clock)
    anna = sandbox.add_master("Anna", "anna@salon.example", "Europe/Berlin")
    strict = sandbox.add_event_type(anna, "haircut", "Haircut", 60)  # email required by default
    client = await aiohttp_client(sandbox.app(), server_kwargs={"access_log": None})
    start = z(berlin(MONDAY, 10))
    cases = [
        (
            {"name": "C", "timeZone": "Europe/Berlin"},
            "At least one contact method (email or phone number)",
        ),
        (
            {"name": "C", "timeZone": "Mars/Base", "email": "c@example.com"},
            "timeZone must be a valid IANA",
        ),
        (
            {"name": "C", "timeZone": "Europe/Berlin", "phoneNumber": "0151"},
            "Invalid phone number format",
        ),
        (
            {"name": "C", "timeZone": "Europe/Berlin", "phoneNumber": "+4915112345678"},
            "Missing attendee email",
        ),
    ]
    for attendee, message in cases:
        payload = {"start": start, "eventTypeId": strict, "attendee": attendee}
        response = await client.post("/v2/bookings", json=payload, headers=BOOKINGS)
        assert response.status == 400
        assert message in (await response.json())["error"]["message"]
    payload = {
        "start": start,
        "eventTypeId": strict,
        "attendee": {"name": "C", "timeZone": "Europe/Berlin", "email": "c@example.com"},
        "metadata": {"k" * 41: "v"},
    }
    response = await client.post("/v2/bookings", json=payload, headers=BOOKINGS)
    assert "Metadata must have at most 50 keys" in (await response.json())["error"]["message"]
    del payload["metadata"]
    response = await client.post("/v2/bookings", json=payload, headers=BOOKINGS)
    assert response.status == 201


async def test_fail_next_injects_500_and_429(salon: Salon) -> None:
    sandbox, client = salon.sandbox, salon.client
    sandbox.fail_next("createBooking", status=500)
    status, body = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10)))
    assert (status, body["error"]["code"]) == (500, "InternalServerErrorException")
    status, _ = await book(salon, booking_body(salon.haircut, berlin(MONDAY, 10)))
    assert status == 201

    sandbox.fail_next("/v2/slots", status=429, retry_after=7, times=2)
    params: dict[str, Any] = {"eventTypeId": salon.haircut, **local_day(MONDAY)}
    for _ in range(2):
        response = await client.get("/v2/slots", params=params, headers=SLOTS)
        assert (response.status, response.headers["Retry-After"]) == (429, "7")
        assert (await response.json())["error"]["code"] == "ThrottlerException"
    assert (await client.get("/v2/slots", params=params, headers=SLOTS)).status == 200

    sandbox.fail_next("GET /v2/bookings", status=502, body="<html>bad gateway</html>")
    response = await client.get("/v2/bookings", headers=BOOKINGS)
    assert (response.status, await response.text()) == (502, "<html>bad gateway</html>")
    with pytest.raises(ValueError, match="not an endpoint name"):
        sandbox.fail_next("bookAHaircut")


async def test_rate_limit_and_delay(salon: Salon) -> None:
    sandbox, client = salon.sandbox, salon.client
    sandbox.rate_limit = 2
    for _ in range(2):
        assert (await client.get("/v2/me", headers=AUTH)).status == 200
    response = await client.get("/v2/me", headers=AUTH)
    assert response.status == 429
    assert response.headers["X-RateLimit-Remaining-Default"] == "0"
    assert int(response.headers["Retry-After"]) > 0

    sandbox.rate_limit = 1000
    sandbox.delay = 0.5
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/v2/me", headers=AUTH, timeout=ClientTimeout(total=0.05))


async def test_the_demo_salon_can_be_booked_over_serve() -> None:
    clock = Clock(datetime(2026, 6, 1, 7, 0, tzinfo=UTC))  # a Monday morning in Moscow
    sandbox = CalcomSandbox(API_KEY, SPEC if SPEC.is_file() else None, clock=clock)
    team_id = sandbox.seed_demo_salon()
    runner = await sandbox.serve("127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            answer = await client.get(f"/v2/teams/{team_id}/event-types", headers=AUTH)
            services = answer.json()["data"]
            # Six services; two of them have one event type per master.
            assert len({s["metadata"]["service"] for s in services}) == 6
            assert len(services) == 8
            assert {s["metadata"]["category"] for s in services} == {"Hair", "Nails", "Brows"}
            assert all(30 <= s["lengthInMinutes"] <= 120 for s in services)
            assert all(s["metadata"]["price"] > 0 for s in services)

            manicure = next(s for s in services if s["slug"] == "manicure")
            window = {"start": "2026-06-02", "end": "2026-06-08", "timeZone": "Europe/Moscow"}
            params = {"eventTypeId": manicure["id"], **window}
            slots = (await client.get("/v2/slots", params=params, headers=SLOTS)).json()["data"]
            first = next(iter(slots.values()))[0]["start"]
            attendee = {"name": "Olga", "phoneNumber": "+79161234567", "timeZone": "Europe/Moscow"}
            body = {"start": z(datetime.fromisoformat(first)), "eventTypeId": manicure["id"]}
            answer = await client.post(
                "/v2/bookings", json=body | {"attendee": attendee}, headers=BOOKINGS
            )
            assert answer.status_code == 201
            listed = (await client.get("/_sandbox/bookings")).json()
            assert len(listed) == 5  # four seeded, one just made
            assert answer.json()["data"]["uid"] in {b["uid"] for b in listed}
    finally:
        await runner.cleanup()


async def test_the_demo_salons_masters_work_within_its_opening_hours() -> None:
    """The demo tells clients the salon is open "Mon–Sat 10:00–20:00" (gateway/ops/demo.py): no
    service of the demo salon may offer a Sunday slot, or one that starts before 10:00 or ends
    after 20:00, in the salon's zone."""
    moscow = ZoneInfo("Europe/Moscow")
    clock = Clock(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))  # Monday 09:00 in Moscow
    sandbox = CalcomSandbox(API_KEY, SPEC if SPEC.is_file() else None, clock=clock)
    team_id = sandbox.seed_demo_salon(zone="Europe/Moscow")
    runner = await sandbox.serve("127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    seen_days: set[int] = set()
    latest_end = time(0, 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            answer = await client.get(f"/v2/teams/{team_id}/event-types", headers=AUTH)
            for service in answer.json()["data"]:
                window = {"start": "2026-06-01", "end": "2026-06-14", "timeZone": "Europe/Moscow"}
                params = {"eventTypeId": service["id"], **window}
                answer = await client.get("/v2/slots", params=params, headers=SLOTS)
                length = timedelta(minutes=service["lengthInMinutes"])
                for slots in answer.json()["data"].values():
                    for slot in slots:
                        start = datetime.fromisoformat(slot["start"]).astimezone(moscow)
                        end = start + length
                        assert start.weekday() != 6, (service["slug"], slot)
                        assert start.time() >= time(10, 0), (service["slug"], slot)
                        assert end.date() == start.date(), (service["slug"], slot)
                        assert end.time() <= time(20, 0), (service["slug"], slot)
                        seen_days.add(start.weekday())
                        latest_end = max(latest_end, end.time())
    finally:
        await runner.cleanup()
        await sandbox.close()
    # The rule is met by working hours that reach it, not by an empty calendar.
    assert seen_days == {0, 1, 2, 3, 4, 5}
    assert latest_end == time(20, 0)
