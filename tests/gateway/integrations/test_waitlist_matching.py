"""Which freed time suits which wait, how a freed time is named, and what an offer keeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from bot.events import Channel, ClientRef
from bot.ports import HeldTime, Wait
from gateway.integrations.calcom.catalogue import Offer
from gateway.integrations.calcom.waitlist import WaitlistStore, parse_slot, slot_id
from gateway.integrations.calcom.waitlist_offers import suits
from gateway.pipeline.keys import Keys

MOSCOW = ZoneInfo("Europe/Moscow")


def test_what_a_wait_suits() -> None:
    wait = Wait("w1", "womens-haircut", 102, date(2026, 6, 2), date(2026, 6, 4), "evening")
    own = Offer(1001, (102,), assigns=False)
    other = Offer(1002, (103,), assigns=False)
    seven_pm = datetime(2026, 6, 3, 16, 0, tzinfo=UTC)  # 19:00 in Moscow
    assert suits(wait, "womens-haircut", own, seven_pm, MOSCOW)
    assert not suits(wait, "womens-haircut", other, seven_pm, MOSCOW)  # another master
    assert not suits(wait, "mens-haircut", own, seven_pm, MOSCOW)
    assert not suits(wait, "womens-haircut", own, datetime(2026, 6, 3, 7, tzinfo=UTC), MOSCOW)
    assert not suits(wait, "womens-haircut", own, datetime(2026, 6, 5, 16, tzinfo=UTC), MOSCOW)
    anyone = Wait("w2", "womens-haircut", None, date(2026, 6, 2), date(2026, 6, 2), "any")
    assert suits(anyone, "womens-haircut", other, datetime(2026, 6, 2, 6, tzinfo=UTC), MOSCOW)


def test_a_freed_time_is_named_by_its_event_type_and_start() -> None:
    start = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    assert slot_id(1001, start) == "1001:202606020700"
    assert parse_slot("1001:202606020700") == (1001, start)
    assert parse_slot("x:202606020700") is None
    assert parse_slot("1001:tomorrow") is None


async def test_the_times_a_wait_was_offered_expire_with_the_wait(
    redis: Redis, salon_id: str
) -> None:
    store = WaitlistStore(redis, Keys(salon_id, 16), "Europe/Moscow")
    client = ClientRef(salon_id, Channel.TELEGRAM, "42", "42")
    wait = Wait("w1", "womens-haircut", 102, date(2026, 6, 2), date(2026, 6, 2), "any")
    now = datetime(2026, 6, 1, 7, tzinfo=UTC)
    await store.join(client, wait, now)
    [waiting] = await store.queue()
    start = datetime(2026, 6, 2, 7, tzinfo=UTC)
    held = HeldTime("o1", "w1", "womens-haircut", 102, start, now + timedelta(minutes=10))
    assert await store.claim(waiting, slot_id(1001, start), "o1", held, held.until)
    passed = store.keys.waitlist_passed("w1")
    wait_ttl = await redis.ttl(store.keys.waitlist_wait("w1"))
    assert 0 < await redis.ttl(passed) <= wait_ttl
