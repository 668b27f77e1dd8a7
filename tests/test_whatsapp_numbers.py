"""One Meta app, several salons' numbers: `POST /webhooks/whatsapp` routed by
`metadata.phone_number_id`, and each salon's own `/webhooks/whatsapp/<salon>`."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.app import SERVED
from gateway.salons import SalonRegistry, SecretCipher
from gateway.wiring.routes import webhook_url
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import Gateway, GatewayFactory, eventually

SECRETS_KEY = Fernet.generate_key().decode()
APP_SECRET = "one-meta-app-secret"
NUMBER_A, NUMBER_B = "106540352242922", "106540352249999"


def whatsapp(number: str) -> dict[str, str]:
    return {
        "WHATSAPP_ACCESS_TOKEN": "wa-token",
        "WHATSAPP_PHONE_NUMBER_ID": number,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": f"verify-{number}",
        "WHATSAPP_API_URL": "http://127.0.0.1:9/v23.0",
    }


def change(number: str, message_id: str) -> dict[str, Any]:
    return {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
            "contacts": [{"profile": {"name": "Maria"}, "wa_id": "79161234567"}],
            "messages": [
                {
                    "from": "79161234567",
                    "id": message_id,
                    "timestamp": "1755684000",
                    "type": "text",
                    "text": {"body": "hello"},
                }
            ],
        },
    }


def notification(*changes: dict[str, Any]) -> bytes:
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}
    return json.dumps(body).encode()


async def post(gateway: Gateway, path: str, raw: bytes, secret: str = APP_SECRET) -> int:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
    async with gateway.http.post(f"{gateway.url}{path}", data=raw, headers=headers) as response:
        return response.status


async def queued(redis: Redis, salon_id: str) -> int:
    return sum(
        [await redis.xlen(key) async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}:in:*")]
    )


@pytest.fixture
async def two_numbers(
    analytics_db: str, start_gateway: GatewayFactory, salon_id: str, redis: Redis
) -> AsyncIterator[tuple[Gateway, str]]:
    registry = await SalonRegistry.open(analytics_db, SecretCipher(SECRETS_KEY), redis)
    other = f"{salon_id}w"
    await registry.add(other, {"SALON_NAME": "Studio Süd", **whatsapp(NUMBER_B)})
    # Without workers: what the edge queued stays in the streams to be counted.
    env = {name.lower(): value for name, value in whatsapp(NUMBER_A).items()}
    gateway = await start_gateway(
        run_workers=False, database_url=analytics_db, secrets_key=SECRETS_KEY, **env
    )
    await eventually(lambda: other in gateway.app[SERVED].live, timeout=10)
    yield gateway, other
    await registry.close()
    keys = [key async for key in redis.scan_iter(match=f"fd:{{{other}}}:*")]
    if keys:
        await redis.delete(*keys)


async def test_a_batch_of_several_numbers_is_split_per_salon(
    two_numbers: tuple[Gateway, str], salon_id: str, redis: Redis
) -> None:
    gateway, other = two_numbers
    raw = notification(
        change(NUMBER_A, "wamid.A1"), change(NUMBER_B, "wamid.B1"), change("999", "wamid.X1")
    )
    assert await post(gateway, "/webhooks/whatsapp", raw) == 200
    assert await queued(redis, salon_id) == 1
    assert await queued(redis, other) == 1
    # A number no salon serves is acknowledged and dropped.
    assert await post(gateway, "/webhooks/whatsapp", notification(change("999", "w.X2"))) == 200
    # A forged signature queues nothing at all.
    forged = notification(change(NUMBER_B, "wamid.B2"))
    assert await post(gateway, "/webhooks/whatsapp", forged, secret="wrong") == 401
    assert await queued(redis, other) == 1
    # The salon's own path takes its number's messages too.
    path = webhook_url("", "whatsapp", other)
    assert await post(gateway, path, notification(change(NUMBER_B, "wamid.B3"))) == 200
    assert await queued(redis, other) == 2


async def test_the_handshake_passes_with_any_served_salons_verify_token(
    two_numbers: tuple[Gateway, str],
) -> None:
    gateway, other = two_numbers
    for path, token, status in (
        ("/webhooks/whatsapp", f"verify-{NUMBER_B}", 200),
        ("/webhooks/whatsapp", f"verify-{NUMBER_A}", 200),
        ("/webhooks/whatsapp", "nobody's", 403),
        (f"/webhooks/whatsapp/{other}", f"verify-{NUMBER_B}", 200),
        (f"/webhooks/whatsapp/{other}", f"verify-{NUMBER_A}", 403),
        ("/webhooks/whatsapp/nosuchsalon", f"verify-{NUMBER_A}", 404),
    ):
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"}
        async with gateway.http.get(f"{gateway.url}{path}", params=query) as response:
            assert (path, token, response.status) == (path, token, status)
