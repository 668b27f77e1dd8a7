"""Operations per salon in a gateway that serves the registry's salons: their metrics under a
`salon` label."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from gateway.salons import SalonRegistry
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import Gateway, GatewayFactory, Sandbox, eventually
from tests.support.clock import Clock
from tests.test_flow_booking import Chat, Salon
from tests.test_flow_salons import (
    RegistrySalon,
    served,
    set_webhook,
    start_many,
)
from tests.test_flow_salons import calendar_a as calendar_a  # the fixtures
from tests.test_flow_salons import clock as clock
from tests.test_flow_salons import registry as registry
from tests.test_flow_salons import salon_b as salon_b


async def scrape(gateway: Gateway) -> str:
    async with gateway.http.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def value(text: str, series: str) -> float | None:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_metrics_carry_each_salons_label(
    analytics_db: str,
    registry: SalonRegistry,
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    clock: Clock,
    redis: Redis,
    salon_id: str,
) -> None:
    await registry.add(salon_b.id, salon_b.values("Studio Süd"))
    gateway = await start_many(
        start_gateway, analytics_db, calendar_a, clock, metrics_refresh_seconds=0.2
    )
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    await set_webhook(gateway, salon_b)
    await Chat(sandbox.telegram, 501).say("/start")
    await Chat(salon_b.telegram, 502).say("/start")
    await Chat(salon_b.telegram, 503).say("/start")

    queued = 'frontdesk_webhooks_total{result="queued",salon="%s",source="telegram"}'
    text = await scrape(gateway)
    # The environment's salon has its label too (with a registry, every series has one).
    assert value(text, queued % salon_id) == 1
    assert value(text, queued % salon_b.id) == 2
    assert value(text, f'frontdesk_breaker_state{{salon="{salon_b.id}",service="calcom"}}') == 0
    assert 'frontdesk_webhooks_total{result="queued",source="telegram"}' not in text
    # Each salon's queues are read from its own keys, in the background.
    await redis.xadd(f"fd:{salon_b.id}:dlq", {"kind": "inbound", "error": "boom"})

    async def dead_letter_shown() -> bool:
        return value(await scrape(gateway), f'frontdesk_dead_letters{{salon="{salon_b.id}"}}') == 1

    await eventually(dead_letter_shown, timeout=5)
    assert value(await scrape(gateway), f'frontdesk_dead_letters{{salon="{salon_id}"}}') == 0
