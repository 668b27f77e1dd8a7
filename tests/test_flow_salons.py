"""Many salons in one gateway: the environment's salon and the registry's, each with its own bot
and its own Cal.com, served side by side by the real app; the registry followed while it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.app import SERVED
from gateway.salons import SalonRegistry, SecretCipher
from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.telegram import TelegramSandbox
from gateway.wiring.routes import webhook_url
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import TELEGRAM_SPEC, Gateway, GatewayFactory, Sandbox, eventually
from tests.support.clock import Clock
from tests.test_flow_booking import KEY as CAL_KEY
from tests.test_flow_booking import Chat, Salon, _serve, book_until_summary, master_id

SECRETS_KEY = Fernet.generate_key().decode()
TOKEN_B = "654321:TEST-token-bbbbbbbbbbbbbbbbbbbbbbb"
SECRET_B = "salon-b-webhook-secret"
JSON = dict[str, Any]


@dataclass
class RegistrySalon:
    """A salon of the registry: its id, its own Telegram bot and its own Cal.com."""

    id: str
    telegram: TelegramSandbox
    telegram_url: str
    calendar: Salon

    def values(self, name: str) -> dict[str, str]:
        return {
            "SALON_NAME": name,
            "SALON_TIMEZONE": "Europe/Moscow",
            "SALON_ADDRESS": "2 Second Street",
            "SALON_CURRENCY": "RUB",
            "DEFAULT_LOCALE": "en",
            "TELEGRAM_BOT_TOKEN": TOKEN_B,
            "TELEGRAM_WEBHOOK_SECRET": SECRET_B,
            "TELEGRAM_API_URL": self.telegram_url,
            "TELEGRAM_RATE_PER_CHAT": "1000",
            "TELEGRAM_BURST_PER_CHAT": "100",
            "TELEGRAM_RATE_GLOBAL": "10000",
            "CALCOM_API_URL": self.calendar.url,
            "CALCOM_API_KEY": CAL_KEY,
            "CALCOM_TEAM_ID": str(self.calendar.team_id),
        }


def _calendar(clock: Clock) -> CalcomSandbox:
    from tests.conftest import CONTRACTS

    spec = CONTRACTS / "calcom-v2.openapi.json"
    return CalcomSandbox(CAL_KEY, spec if spec.exists() else None, clock=clock)


@pytest.fixture
def clock() -> Clock:
    # Monday 1 June 2026, 10:00 in Moscow.
    return Clock(datetime(2026, 6, 1, 7, 0, tzinfo=UTC))


@pytest.fixture
async def calendar_a(clock: Clock) -> AsyncIterator[Salon]:
    calendar = _calendar(clock)
    salon = await _serve(calendar, clock, calendar.seed_demo_salon(zone="Europe/Moscow"))
    yield salon
    await salon.runner.cleanup()
    await calendar.close()


@pytest.fixture
async def salon_b(salon_id: str, clock: Clock, redis: Redis) -> AsyncIterator[RegistrySalon]:
    calendar = _calendar(clock)
    booked = await _serve(calendar, clock, calendar.seed_demo_salon(zone="Europe/Moscow"))
    telegram = TelegramSandbox(TOKEN_B, TELEGRAM_SPEC if TELEGRAM_SPEC.exists() else None)
    server = TestServer(telegram.app())
    await server.start_server()
    salon = RegistrySalon(f"{salon_id}b", telegram, str(server.make_url("")).rstrip("/"), booked)
    yield salon
    await telegram.close()
    await server.close()
    await booked.runner.cleanup()
    await calendar.close()
    keys = [key async for key in redis.scan_iter(match=f"fd:{{{salon.id}}}*", count=500)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def registry(analytics_db: str, redis: Redis) -> AsyncIterator[SalonRegistry]:
    registry = await SalonRegistry.open(analytics_db, SecretCipher(SECRETS_KEY), redis)
    yield registry
    await registry.close()


async def start_many(
    start_gateway: GatewayFactory,
    analytics_db: str,
    calendar: Salon,
    clock: Clock,
    **settings: Any,
) -> Gateway:
    return await start_gateway(
        clock=clock,
        database_url=analytics_db,
        secrets_key=SECRETS_KEY,
        calcom_api_url=calendar.url,
        calcom_api_key=CAL_KEY,
        calcom_team_id=calendar.team_id,
        salon_currency="RUB",
        salon_address="1 Example Street",
        **settings,
    )


async def set_webhook(gateway: Gateway, salon: RegistrySalon) -> None:
    async with ClientSession() as http:
        url = webhook_url(gateway.url, "telegram", salon.id)
        async with http.post(
            f"{salon.telegram_url}/bot{TOKEN_B}/setWebhook",
            json={"url": url, "secret_token": SECRET_B},
        ) as response:
            assert response.status == 200


async def served(gateway: Gateway, salon_id: str) -> bool:
    live = gateway.app[SERVED].live.get(salon_id)
    return live is not None and live.runtime.pool is not None and live.runtime.pool.ready.is_set()


async def test_two_salons_each_book_through_their_own_bot_and_calendar(
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
    gateway = await start_many(start_gateway, analytics_db, calendar_a, clock)
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    await set_webhook(gateway, salon_b)

    in_a = Chat(sandbox.telegram, 501)
    in_b = Chat(salon_b.telegram, 502)
    assert "Studio Nord" in (await in_a.say("/start"))[-1]["text"]
    assert "Studio Süd" in (await in_b.say("/start"))[-1]["text"]

    for chat, calendar in ((in_a, calendar_a), (in_b, salon_b.calendar)):
        await book_until_summary(chat, "womens-haircut", str(master_id(calendar, "Anna")))
        await chat.share_phone("79161234567" if chat is in_a else "79169876543")
        done = await chat.tap("b:ok:", prefix=True)
        assert done[-1]["text"].startswith("✅ You are booked!")

    # Each salon's booking went to its own Cal.com, each client's words to their own bot.
    [booked_a] = calendar_a.made_in_chat()
    [booked_b] = salon_b.calendar.made_in_chat()
    assert booked_a["metadata"]["frontdesk_chat"] == "501"
    assert booked_b["metadata"]["frontdesk_chat"] == "502"
    assert not sandbox.telegram.messages_for(502)
    assert not salon_b.telegram.messages_for(501)
    assert not sandbox.telegram.errors
    assert not salon_b.telegram.errors
    # Each salon's conversations live under its own keys.
    b_keys = {key async for key in redis.scan_iter(match=f"fd:{{{salon_b.id}}}:*", count=500)}
    a_keys = {key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}:*", count=500)}
    assert any(b"session" in key for key in b_keys)
    assert any(b"session" in key for key in a_keys)

    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        ready = await response.json()
    services = ready["salons"][salon_b.id]["services"]
    assert (services["telegram"], services["calcom"], services["whatsapp"]) == (
        "closed",
        "closed",
        "off",
    )
    assert list(ready["salons"]) == [salon_b.id]

    # The environment's salon also answers on its own path.
    status, _ = await post_telegram(gateway, salon_id, {"update_id": 1}, "wrong-secret")
    assert status == 401


async def post_telegram(
    gateway: Gateway, salon_id: str, update: JSON, secret: str
) -> tuple[int, JSON]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
    url = webhook_url(gateway.url, "telegram", salon_id)
    async with gateway.http.post(url, json=update, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def update(update_id: int, chat_id: int, text: str) -> JSON:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_780_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "text": text,
        },
    }


async def test_a_salon_added_while_running_goes_live_and_a_disabled_one_is_gone(
    analytics_db: str,
    registry: SalonRegistry,
    start_gateway: GatewayFactory,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    clock: Clock,
    redis: Redis,
) -> None:
    gateway = await start_many(start_gateway, analytics_db, calendar_a, clock)
    status, _ = await post_telegram(gateway, salon_b.id, update(1, 7, "/start"), SECRET_B)
    assert status == 404

    added = asyncio_time()
    await registry.add(salon_b.id, salon_b.values("Studio Süd"))
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    assert asyncio_time() - added < 10
    await set_webhook(gateway, salon_b)
    chat = Chat(salon_b.telegram, 7)
    assert "Studio Süd" in (await chat.say("/start"))[-1]["text"]

    # An update rebuilds the salon: the next answer speaks with its new name.
    await registry.update(salon_b.id, {"SALON_NAME": "Studio West"})
    await eventually(
        lambda: (
            gateway.app[SERVED].live[salon_b.id].runtime.settings.salon.profile.name
            == "Studio West"
        ),
        timeout=10,
    )
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    assert "Studio West" in (await chat.say("/start"))[-1]["text"]

    await registry.set_enabled(salon_b.id, False)
    await eventually(lambda: salon_b.id not in gateway.app[SERVED].live, timeout=10)
    # Stopped to its end: its workers write their leases until then.
    await eventually(lambda: gateway.app[SERVED].settled, timeout=10)
    streams = f"fd:{{{salon_b.id}}}:in:*"
    before = sorted([key async for key in redis.scan_iter(match=f"fd:{{{salon_b.id}}}:*")])
    lengths = [await redis.xlen(key) for key in before if key.decode().startswith(streams[:-1])]
    status, body = await post_telegram(gateway, salon_b.id, update(99, 7, "hi"), SECRET_B)
    assert (status, body) == (410, {"error": "salon disabled"})
    after = sorted([key async for key in redis.scan_iter(match=f"fd:{{{salon_b.id}}}:*")])
    assert after == before
    assert [await redis.xlen(key) for key in after if key.decode().startswith(streams[:-1])] == (
        lengths
    )
    assert not await redis.exists(f"fd:{{{salon_b.id}}}:dedup:telegram:99")

    # Enabled again, it is served again; removed, it is no salon at all.
    await registry.set_enabled(salon_b.id, True)
    await eventually(lambda: served(gateway, salon_b.id), timeout=10)
    await registry.set_enabled(salon_b.id, False)
    await eventually(lambda: salon_b.id not in gateway.app[SERVED].live, timeout=10)
    await registry.remove(salon_b.id)

    async def gone() -> bool:
        status, _ = await post_telegram(gateway, salon_b.id, update(100, 7, "hi"), SECRET_B)
        return status == 404

    # Removed while disabled, it is no salon at all: its 410 becomes a 404.
    await eventually(gone, timeout=10)


def asyncio_time() -> float:
    import time

    return time.monotonic()


def test_webhook_urls_follow_one_convention() -> None:
    assert webhook_url("https://fd.example/", "calcom", "nord") == (
        "https://fd.example/webhooks/calcom/nord"
    )
    with pytest.raises(ValueError, match="no webhooks"):
        webhook_url("https://fd.example", "metabase", "nord")


async def test_a_source_a_salon_has_not_configured_is_not_found(gateway: Gateway) -> None:
    salon_id = gateway.runtime.settings.salon.profile.id
    for path in (f"/webhooks/calcom/{salon_id}", f"/webhooks/chatwoot/{salon_id}/token"):
        async with gateway.http.post(f"{gateway.url}{path}", data=b"{}") as response:
            assert response.status == 404
    async with gateway.http.get(f"{gateway.url}/webhooks/whatsapp/{salon_id}") as response:
        assert response.status == 404
    async with gateway.http.get(f"{gateway.url}/webhooks/whatsapp") as response:
        assert response.status == 404
    async with gateway.http.post(f"{gateway.url}/webhooks/whatsapp", data=b"{}") as response:
        assert response.status == 404
