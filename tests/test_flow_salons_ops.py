"""Operations per salon in a gateway that serves the registry's salons: their metrics under a
`salon` label, and each salon's staff opening their own dashboard."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from gateway.app import SERVED
from gateway.salons import SalonRegistry
from gateway.sandbox.metabase import verify_embed
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

JSON = dict[str, Any]


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
    await redis.xadd(f"fd:{{{salon_b.id}}}:dlq", {"kind": "inbound", "error": "boom"})

    async def dead_letter_shown() -> bool:
        return value(await scrape(gateway), f'frontdesk_dead_letters{{salon="{salon_b.id}"}}') == 1

    await eventually(dead_letter_shown, timeout=5)
    assert value(await scrape(gateway), f'frontdesk_dead_letters{{salon="{salon_id}"}}') == 0


METABASE_SECRET = "0123456789abcdef" * 4


def signed(url: str) -> JSON:
    """What the signed embed URL says (checked with Metabase's embedding secret)."""
    payload: JSON = verify_embed(url.split("/embed/dashboard/")[1].split("#")[0], METABASE_SECRET)
    return payload


async def embed(gateway: Gateway, salon: str, token: str) -> tuple[int, JSON]:
    url = f"{gateway.url}/analytics/embed/{salon}?days=7"
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_each_salons_staff_open_their_own_dashboard_with_their_own_token(
    analytics_db: str,
    registry: SalonRegistry,
    start_gateway: GatewayFactory,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    clock: Clock,
    salon_id: str,
) -> None:
    await registry.add(
        salon_b.id,
        {
            "SALON_NAME": "Studio Süd",
            "SALON_TIMEZONE": "Asia/Yekaterinburg",
            "METABASE_SITE_URL": "https://metabase.sud.example",
            "METABASE_SECRET_KEY": METABASE_SECRET,
            "METABASE_DASHBOARD_ID": "7",
            "ANALYTICS_EMBED_TOKEN": "sud-staff-token",
        },
    )
    await registry.add(f"{salon_b.id}-plain", {"SALON_NAME": "No dashboard"})
    gateway = await start_many(
        start_gateway,
        analytics_db,
        calendar_a,
        clock,
        metabase_site_url="https://metabase.nord.example",
        metabase_secret_key=METABASE_SECRET,
        metabase_dashboard_id=3,
        analytics_embed_token="nord-staff-token",
    )
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    await eventually(lambda: served(gateway, f"{salon_b.id}-plain"), timeout=10)

    status, body = await embed(gateway, salon_b.id, "sud-staff-token")
    assert status == 200
    assert body["url"].startswith("https://metabase.sud.example/embed/dashboard/")
    payload = signed(body["url"])
    # Salon B's own dashboard, locked to salon B, its days counted on its own clock.
    assert payload["resource"] == {"dashboard": 7}
    assert payload["params"]["salon"] == salon_b.id
    start, end = payload["params"]["start"], payload["params"]["end"]
    assert (datetime.fromisoformat(end) - datetime.fromisoformat(start)).days == 6
    # Another salon's staff token opens nothing here, nor B's at the environment's salon.
    assert (await embed(gateway, salon_b.id, "nord-staff-token"))[0] == 403
    assert (await embed(gateway, salon_id, "sud-staff-token"))[0] == 403
    status, body = await embed(gateway, salon_id, "nord-staff-token")
    assert status == 200
    assert signed(body["url"])["params"]["salon"] == salon_id
    # The environment's salon keeps its own route and answers.
    url = f"{gateway.url}/analytics/embed?token=sud-staff-token"
    async with gateway.http.get(url) as response:
        assert response.status == 401
    assert await embed(gateway, f"{salon_b.id}-plain", "x") == (
        404,
        {"error": "no analytics embed for this salon"},
    )
    assert (await embed(gateway, "nobody", "sud-staff-token"))[0] == 404

    await registry.set_enabled(salon_b.id, False)
    await eventually(lambda: salon_b.id not in gateway.app[SERVED].live, timeout=10)
    assert await embed(gateway, salon_b.id, "sud-staff-token") == (
        410,
        {"error": "salon disabled"},
    )
