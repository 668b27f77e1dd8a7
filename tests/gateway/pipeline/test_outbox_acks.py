"""The outbox's acknowledgements: those that come while one is on its way go together."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.pipeline.keys import OUTBOUND_GROUP
from gateway.pipeline.outbox_acks import Acks
from gateway.pipeline.streams import Outgoing
from gateway.pipeline.workers import ensure_group
from tests.conftest import eventually
from tests.gateway.pipeline.test_outbox import held_lease, outgoing, stop, telegram_sender


class SlowWrites:
    """Records each write's ids; a write lasts until `release` is set."""

    def __init__(self, result: object = 1) -> None:
        self.writes: list[list[str]] = []
        self.release = asyncio.Event()
        self.result = result
        self.error: Exception | None = None

    async def __call__(self, ids: list[str]) -> object:
        self.writes.append(list(ids))
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


async def test_acknowledgements_that_come_during_a_write_go_in_the_next_one() -> None:
    writes = SlowWrites()
    acks = Acks(writes)
    first = asyncio.create_task(acks.ack("1-0"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(acks.ack(f"{n}-0")) for n in range(2, 6)]
    await asyncio.sleep(0)
    assert writes.writes == [["1-0"]]  # the first went at once, alone
    writes.release.set()
    assert await asyncio.gather(first, *rest) == [1] * 5
    assert writes.writes == [["1-0"], ["2-0", "3-0", "4-0", "5-0"]]
    # Idle again: the next one goes at once.
    assert await acks.ack("6-0") == 1
    assert writes.writes[-1] == ["6-0"]


async def test_a_failed_write_fails_every_acknowledgement_in_it() -> None:
    writes = SlowWrites()
    acks = Acks(writes)
    first = asyncio.create_task(acks.ack("1-0"))
    await asyncio.sleep(0)
    writes.error = ConnectionError("Redis went away")
    rest = [asyncio.create_task(acks.ack(f"{n}-0")) for n in (2, 3)]
    await asyncio.sleep(0)
    writes.release.set()
    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    writes.error = None
    assert await acks.ack("2-0") == 1  # tried again by its own chat, as before


async def test_a_cancelled_caller_leaves_nobody_waiting() -> None:
    writes = SlowWrites()
    acks = Acks(writes)
    first = asyncio.create_task(acks.ack("1-0"))
    await asyncio.sleep(0)
    leader = asyncio.create_task(acks.ack("2-0"))  # leads the next batch, waiting
    await asyncio.sleep(0)
    rider = asyncio.create_task(acks.ack("3-0"))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(RuntimeError, match="try again"):
        await asyncio.wait_for(rider, 1)
    writes.release.set()
    assert await first == 1
    # A rider cancelled does not cancel the outcome of the others in its batch.
    writes.release.clear()
    busy = asyncio.create_task(acks.ack("4-0"))
    await asyncio.sleep(0)
    leading = asyncio.create_task(acks.ack("5-0"))
    await asyncio.sleep(0)
    riding = asyncio.create_task(acks.ack("6-0"))
    await asyncio.sleep(0)
    riding.cancel()
    writes.release.set()
    assert await asyncio.gather(busy, leading) == [1, 1]
    assert writes.writes[-1] == ["5-0", "6-0"]


async def test_a_backlog_of_many_chats_is_acknowledged_in_fewer_calls_and_none_left(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id)

    class Answering:
        """Each answer takes a moment, as Telegram's do: the chats' sends overlap."""

        def __init__(self) -> None:
            self.sent: list[Outgoing] = []

        async def deliver(self, message: Outgoing) -> None:
            await asyncio.sleep(0.01)
            self.sent.append(message)

    delivery = Answering()
    sender = telegram_sender(redis, lease, delivery, batch=100)  # type: ignore[arg-type]
    calls: list[int] = []
    write = sender._ack

    async def counted(ids: list[str]) -> object:
        calls.append(len(ids))
        return await write(ids)

    sender._acks = Acks(counted)
    await ensure_group(redis, keys.outbound(0), OUTBOUND_GROUP)
    for chat in range(60):
        params = {"chat_id": chat, "text": "Запись подтверждена"}
        await redis.xadd(keys.outbound(0), outgoing(str(chat), params=params))
    running = asyncio.create_task(sender.run())

    async def all_recorded() -> bool:
        pending = await redis.xpending(keys.outbound(0), OUTBOUND_GROUP)
        return await redis.xlen(keys.outbound(0)) == 0 and pending["pending"] == 0

    await eventually(all_recorded, timeout=10)
    assert sorted(int(m.chat) for m in delivery.sent) == list(range(60))  # each once
    assert sum(calls) == 60
    assert len(calls) < 60  # some went together
    await stop(lease, running)


async def test_a_lost_lease_records_nothing_and_stops_the_chats(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id, holder="someone else")
    sender = telegram_sender(redis, lease, _Silent())  # type: ignore[arg-type]
    await redis.xadd(keys.outbound(0), outgoing("7", params={"chat_id": 7, "text": "hi"}))
    running = asyncio.create_task(sender.run())
    await asyncio.wait_for(lease.lost.wait(), 5)
    await asyncio.wait_for(running, 5)
    assert await redis.xlen(keys.outbound(0)) == 1  # left for the lease's holder


class _Silent:
    async def deliver(self, message: Outgoing) -> None:
        return None
