"""The outbox against the Telegram stand-in enforcing the flood limits: whose 429 it was."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.integrations.telegram.api import TelegramDelivery, is_failure
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox import OutboxSender, pace
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.telegram import TelegramSandbox
from tests.conftest import eventually
from tests.gateway.pipeline.test_outbox import held_lease

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[TelegramSandbox, str]]:
    sandbox = TelegramSandbox(TOKEN, None)
    server = TestServer(sandbox.app())
    await server.start_server()
    yield sandbox, str(server.make_url("/"))
    await sandbox.close()
    await server.close()


async def queue(redis: Redis, keys: Keys, chat: int, text: str) -> None:
    params = json.dumps({"chat_id": chat, "text": text})
    await redis.xadd(
        keys.outbound(0),
        {"channel": "telegram", "chat": str(chat), "method": "sendMessage", "params": params},
    )


async def test_a_429_for_one_chat_of_a_quiet_bot_holds_that_chat_alone(
    redis: Redis, salon_id: str, telegram: tuple[TelegramSandbox, str]
) -> None:
    sandbox, url = telegram
    sandbox.enforce_limits(per_bot=30, per_chat=1.0, chat_burst=3)
    # Chat 77 had its burst from another replica a moment ago (the shard moved): this
    # replica's fresh pacer for it lets a message go at once, and Telegram refuses it.
    async with ClientSession() as http:
        for _ in range(3):
            body = {"chat_id": 77, "text": "Your visit is confirmed"}
            async with http.post(f"{url}bot{TOKEN}/sendMessage", json=body) as answer:
                assert answer.status == 200
    keys, lease = await held_lease(redis, salon_id)
    delivery = TelegramDelivery(TOKEN, url, CircuitBreaker("telegram", is_failure=is_failure))
    paced = pace(30.0, 1.0, 3)
    wake = asyncio.Event()
    sender = OutboxSender(
        redis,
        lease,
        {"telegram": delivery},
        {"telegram": paced[0]},
        {"telegram": paced[1]},
        Metrics(),
        schedule=(0.05,),
        wake=wake,
        slots=asyncio.Semaphore(4),
    )
    await queue(redis, keys, 77, "Reminder: tomorrow at 10:00")
    running = asyncio.create_task(sender.run())
    try:
        await eventually(lambda: sandbox.errors, timeout=5)
        refused_at = time.monotonic()
        assert sandbox.errors == [("sendMessage", 429, "Too Many Requests: retry after 1")]
        await queue(redis, keys, 78, "Hello! How can we help?")
        wake.set()
        sent = await eventually(
            lambda: [c for c in sandbox.sent if c.params.get("chat_id") == 78], timeout=5
        )
        # The other client's reply did not wait out chat 77's second.
        assert sent[0].at - refused_at < 0.5
        retried = await eventually(
            lambda: [c for c in sandbox.sent[3:] if c.params.get("chat_id") == 77], timeout=5
        )
        assert retried[0].at - refused_at >= 0.9
    finally:
        lease.lost.set()
        await asyncio.wait_for(running, 5)
        await delivery.close()
