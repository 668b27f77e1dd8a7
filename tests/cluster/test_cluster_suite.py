"""The gateway's guarantees on a 3-node Redis Cluster: the same tests as on one Redis (imported,
so they are the very same assertions), run with `redis+cluster://` (tests/cluster/conftest.py),
and what only a cluster has: a node killed with SIGKILL and restarted mid-handling.

Durability: a gateway killed mid-handling, two replicas, a graceful stop. Ordering per
conversation, de-duplication, dead letters and their replay (in-process and by the CLI), queue
metrics read by one Lua call over all shards. A step whose keys left their slot would fail here
with CROSSSLOT before it reached Redis.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis
from redis.exceptions import RedisClusterException

from gateway.pipeline.keys import INBOUND_GROUP, OUTBOUND_GROUP, Keys, RegistryKeys
from gateway.pipeline.redis_client import GatewayCluster, connect_redis
from tests.conftest import Sandbox, eventually
from tests.gateway.pipeline.test_delivery import (
    test_a_burst_of_50_updates_from_one_chat_is_answered_in_order,
    test_an_entry_that_keeps_failing_is_dead_lettered_with_its_error,
    test_failures_past_the_schedule_are_dead_lettered_and_can_be_replayed,
)
from tests.gateway.pipeline.test_edge import (
    test_concurrent_webhooks_are_all_queued_and_answered,
    test_the_same_update_twice_gets_one_reply,
    update,
)
from tests.gateway.test_cli import operator_env, run, test_dlq_list_and_replay
from tests.gateway.test_operations import test_queue_depth_and_lag_show_work_waiting
from tests.gateway.test_processes import (
    Spawn,
    queued,
    spawn,
    test_sigkill_mid_handling_then_restart_gives_exactly_one_reply,
    test_sigterm_lets_in_flight_work_finish_and_deliver,
    test_two_replicas_share_the_work_and_handle_nothing_twice,
)
from tests.support.redis_cluster import RedisCluster

pytestmark = pytest.mark.cluster

# Collected here as well as where they are written, against the cluster.
__all__ = [
    "operator_env",
    "spawn",
    "test_a_burst_of_50_updates_from_one_chat_is_answered_in_order",
    "test_an_entry_that_keeps_failing_is_dead_lettered_with_its_error",
    "test_concurrent_webhooks_are_all_queued_and_answered",
    "test_dlq_list_and_replay",
    "test_failures_past_the_schedule_are_dead_lettered_and_can_be_replayed",
    "test_queue_depth_and_lag_show_work_waiting",
    "test_sigkill_mid_handling_then_restart_gives_exactly_one_reply",
    "test_sigterm_lets_in_flight_work_finish_and_deliver",
    "test_the_same_update_twice_gets_one_reply",
    "test_two_replicas_share_the_work_and_handle_nothing_twice",
]


async def test_the_salons_keys_are_spread_over_the_nodes(
    redis_cluster: RedisCluster, redis: Redis
) -> None:
    """One salon, one node; many salons, every node."""
    assert isinstance(redis, GatewayCluster)  # the suite's client, as the gateway's, is one
    nodes = {redis_cluster.node_of(Keys(f"salon-{n}", 4).inbound(0)) for n in range(30)}
    assert nodes == set(redis_cluster.ports)
    keys = Keys("main", 4)
    assert {redis_cluster.node_of(key) for key in (keys.inbound(0), keys.dead_letters)} == {
        redis_cluster.node_of(keys.session("telegram", "1"))
    }


async def test_registry_announcements_reach_a_listener_on_another_node(
    redis_cluster: RedisCluster,
) -> None:
    """`publish` goes to a node at random, the subscription sits on the URL's node: the cluster
    forwards (the salon watcher, gateway/salons/watcher.py, listens this way)."""
    channel = RegistryKeys().salons_changed
    listener = connect_redis(redis_cluster.url)
    announcer = connect_redis(f"redis+cluster://127.0.0.1:{redis_cluster.ports[-1]}")
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        heard = []
        for n in range(6):  # every node in turn, at random
            await announcer.publish(channel, f"change-{n}")
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            heard.append(message["data"])
        assert heard == [f"change-{n}".encode() for n in range(6)]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await listener.aclose()
        await announcer.aclose()


async def test_a_node_killed_and_restarted_mid_handling_loses_nothing_and_repeats_nothing(
    spawn: Spawn,
    sandbox: Sandbox,
    tmp_path: Path,
    redis: Redis,
    salon_id: str,
    redis_cluster: RedisCluster,
) -> None:
    """The salon's node dies (SIGKILL) while an update is being handled, and comes back from
    its append-only file. Meanwhile the provider is answered 503 (and delivers again); after
    it, the update being handled is answered once and the redelivered one once."""
    marker = tmp_path / "handling"
    gateway = spawn(FRONTDESK_TEST_SLOW_SECONDS="2", FRONTDESK_TEST_MARKER=str(marker))
    node = redis_cluster.node_of(Keys(salon_id, 4).inbound(0))
    async with ClientSession() as http:
        await gateway.ready(http)
        assert await gateway.post(http, update(1, chat_id=424242424)) == 200
        await eventually(marker.exists, timeout=20)

        redis_cluster.kill_node(node)
        # Redis cannot take the write: 503, so that Telegram delivers it again.
        assert await gateway.post(http, update(2, chat_id=424242425)) == 503
        redis_cluster.restart_node(node)

        async def delivered_again() -> bool:
            return await gateway.post(http, update(2, chat_id=424242425)) == 200

        await eventually(delivered_again, timeout=30, interval=0.5)
        for chat in (424242424, 424242425):
            await eventually(lambda chat=chat: sandbox.telegram.messages_for(chat), timeout=30)
        await asyncio.sleep(1.0)
        for chat in (424242424, 424242425):
            replies = sandbox.telegram.messages_for(chat)
            assert len(replies) == 1, replies
            assert replies[0]["text"].startswith("Hello, Anna!")
        assert await queued(redis, salon_id, INBOUND_GROUP, "inbound") == (0, 0)
        assert await queued(redis, salon_id, OUTBOUND_GROUP, "outbound") == (0, 0)


@pytest.mark.usefixtures("operator_env")
async def test_migrate_keys_refuses_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("redis", "migrate-keys") == 2
    assert "REDIS_URL is a cluster: nothing to migrate there" in capsys.readouterr().err


async def test_scripts_and_transactions_of_one_slot_go_and_others_are_refused(
    redis: Redis, salon_id: str
) -> None:
    """What the gateway sends, on the cluster: a transaction and a script within the salon's
    slot, a script with no key; a script across two salons is refused before it is sent."""
    keys = Keys(salon_id, 4)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.calcom_cursor, "2026-01-01T00:00:00Z", ex=60)
        pipe.hset(keys.helpdesk_seen, mapping={"12": 99})
        pipe.expire(keys.helpdesk_seen, 60)
        assert await pipe.execute() == [True, 1, True]
    # HGETALL outside the transaction: redis-py 7.4 hands a cluster transaction's HGETALL
    # callback a `keys` argument it does not take (redis/asyncio/cluster.py, the transaction
    # strategy's response callbacks; the same fault as redis/redis-py#3401). Frontdesk's
    # transactions hold no HGETALL.
    assert await redis.hgetall(keys.helpdesk_seen) == {b"12": b"99"}
    script = "return redis.call('GET', KEYS[1]) .. ARGV[1]"
    assert await redis.eval(script, 2, keys.calcom_cursor, keys.analytics, "!") == (
        b"2026-01-01T00:00:00Z!"
    )
    assert await redis.eval("return ARGV[1]", 0, "any node") == b"any node"
    other = Keys(f"{salon_id}x", 4)
    with pytest.raises(RedisClusterException, match="same key slot"):
        await redis.eval(script, 2, keys.calcom_cursor, other.calcom_cursor, "!")
