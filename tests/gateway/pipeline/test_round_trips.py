"""Calls made in one pass of the event loop share a pipeline; each gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.pipeline.lua import Lua
from gateway.pipeline.round_trips import RoundTrips


class CountingRedis(Redis):
    """A real client that counts how its commands leave: alone, or in pipelines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alone: list[tuple[Any, ...]] = []
        self.pipelines = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.alone.append(args)
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.pipelines += 1
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
async def counting(redis_url: str) -> Any:
    client = CountingRedis.from_url(redis_url)
    yield client
    await client.aclose()


def key(salon_id: str, name: str) -> str:
    return f"fd:{{{salon_id}}}:{name}"


async def test_calls_of_one_pass_go_in_one_pipeline_each_with_its_answer(
    counting: CountingRedis, redis: Redis, salon_id: str
) -> None:
    await redis.set(key(salon_id, "a"), "1")
    await redis.hset(key(salon_id, "h"), "f", "v")  # type: ignore[misc]
    trips = RoundTrips(counting)
    results = await asyncio.gather(
        trips.call("GET", key(salon_id, "a")),
        trips.call("MGET", key(salon_id, "a"), key(salon_id, "none")),
        trips.call("GET", key(salon_id, "h")),  # the wrong type: an error for this call only
        trips.call("INCR", key(salon_id, "n")),
        return_exceptions=True,
    )
    assert results[:2] == [b"1", [b"1", None]]
    assert isinstance(results[2], ResponseError)
    assert "WRONGTYPE" in str(results[2])
    assert results[3] == 1
    assert counting.pipelines == 1
    assert counting.alone == []


async def test_a_call_alone_goes_as_it_is(counting: CountingRedis, salon_id: str) -> None:
    trips = RoundTrips(counting)
    assert await trips.call("INCR", key(salon_id, "n")) == 1
    assert counting.pipelines == 0
    assert counting.alone == [("INCR", key(salon_id, "n"))]
    with pytest.raises(ResponseError):
        await trips.call("NOSUCHCOMMAND")
    assert await trips.call("INCR", key(salon_id, "n")) == 2  # the client is fine after it


async def test_a_conversation_s_calls_keep_their_order(
    counting: CountingRedis, redis: Redis, salon_id: str
) -> None:
    trips = RoundTrips(counting)
    stream = key(salon_id, "order")

    async def conversation(name: str) -> None:
        for n in range(20):
            await trips.call("RPUSH", stream, f"{name}:{n}")

    await asyncio.gather(*(conversation(name) for name in "abc"))
    pushed = [item.decode() for item in await redis.lrange(stream, 0, -1)]  # type: ignore[misc]
    for name in "abc":
        assert [p for p in pushed if p.startswith(name)] == [f"{name}:{n}" for n in range(20)]
    assert counting.pipelines >= 1  # they did share round trips


async def test_a_cancelled_leader_fails_its_followers_instead_of_leaving_them_waiting(
    counting: CountingRedis, salon_id: str
) -> None:
    trips = RoundTrips(counting)
    leader = asyncio.create_task(trips.call("INCR", key(salon_id, "n")))
    follower = asyncio.create_task(trips.call("INCR", key(salon_id, "n")))
    await asyncio.sleep(0)  # the leader waits for the pass's calls; the follower joins it
    leader.cancel()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(follower, 2)
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await trips.call("INCR", key(salon_id, "n")) == 1  # the next call leads anew


async def test_batched_scripts_survive_a_flushed_script_cache(
    counting: CountingRedis, redis: Redis, salon_id: str
) -> None:
    script = Lua(counting, "return redis.call('INCR', KEYS[1])", batched=True)
    assert await script(keys=[key(salon_id, "n")]) == 1
    await redis.script_flush()  # a restarted Redis forgets its scripts
    answers = await asyncio.gather(*(script(keys=[key(salon_id, "n")]) for _ in range(5)))
    assert sorted(answers) == [2, 3, 4, 5, 6]
