"""The free slots kept between screens, through the real gateway: a client looking at a day again
costs no call to Cal.com, and a booking the salon makes in Cal.com (its webhook) is seen at once.
"""

from __future__ import annotations

from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.pipeline.resilience import CircuitBreaker
from handlers import calcom as calcom_handler
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import (
    CAL_SECRET,
    KEY,
    Chat,
    Salon,
    master_id,
    salon_api,
    start,
)
from tests.test_flow_booking import salon as salon  # the fixture, shared


def slot_reads(salon: Salon) -> int:
    return sum(1 for call in salon.calendar.calls if call.path.endswith("/slots"))


def times(chat: Chat) -> list[str]:
    return [label for data, label in chat.buttons() if data.startswith("b:t:")]


async def test_a_day_seen_again_is_not_read_again_until_the_salon_books_it(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    gateway = await start(start_gateway, salon, calcom_webhook_secret=CAL_SECRET)
    async with CalcomClient(salon.url, KEY, breaker=CircuitBreaker("calcom")) as calcom:
        triggers = sorted(calcom_handler.TRIGGERS)
        await calcom.ensure_webhook(f"{gateway.url}/webhooks/calcom", triggers, CAL_SECRET)
    first, second = Chat(sandbox.telegram, 701), Chat(sandbox.telegram, 702, "ru")
    for chat in (first, second):
        await chat.say("/start")
        await chat.tap("m:book")
        await chat.tap("b:s:manicure")  # Maria alone
    await first.tap("b:d:20260603")
    assert "10:00" in times(first)
    reads = slot_reads(salon)
    # The other client (in Russian), and the first one again: the same day, from the cache.
    await second.tap("b:d:20260603")
    await first.tap("b:d:20260603")
    assert "10:00" in times(second)
    assert "10:00" in times(first)
    assert slot_reads(salon) == reads

    # The salon books Maria at 10:00 in Cal.com; its BOOKING_CREATED reaches the gateway.
    maria = master_id(salon, "Maria")
    event_type = next(
        et.id for et in salon.calendar._event_types.values() if et.host_ids == [maria]
    )
    attendee = {"name": "Walk-in", "email": "walkin@example.com", "timeZone": "Europe/Moscow"}
    body = {"start": "2026-06-03T07:00:00Z", "eventTypeId": event_type, "attendee": attendee}
    made = await salon_api(salon, "POST", "/bookings", body)
    await salon.calendar.flush_webhooks()
    links = BookingLinks(gateway.runtime.redis, gateway.runtime.keys)

    async def told() -> bool:
        return (await links.record(made["uid"])).get("status") == "BOOKING_CREATED"

    await eventually(told)
    await first.tap("b:d:20260603")
    assert "10:00" not in times(first)
    assert slot_reads(salon) == reads + 1
    # The client types the taken time anyway: not offered, the day's times are shown again.
    answer = await first.say("в 10 утра")
    assert "10:00" not in times(first)
    assert answer[0]["text"] == "10:00 is not free that day. Please choose one of these times:"
    assert "Choose a time" in answer[-1]["text"]


def days(chat: Chat) -> list[str]:
    return [data for data, _label in chat.buttons() if data.startswith("b:d:")]


async def test_the_days_screen_is_read_once_for_clients_who_open_it_moments_apart(
    start_gateway: GatewayFactory, sandbox: Sandbox, salon: Salon
) -> None:
    """The days screen's read starts at the start of today, not at the moment it is shown, so
    the next client a minute later gets it from the cache; a day whose free times have passed
    meanwhile is not offered from that copy."""
    salon.clock.advance(20 * 3600)  # 2 June, 06:00 in Moscow
    await start(start_gateway, salon)
    first, second, third = (Chat(sandbox.telegram, n) for n in (711, 712, 713))
    for chat in (first, second, third):
        await chat.say("/start")
        await chat.tap("m:book")
    await first.tap("b:s:manicure")  # Maria alone: the days come next
    offered = days(first)
    assert "b:d:20260602" in offered  # today has free times ahead
    reads = slot_reads(salon)
    salon.clock.advance(60)
    await second.tap("b:s:manicure")
    assert days(second) == offered
    assert slot_reads(salon) == reads
    # Late that evening (the cache still holds the morning's read): today's times are past.
    salon.clock.advance(14 * 3600 + 1800)  # 20:31 in Moscow
    await third.tap("b:s:manicure")
    assert slot_reads(salon) == reads
    assert days(third) == [day for day in offered if day != "b:d:20260602"]
