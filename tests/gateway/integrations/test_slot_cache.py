"""The calendar's slot cache against the Cal.com stand-in: a repeated read costs no HTTP call,
and a booking made here, Cal.com's webhook or the time-to-live makes the next read go to Cal.com.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.events import Channel, ClientRef
from bot.local_time import local_day_window
from bot.ports import BookingRequest, Slot, SlotTaken
from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.calendar import CalcomCalendar
from gateway.integrations.calcom.catalogue import CalcomCatalogue
from gateway.integrations.calcom.slot_cache import SlotCache
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.calcom import CalcomSandbox
from tests.conftest import CONTRACTS
from tests.support.clock import Clock

KEY = "cal_test_key"
ZONE = "Europe/Moscow"
DAY = date(2026, 6, 3)  # a Wednesday: Maria works
AT_TEN = datetime(2026, 6, 3, 7, 0, tzinfo=UTC)  # 10:00 in Moscow


@dataclass
class Setup:
    sandbox: CalcomSandbox
    calendar: CalcomCalendar
    cache: SlotCache
    seconds: Clock[float]

    def slot_reads(self) -> int:
        return sum(1 for call in self.sandbox.calls if call.path.endswith("/slots"))

    async def day(self) -> list[Slot]:
        start, end = local_day_window(DAY, ZoneInfo(ZONE))
        return await self.calendar.slots("manicure", None, start, end)


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    # Monday 1 June 2026, 10:00 in Moscow.
    clock = Clock(datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
    spec = CONTRACTS / "calcom-v2.openapi.json"
    sandbox = CalcomSandbox(KEY, spec if spec.exists() else None, clock=clock)
    team_id = sandbox.seed_demo_salon(zone=ZONE)
    runner = await sandbox.serve("127.0.0.1", 0)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    seconds = Clock(1000.0)
    cache = SlotCache(20.0, entries=4, clock=seconds)
    async with CalcomClient(url, KEY, breaker=CircuitBreaker("calcom")) as client:
        catalogue = CalcomCatalogue(client, team_id=team_id, currency="RUB")
        calendar = CalcomCalendar(client, catalogue, ZONE, slot_cache=cache)
        yield Setup(sandbox, calendar, cache, seconds)
    await runner.cleanup()
    await sandbox.close()


def request(key: str, chat: str, start: datetime = AT_TEN) -> BookingRequest:
    client = ClientRef("s1", Channel.TELEGRAM, chat, chat)
    return BookingRequest(key, client, "manicure", None, start, "Ann", "en", phone="+79160000001")


async def test_a_second_read_is_served_without_http_until_the_ttl_ends(setup: Setup) -> None:
    first = await setup.day()
    assert AT_TEN in [slot.start for slot in first]
    assert setup.slot_reads() == 1
    assert await setup.day() == first
    setup.seconds.advance(19.9)
    assert await setup.day() == first
    assert setup.slot_reads() == 1  # both from the cache
    setup.seconds.advance(0.2)  # 20 s after the read: gone
    assert await setup.day() == first
    assert setup.slot_reads() == 2


async def test_a_booking_made_here_drops_the_event_types_slots(setup: Setup) -> None:
    await setup.day()
    visit = await setup.calendar.book(request("k1", "1"))
    assert visit.start == AT_TEN
    after = await setup.day()
    assert setup.slot_reads() == 2
    assert AT_TEN not in [slot.start for slot in after]


async def test_a_stale_slot_costs_a_refused_booking_and_the_next_read_is_fresh(
    setup: Setup,
) -> None:
    await setup.day()
    # Another worker replica (its own cache) books 10:00; this one's copy still has it free.
    other = CalcomCalendar(
        setup.calendar.client, setup.calendar.catalogue, ZONE, slot_cache=SlotCache(20.0)
    )
    await other.book(request("k1", "1"))
    assert AT_TEN in [slot.start for slot in await setup.day()]
    assert setup.slot_reads() == 1
    with pytest.raises(SlotTaken):
        await setup.calendar.book(request("k2", "2"))
    assert AT_TEN not in [slot.start for slot in await setup.day()]
    assert setup.slot_reads() == 2


async def test_a_webhook_change_drops_only_its_event_types_slots(setup: Setup) -> None:
    await setup.day()
    event_type = next(iter(setup.cache._kept))[0]
    setup.cache.changed(event_type + 1000)  # another event type's booking
    await setup.day()
    assert setup.slot_reads() == 1
    setup.cache.changed(event_type)
    await setup.day()
    assert setup.slot_reads() == 2
    setup.cache.changed(None)  # a change whose event type is not known
    await setup.day()
    assert setup.slot_reads() == 3


async def test_a_read_begun_before_a_change_is_not_kept_and_the_cache_is_bounded() -> None:
    seconds = Clock(0.0)
    cache = SlotCache(20.0, entries=2, clock=seconds)
    window = (datetime(2026, 6, 3, tzinfo=UTC), datetime(2026, 6, 4, tzinfo=UTC))
    mark = cache.mark(7)
    cache.changed(7)  # a booking while the read was under way
    cache.put((7, *window, None), {}, mark)
    assert cache.get((7, *window, None)) is None
    for event_type in (1, 2, 3):
        cache.put((event_type, *window, None), {}, cache.mark(event_type))
    assert len(cache) == 2
    assert cache.get((1, *window, None)) is None  # the least recently used went
    assert cache.get((3, *window, None)) == {}
    off = SlotCache(0.0)
    off.put((1, *window, None), {}, off.mark(1))
    assert len(off) == 0
