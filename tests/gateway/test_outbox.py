"""The outbox on its own: what happens between a delivery and its record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.outbox import OutboxSender, Pacing
from gateway.resilience import TokenBucket
from gateway.streams import Outgoing
from gateway.workers import Lease
from tests.conftest import eventually


class RecordingDelivery:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def deliver(self, message: Outgoing) -> None:
        self.sent.append(message)


async def test_a_delivered_message_is_not_sent_again_when_recording_it_fails(
    redis: Redis, salon_id: str
) -> None:
    keys = Keys(salon_id, 1)
    await redis.set(keys.lease(0), "me")
    lease = Lease(redis, keys, 0, "me")
    await redis.xadd(
        keys.outbound(0),
        {
            "channel": "telegram",
            "chat": "5",
            "method": "sendMessage",
            "params": json.dumps({"chat_id": 5, "text": "Hello"}),
            "ephemeral": "0",
            "origin": "1-0",
        },
    )
    delivery = RecordingDelivery()
    sender = OutboxSender(
        redis,
        lease,
        {"telegram": delivery},
        {"telegram": Pacing(1000.0, 100, 1000.0)},
        {"telegram": TokenBucket(1000.0, 100)},
        Metrics(),
        schedule=(0.05,),
        wake=asyncio.Event(),
        slots=asyncio.Semaphore(4),
    )
    record = sender._done
    failures = [RedisConnectionError("Redis went away")]

    async def flaky(keys: Any, args: Any = ()) -> Any:
        if failures:
            raise failures.pop()
        return await record(keys=keys, args=args)

    sender._done = flaky  # type: ignore[assignment]
    running = asyncio.create_task(sender.run())
    await eventually(lambda: redis.xlen(keys.outbound(0)), timeout=1)  # still there at first

    async def recorded() -> bool:
        return await redis.xlen(keys.outbound(0)) == 0

    await eventually(recorded, timeout=5)
    assert [m.params["text"] for m in delivery.sent] == ["Hello"]
    lease.lost.set()
    await asyncio.wait_for(running, 5)
