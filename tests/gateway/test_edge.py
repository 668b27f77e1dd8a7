"""The Telegram webhook edge: authenticated, size-limited, de-duplicated, durable or 503."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.embedded_redis import free_port
from tests.conftest import SECRET, Gateway, Sandbox, eventually, make_settings


def update(update_id: int, chat_id: int = 700, text: str = "/start") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 1_790_000_000,
        "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "en"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def queued(redis: Redis, gateway: Gateway) -> int:
    keys = gateway.runtime.keys
    return sum([await redis.xlen(keys.inbound(shard)) for shard in range(keys.shards)])


async def test_forged_and_missing_secret_are_refused_and_nothing_is_queued(
    gateway: Gateway, sandbox: Sandbox, redis: Redis
) -> None:
    assert await gateway.post_update(update(1), secret="wrong-secret") == (
        401,
        {"error": "unauthorized"},
    )
    assert (await gateway.post_update(update(2), secret=None))[0] == 401
    # A prefix of the right secret is still wrong.
    assert (await gateway.post_update(update(3), secret=SECRET[:-1]))[0] == 401
    await asyncio.sleep(0.3)
    assert await queued(redis, gateway) == 0
    assert sandbox.telegram.messages_for(700) == []


async def test_the_same_update_twice_gets_one_reply(gateway: Gateway, sandbox: Sandbox) -> None:
    assert await gateway.post_update(update(10)) == (200, {})
    assert await gateway.post_update(update(10)) == (200, {})
    await eventually(lambda: sandbox.telegram.messages_for(700))
    await asyncio.sleep(0.3)  # time enough for a second reply, were there one
    assert len(sandbox.telegram.messages_for(700)) == 1


async def test_malformed_bodies_are_400(gateway: Gateway, redis: Redis) -> None:
    for body in (
        b"{not json",
        b"[1, 2]",
        b'{"message": {}}',
        b'{"update_id": "7"}',
        b"\xff\xfe",
        b'{"update_id": NaN}',
        b'{"update_id": 123456789012345678901234567890}',  # beyond 64 bits
    ):
        status, answer = await gateway.post_update(body)
        assert status == 400, body
        assert answer["error"].startswith("malformed")
    assert await queued(redis, gateway) == 0


async def test_oversized_bodies_are_413(gateway: Gateway) -> None:
    big = json.dumps({**update(20), "padding": "x" * (1024 * 1024)}).encode()
    assert (await gateway.post_update(big))[0] == 413

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(17):
            yield b" " * (64 * 1024)

    async with gateway.http.post(
        f"{gateway.url}/webhooks/telegram",
        data=chunks(),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    ) as response:
        assert response.status == 413


async def test_redis_unreachable_is_503_never_200(salon_id: str) -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", salon_id, run_workers=False)
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        async with ClientSession() as http:
            async with http.post(
                str(server.make_url("/webhooks/telegram")),
                json=update(30),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as response:
                assert response.status == 503
            async with http.get(str(server.make_url("/readyz"))) as response:
                assert response.status == 503
                assert (await response.json())["redis"].startswith("unreachable")
            async with http.get(str(server.make_url("/healthz"))) as response:
                assert response.status == 200
    finally:
        await server.close()


async def test_concurrent_webhooks_are_all_queued_and_answered(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    """Writes of concurrent requests are grouped; each request still gets its own answer."""
    answers = await asyncio.gather(
        *(gateway.post_update(update(100 + i, chat_id=800 + i)) for i in range(40))
    )
    assert {status for status, _ in answers} == {200}
    for i in range(40):
        await eventually(lambda i=i: sandbox.telegram.messages_for(800 + i))
