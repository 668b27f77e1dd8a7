"""Telegram updates the bot cannot act on, through the real gateway: acknowledged (200), then
ignored quietly or dropped and counted, never retried into the dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.pipeline.inbox import Event
from tests.conftest import Gateway, Sandbox, eventually

ANNA = {"id": 700, "is_bot": False, "first_name": "Anna", "last_name": "Petrova"}
PRIVATE = {"id": 700, "type": "private", "first_name": "Anna"}


async def dead_letters(redis: Redis, gateway: Gateway) -> int:
    return int(await redis.xlen(gateway.runtime.keys.dead_letters))


async def pending(redis: Redis, gateway: Gateway) -> int:
    keys = gateway.runtime.keys
    total = 0
    for shard in range(keys.shards):
        if await redis.exists(keys.inbound(shard)):
            total += (await redis.xpending(keys.inbound(shard), "workers"))["pending"]
    return total


async def metric(gateway: Gateway, line: str) -> bool:
    async with gateway.http.get(f"{gateway.url}/metrics") as answer:
        return line in await answer.text()


async def test_an_update_of_an_unknown_type_is_answered_200_and_ignored_quietly(
    gateway: Gateway, sandbox: Sandbox, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram sends the types `allowed_updates` names (Bot API, setWebhook); a newer type, or
    one a hand-set webhook subscribed to, is not for the desk. aiogram would warn about it with
    the whole update (names, phone numbers) in the warning."""
    caplog.set_level(logging.DEBUG)
    contact = {"phone_number": "+447700900777", "first_name": "Anna"}
    updates: list[dict[str, Any]] = [
        {"update_id": 9001, "business_message_v99": {"chat": PRIVATE, "from": ANNA, **contact}},
        {"update_id": 9002, "message_reaction": {"chat": PRIVATE, "user": ANNA, "date": 1}},
        {"update_id": 9003},
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for update in updates:
            assert await gateway.post_update(update) == (200, {})
        # One queued before the edge ignored such updates: the worker ignores it too.
        raw = json.dumps(updates[0] | {"update_id": 9004}).encode()
        assert await gateway.runtime.inbox.put(Event("telegram", "9004", "tg:700", raw))
        await eventually(lambda: metric(gateway, 'result="ok",source="telegram"} 1.0'))
        await asyncio.sleep(0.2)
    assert [str(w.message) for w in caught] == []
    assert await dead_letters(redis, gateway) == 0
    assert await pending(redis, gateway) == 0
    assert sandbox.telegram.messages_for(700) == []
    assert "447700900777" not in caplog.text
    assert "Petrova" not in caplog.text


async def test_an_update_the_worker_cannot_read_is_dropped_and_counted_not_dead_lettered(
    gateway: Gateway, sandbox: Sandbox, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    message = {"message_id": 7, "date": 1_790_000_000, "chat": PRIVATE, "from": ANNA}
    unreadable = [
        # Bot API types: `date` is an Integer, `text` a String, `from` a User.
        {"update_id": 9101, "message": message | {"date": "yesterday", "text": "hi"}},
        {"update_id": 9102, "message": message | {"text": ["hi"]}},
        {"update_id": 9103, "callback_query": {"id": "q", "from": "Anna", "chat_instance": "1"}},
    ]
    for update in unreadable:
        assert await gateway.post_update(update) == (200, {})
    # Without a sender a private chat's message is no client's: ignored, not an error.
    assert await gateway.post_update({"update_id": 9104, "message": message | {"from": None}}) == (
        200,
        {},
    )
    # An entry queued by an older version with looser rules: not even a JSON object.
    assert await gateway.runtime.inbox.put(Event("telegram", "9105", "tg:700", b"[1]"))
    dropped = 'frontdesk_events_dropped_total{reason="unreadable",source="telegram"} 4.0'
    await eventually(lambda: metric(gateway, dropped))
    await eventually(lambda: metric(gateway, 'result="dropped",source="telegram"} 4.0'))
    await eventually(lambda: metric(gateway, 'result="ok",source="telegram"} 1.0'))
    assert not await metric(gateway, 'result="failed",source="telegram"}')
    assert await dead_letters(redis, gateway) == 0
    assert await pending(redis, gateway) == 0
    assert sandbox.telegram.messages_for(700) == []
    # The log says what was dropped, not what it said (pydantic's errors quote the input).
    drops = [r for r in caplog.records if "cannot be handled" in r.getMessage()]
    assert len(drops) == 4
    assert "yesterday" not in caplog.text
    assert "Petrova" not in caplog.text
