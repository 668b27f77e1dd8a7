"""A flood at one salon does not hold up another's replies (issue 18: 5,000 queued messages
for salon A do not delay salon B's reply beyond its usual latency)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from bench.fairness import measure
from gateway.app import SERVED
from gateway.salons import Salon as RegistryEntry
from tests.conftest import Gateway, GatewayFactory, Sandbox, eventually
from tests.support.clock import Clock
from tests.test_flow_booking import KEY as CAL_KEY
from tests.test_flow_booking import Chat, Salon, book_until_summary, master_id
from tests.test_flow_salons import RegistrySalon, served, set_webhook
from tests.test_flow_salons import calendar_a as calendar_a  # the fixtures
from tests.test_flow_salons import clock as clock
from tests.test_flow_salons import salon_b as salon_b


async def test_a_backlog_at_one_salon_does_not_hold_up_anothers_replies(redis_url: str) -> None:
    figures = await measure(redis_url, backlog=5000, samples=3)
    # Ordering, robust however loaded the machine: every reply of B's came while most of A's
    # backlog was still waiting (in one shared queue B would have waited for all of it).
    assert figures.answered_meanwhile < figures.backlog / 2, figures.summary()
    # And a bound: B's reply stays within seconds, however large A's backlog (measured on
    # two shared cores with this layout: 15-50 ms idle, 100-210 ms behind A's backlog).
    assert max(figures.backlog_ms) < 5000, figures.summary()


# -- an outage at one salon: B's clients are answered as usual --------------------------------


async def serve_b(gateway: Gateway, salon_b: RegistrySalon) -> None:
    """Salon B as the registry would hand it to the running gateway (no PostgreSQL needed)."""
    now = datetime.now(UTC)
    entry = RegistryEntry(salon_b.id, True, 1, now, now, salon_b.values("Studio Süd"), frozenset())
    await gateway.app[SERVED].apply({salon_b.id: entry}, frozenset({salon_b.id}))
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    await set_webhook(gateway, salon_b)


@pytest.fixture
async def two_salons(
    start_gateway: GatewayFactory, calendar_a: Salon, salon_b: RegistrySalon, clock: Clock
) -> AsyncIterator[Gateway]:
    gateway = await start_gateway(
        clock=clock,
        calcom_api_url=calendar_a.url,
        calcom_api_key=CAL_KEY,
        calcom_team_id=calendar_a.team_id,
        salon_currency="RUB",
        salon_address="1 Example Street",
        breaker_failures=2,
        breaker_reset_seconds=60.0,
        service_timeout_seconds=0.5,
    )
    await serve_b(gateway, salon_b)
    yield gateway
    # B came from `apply`, not from a registry watcher: stopped here, before its keys go.
    await gateway.app[SERVED].stop_registry_salons()


def breaker_state(gateway: Gateway, salon: str, service: str) -> str:
    return gateway.app[SERVED].live[salon].runtime.breakers[service].state.name.lower()


async def book_in_b(salon_b: RegistrySalon, chat_id: int) -> None:
    chat = Chat(salon_b.telegram, chat_id)
    await book_until_summary(chat, "womens-haircut", str(master_id(salon_b.calendar, "Anna")))
    await chat.share_phone("79169876543")
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")


async def test_b_books_while_as_calendar_is_down(
    two_salons: Gateway,
    sandbox: Sandbox,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    salon_id: str,
) -> None:
    gateway = two_salons
    clients_a = [Chat(sandbox.telegram, 700 + n) for n in range(3)]
    for chat in clients_a:
        await chat.say("/start")
        await chat.tap("m:book")
        await chat.tap("b:s:hair-colouring")
    # A's Cal.com stops answering (each call hangs past SERVICE_TIMEOUT_SECONDS).
    calendar_a.calendar.delay = 5.0
    down = await asyncio.gather(*(chat.tap("b:d:20260602") for chat in clients_a))
    for answer in down:
        assert answer[-1]["text"].startswith("I cannot reach the salon's calendar right now.")
    assert breaker_state(gateway, salon_id, "calcom") == "open"

    # B's clients go through B's own Cal.com, and say "привет" as well as tap.
    hello = await Chat(salon_b.telegram, 801, "ru").say("привет")
    assert "Studio Süd" in hello[-1]["text"]
    await book_in_b(salon_b, 802)
    [booked] = salon_b.calendar.made_in_chat()
    assert booked["metadata"]["frontdesk_chat"] == "802"
    assert breaker_state(gateway, salon_b.id, "calcom") == "closed"
    assert breaker_state(gateway, salon_id, "calcom") == "open"
    assert not calendar_a.made_in_chat()
    assert not salon_b.telegram.errors


async def test_b_is_answered_while_as_bot_is_blocked(
    two_salons: Gateway,
    sandbox: Sandbox,
    salon_b: RegistrySalon,
    salon_id: str,
    redis: Redis,
) -> None:
    gateway = two_salons
    # Telegram answers 403 to every message of A's bot (its clients blocked it).
    blocked = 6
    sandbox.telegram.fail_next(
        "sendMessage",
        error_code=403,
        description="Forbidden: bot was blocked by the user",
        times=blocked,
    )
    for n in range(blocked):
        await sandbox.telegram.client_says(710 + n, "/start")
    answer = await Chat(salon_b.telegram, 811).say("/strat")
    assert answer, "B's client got no answer"
    await book_in_b(salon_b, 812)
    # A's refusals are dead-lettered at once (retrying cannot help), one by one, and count
    # against nothing of B's: neither its breaker nor its pacing.
    keys = gateway.app[SERVED].live[salon_id].runtime.keys
    dead = await eventually(lambda: _at_least(redis.xlen(keys.dead_letters), blocked), timeout=10)
    assert dead == blocked
    assert not any(error[1] == 403 for error in salon_b.telegram.errors), salon_b.telegram.errors
    assert breaker_state(gateway, salon_id, "telegram") == "closed"
    assert breaker_state(gateway, salon_b.id, "telegram") == "closed"


async def _at_least(count: Awaitable[int], wanted: int) -> int | None:
    value = await count
    return value if value >= wanted else None


async def test_b_is_answered_while_as_calendar_calls_hang_in_every_slot(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    clock: Clock,
    salon_id: str,
) -> None:
    gateway = await start_gateway(
        clock=clock,
        calcom_api_url=calendar_a.url,
        calcom_api_key=CAL_KEY,
        calcom_team_id=calendar_a.team_id,
        salon_currency="RUB",
        salon_address="1 Example Street",
        # Long enough for B's reply to come first on a loaded machine; the breaker opens on
        # the first timeouts, so A's retried reads and later clients then fail fast.
        service_timeout_seconds=5.0,
        breaker_failures=2,
    )
    await serve_b(gateway, salon_b)
    try:
        handling = gateway.app[SERVED].work.handling
        # A fixed bound: the test's own clock of what "every slot" means (it adapts otherwise).
        handling.limit = handling.floor = handling.ceiling = 4
        clients_a = [Chat(sandbox.telegram, 720 + n) for n in range(handling.limit + 2)]
        for chat in clients_a:
            await chat.say("/start")
            await chat.tap("m:book")
            await chat.tap("b:s:hair-colouring")
        # A's Cal.com hangs: every handling slot is held by one of A's clients waiting for it.
        calendar_a.calendar.delay = 30.0
        taps = [asyncio.create_task(chat.tap("b:d:20260602")) for chat in clients_a]
        await eventually(lambda: handling.in_flight.get(salon_id) == handling.limit, timeout=10)
        # B's client is answered now, not when A's calls time out.
        answer = await Chat(salon_b.telegram, 821).say("/start")
        assert "Studio Süd" in answer[-1]["text"]
        assert not any(task.done() for task in taps)
        assert handling.in_flight.get(salon_id) == handling.limit
        for answer in await asyncio.gather(*taps):
            assert answer[-1]["text"].startswith("I cannot reach the salon's calendar right now.")
    finally:
        await gateway.app[SERVED].stop_registry_salons()
