"""Staff of each salon see only their own clients: two salons in one gateway, each with its own
bot and its own Chatwoot, and a client id that happens to be the same in both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.salons import SalonRegistry
from gateway.sandbox.chatwoot import ChatwootSandbox
from gateway.wiring.routes import webhook_url
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.support.clock import Clock
from tests.test_flow_booking import Chat, Salon
from tests.test_flow_handoff import CW_SPEC, CW_TOKEN, Desk, texts
from tests.test_flow_salons import RegistrySalon, served, set_webhook, start_many
from tests.test_flow_salons import calendar_a as calendar_a  # the fixtures, shared
from tests.test_flow_salons import clock as clock
from tests.test_flow_salons import registry as registry
from tests.test_flow_salons import salon_b as salon_b


async def _desk() -> tuple[Desk, TestServer]:
    chatwoot = ChatwootSandbox(CW_TOKEN, 1, CW_SPEC if CW_SPEC.exists() else None)
    telegram_inbox = chatwoot.add_inbox("Telegram (gateway)")
    whatsapp_inbox = chatwoot.add_inbox("WhatsApp (gateway)")
    server = TestServer(chatwoot.app())
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    return Desk(chatwoot, url, telegram_inbox.id, whatsapp_inbox.id), server


@pytest.fixture
async def desks() -> AsyncIterator[tuple[Desk, Desk]]:
    (a, server_a), (b, server_b) = await _desk(), await _desk()
    yield a, b
    for desk, server in ((a, server_a), (b, server_b)):
        await desk.chatwoot.close()
        await server.close()


def chatwoot(desk: Desk) -> dict[str, str]:
    return {
        "CHATWOOT_API_TOKEN": CW_TOKEN,
        "CHATWOOT_URL": desk.url,
        "CHATWOOT_ACCOUNT_ID": "1",
        "CHATWOOT_TELEGRAM_INBOX_ID": str(desk.telegram_inbox),
        "CHATWOOT_WEBHOOK_SECRET": ",".join(i.secret for i in desk.chatwoot.inboxes.values()),
    }


@pytest.fixture
def start_with_desks(
    start_gateway: GatewayFactory,
    analytics_db: str,
    registry: SalonRegistry,
    calendar_a: Salon,
    salon_b: RegistrySalon,
    clock: Clock,
    desks: tuple[Desk, Desk],
) -> Callable[..., Awaitable[Any]]:
    """`await start_with_desks(**env)`: salon A from the gateway's settings, salon B from the
    registry, each with its own Chatwoot (and `env`, e.g. Novu's, for both), each desk's
    inboxes posting to its salon. Gives the gateway."""

    async def start(**env: str) -> Any:
        desk_a, desk_b = desks
        await registry.add(salon_b.id, salon_b.values("Studio Süd") | chatwoot(desk_b) | env)
        settings = {name.lower(): value for name, value in (chatwoot(desk_a) | env).items()}
        gateway = await start_many(
            start_gateway, analytics_db, calendar_a, clock, service_timeout_seconds=1.0, **settings
        )
        await eventually(lambda: served(gateway, salon_b.id), timeout=10)
        await set_webhook(gateway, salon_b)
        for inbox in desk_a.chatwoot.inboxes.values():
            inbox.webhook_url = f"{gateway.url}/webhooks/chatwoot"
        for inbox in desk_b.chatwoot.inboxes.values():
            inbox.webhook_url = webhook_url(gateway.url, "chatwoot", salon_b.id)
        return gateway

    return start


async def test_staff_of_each_salon_see_and_answer_only_their_own_clients(
    start_with_desks: Callable[..., Awaitable[Any]],
    sandbox: Sandbox,
    salon_b: RegistrySalon,
    desks: tuple[Desk, Desk],
    redis: Redis,
) -> None:
    desk_a, desk_b = desks
    await start_with_desks()

    # The same Telegram id in both salons: two different clients, of two different bots.
    in_a, in_b = Chat(sandbox.telegram, 701), Chat(salon_b.telegram, 701)
    await in_a.say("/start")
    await in_b.say("/start")
    await sandbox.telegram.client_says(701, "I am salon A's client")
    await salon_b.telegram.client_says(701, "I am salon B's client")
    thread_a = await eventually(lambda: desk_a.chatwoot.conversation_for("tg:701"))
    thread_b = await eventually(lambda: desk_b.chatwoot.conversation_for("tg:701"))
    await eventually(lambda: any("salon A's" in m["content"] for m in thread_a.messages))
    await eventually(lambda: any("salon B's" in m["content"] for m in thread_b.messages))
    assert not any("salon B's" in m["content"] for m in thread_a.messages)
    assert not any("salon A's" in m["content"] for m in thread_b.messages)
    assert "Studio Süd" in thread_b.messages[1]["content"]
    assert "Studio Süd" not in thread_a.messages[1]["content"]

    # Salon B's staff answer: only salon B's client hears it, through salon B's bot.
    desk_b.chatwoot.agent_replies(thread_b.id, "Hello from salon B's staff")
    await eventually(lambda: "Hello from salon B's staff" in texts(in_b), timeout=10)
    desk_a.chatwoot.agent_replies(thread_a.id, "Hello from salon A's staff")
    await eventually(lambda: "Hello from salon A's staff" in texts(in_a), timeout=10)
    assert "Hello from salon A's staff" not in texts(in_b)
    assert "Hello from salon B's staff" not in texts(in_a)
    assert desk_a.chatwoot.errors == []
    assert desk_b.chatwoot.errors == []
