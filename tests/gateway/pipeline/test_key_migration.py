"""Upgrading from the untagged keys (`fd:<salon>:…`): sessions, queued and pending entries, dead
letters and the analytics backlog are all found under the tagged names, nothing twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.pipeline import key_migration
from gateway.pipeline.dlq import DeadLetters
from gateway.pipeline.key_migration import (
    migrate_keys,
    migrate_locked,
    tagged_name,
)
from gateway.pipeline.keys import INBOUND_GROUP, Keys, RegistryKeys
from handlers.telegram import conversation_of
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.gateway.pipeline.test_edge import update


@pytest.fixture
async def old_keys(redis: Redis, salon_id: str) -> AsyncIterator[str]:
    """The untagged prefix; its leftovers are deleted after the test."""
    prefix = f"fd:{salon_id}"
    yield prefix
    left = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if left:
        await redis.delete(*left)


def test_tagged_name() -> None:
    assert tagged_name("fd:main:session:telegram:5") == "fd:{main}:session:telegram:5"
    assert tagged_name("fd:s-1:in:3") == "fd:{s-1}:in:3"
    # Tagged already, the registry's, another application's, an impossible salon id: left.
    for key in ("fd:{main}:in:3", "fd:_registry:salons:changed", "other:main:x", "fd:Main:x"):
        assert tagged_name(key) is None


async def test_every_kind_of_key_is_renamed_whole(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    keys = Keys(salon_id, 4)
    await redis.set(f"{old_keys}:session:telegram:501", '{"locale":"ru"}', ex=3600)
    await redis.xadd(f"{old_keys}:in:2", {"src": "telegram", "conv": "tg:501", "id": "7"})
    await redis.xgroup_create(f"{old_keys}:in:2", INBOUND_GROUP, id="0")
    await redis.xreadgroup(INBOUND_GROUP, "shard-2", {f"{old_keys}:in:2": ">"})
    await redis.xadd(f"{old_keys}:dlq", {"kind": "inbound", "stream": f"{old_keys}:in:1"})
    await redis.xadd(f"{old_keys}:analytics", {"fact": '{"kind":"booked"}'})
    await redis.hset(f"{old_keys}:cw:seen", "12", "99")  # type: ignore[misc]
    unrelated = f"other-app:{salon_id}"
    await redis.set(unrelated, "theirs")
    try:
        result = await migrate_keys(redis)
        assert result.renamed >= 5
        assert result.conflicts == []
        assert [key async for key in redis.scan_iter(match=f"{old_keys}:*")] == []
        session = keys.session("telegram", "501")
        assert await redis.get(session) == b'{"locale":"ru"}'
        assert 3500 < await redis.ttl(session) <= 3600  # the time to live came along
        # The stream kept its group and the entry pending under the shard's consumer.
        pending = await redis.xpending(keys.inbound(2), INBOUND_GROUP)
        assert pending["pending"] == 1
        assert pending["consumers"] == [{"name": b"shard-2", "pending": 1}]
        assert await redis.xlen(keys.dead_letters) == 1
        assert await redis.xlen(keys.analytics) == 1
        assert await redis.hget(keys.helpdesk_seen, "12") == b"99"  # type: ignore[misc]
        assert await redis.get(unrelated) == b"theirs"
        # A second run has nothing to do.
        again = await migrate_keys(redis)
        assert (again.renamed, again.conflicts) == (0, [])
    finally:
        await redis.delete(unrelated)


async def test_a_key_whose_new_name_exists_is_left_and_reported(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    keys = Keys(salon_id, 4)
    await redis.set(f"{old_keys}:owner:telegram:9", "human")
    await redis.set(keys.owner("telegram", "9"), "bot-newer")
    result = await migrate_keys(redis)
    assert f"{old_keys}:owner:telegram:9" in result.conflicts
    assert await redis.get(keys.owner("telegram", "9")) == b"bot-newer"  # never overwritten
    assert await redis.get(f"{old_keys}:owner:telegram:9") == b"human"  # nor deleted


async def test_an_old_dead_letter_is_replayed_onto_the_renamed_stream(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    await redis.xadd(
        f"{old_keys}:dlq",
        {"kind": "outbound", "stream": f"{old_keys}:out:1", "channel": "telegram", "chat": "7"},
    )
    await migrate_keys(redis)
    replayed, missing = await DeadLetters(redis, salon_id, 4).replay(None)
    assert len(replayed) == 1
    assert missing == []
    assert await redis.xlen(Keys(salon_id, 4).outbound(1)) == 1
    assert await redis.exists(f"{old_keys}:out:1") == 0


async def test_one_process_at_a_time_migrates_at_start_and_then_none(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    marker = RegistryKeys().keys_tagged
    await redis.delete(marker)
    await redis.set(f"{old_keys}:calcom:cursor", "2026-01-01T00:00:00Z")
    lock = RegistryKeys().key_migration
    await redis.set(lock, "another-process", px=5000)
    starting = asyncio.create_task(migrate_locked(redis))
    await asyncio.sleep(0.5)
    assert not starting.done()  # waits for the other process's lock
    assert await redis.exists(f"{old_keys}:calcom:cursor") == 1
    await redis.delete(lock)
    result = await asyncio.wait_for(starting, 5)
    assert result is not None
    assert result.renamed >= 1
    assert await redis.get(Keys(salon_id, 1).calcom_cursor) == b"2026-01-01T00:00:00Z"
    assert await redis.exists(lock) == 0
    assert await migrate_locked(redis) is None  # the marker spares the scan


async def test_a_gateway_upgraded_mid_handling_answers_once_and_keeps_the_dedup(
    start_gateway: GatewayFactory, sandbox: Sandbox, redis: Redis, salon_id: str, old_keys: str
) -> None:
    """An update the previous release acknowledged and had read (pending, not handled) when it
    stopped is handled by the upgraded gateway once; its redelivery is still a duplicate."""
    chat = 4715
    sent = update(3001, chat_id=chat)
    conversation = conversation_of(sent)
    shard = Keys(salon_id, 4).shard_of(conversation)
    stream = f"{old_keys}:in:{shard}"
    await redis.set(f"{old_keys}:dedup:telegram:3001", "1", ex=3600)
    fields = {
        "src": "telegram",
        "conv": conversation,
        "id": "3001",
        "at": int(time.time() * 1000),
        "body": json.dumps(sent),
    }
    await redis.xadd(stream, fields)  # type: ignore[arg-type]
    await redis.xgroup_create(stream, INBOUND_GROUP, id="0")
    await redis.xreadgroup(INBOUND_GROUP, f"shard-{shard}", {stream: ">"})
    await redis.delete(RegistryKeys().keys_tagged)  # as on the first start after the upgrade

    gateway = await start_gateway()
    await eventually(lambda: sandbox.telegram.messages_for(chat), timeout=10)
    status, _ = await gateway.post_update(sent)  # Telegram delivers it again
    assert status == 200
    await asyncio.sleep(0.5)
    replies = sandbox.telegram.messages_for(chat)
    assert len(replies) == 1
    assert replies[0]["text"].startswith("Hello, Anna!")
    assert await redis.exists(stream) == 0


async def test_a_key_gone_since_the_scan_is_skipped_and_the_rest_renamed(
    redis: Redis, salon_id: str, old_keys: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dedup, lease and session keys expire all the time: one that SCAN listed and that is gone
    by its rename must not stop the migration (RENAMENX answers an error for a missing key)."""
    gone, kept = f"{old_keys}:dedup:telegram:77", f"{old_keys}:session:telegram:78"
    await redis.set(gone, "1")
    await redis.set(kept, "{}")
    scan = redis.scan

    async def scan_then_expire(*args: Any, **kwargs: Any) -> Any:
        page = await scan(*args, **kwargs)
        await redis.delete(gone)  # expired between the SCAN and the rename
        return page

    monkeypatch.setattr(redis, "scan", scan_then_expire)
    result = await migrate_keys(redis)
    assert result.conflicts == []
    assert await redis.get(Keys(salon_id, 1).session("telegram", "78")) == b"{}"
    assert await redis.exists(kept, Keys(salon_id, 1).prefix + ":dedup:telegram:77") == 0


async def test_the_lock_is_renewed_while_renaming_and_a_waiter_does_not_go_ahead(
    redis: Redis, salon_id: str, old_keys: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_migration, "LOCK_MS", 300)
    monkeypatch.setattr(key_migration, "RENEW_SECONDS", 0.1)
    await redis.delete(RegistryKeys().keys_tagged)
    for n in range(4):
        await redis.set(f"{old_keys}:session:telegram:{n}", "{}")
    scan = redis.scan
    go_on = asyncio.Event()

    async def slow_scan(*args: Any, **kwargs: Any) -> Any:
        await go_on.wait()  # a large Redis: the renaming takes longer than the lock's life
        return await scan(*args, **kwargs)

    monkeypatch.setattr(redis, "scan", slow_scan)
    first = asyncio.create_task(migrate_locked(redis))
    await asyncio.sleep(0.7)  # past the lock's 300 ms life
    assert not first.done()
    assert await redis.exists(RegistryKeys().key_migration) == 1  # renewed
    with pytest.raises(TimeoutError):  # the waiter fails rather than reads half-renamed keys
        await migrate_locked(redis, wait_seconds=0.5)
    go_on.set()
    result = await asyncio.wait_for(first, 30)
    assert result is not None
    assert result.renamed >= 4
    assert await redis.exists(RegistryKeys().key_migration) == 0


async def test_a_holder_that_lost_the_lock_renames_nothing_more(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    await redis.set(f"{old_keys}:session:telegram:5", "{}")
    await redis.set(RegistryKeys().key_migration, "the-next-holder", px=5000)
    try:
        with pytest.raises(key_migration.LockLost):
            await migrate_keys(redis, token="an-expired-holder")
        assert await redis.exists(f"{old_keys}:session:telegram:5") == 1
    finally:
        await redis.delete(RegistryKeys().key_migration)


async def test_the_marker_waits_until_no_key_is_left(
    redis: Redis, salon_id: str, old_keys: str
) -> None:
    marker = RegistryKeys().keys_tagged
    await redis.delete(marker)
    keys = Keys(salon_id, 4)
    await redis.set(f"{old_keys}:owner:telegram:9", "human")
    await redis.set(keys.owner("telegram", "9"), "bot-newer")
    result = await migrate_locked(redis)
    assert result is not None
    assert result.conflicts == [f"{old_keys}:owner:telegram:9"]
    assert await redis.exists(marker) == 0  # the next start looks again
    await redis.delete(f"{old_keys}:owner:telegram:9")  # a person chose the new value
    again = await migrate_locked(redis)
    assert again is not None
    assert again.conflicts == []
    assert await redis.exists(marker) == 1
    assert await migrate_locked(redis) is None


async def test_the_gateway_answers_healthz_while_it_migrates_and_serves_after(
    start_gateway: GatewayFactory, sandbox: Sandbox, redis: Redis, salon_id: str, old_keys: str
) -> None:
    """The renaming runs beside the server: alive at once, ready (and the workers reading) only
    once the old keys are moved."""
    chat = 4716
    sent = update(3002, chat_id=chat)
    conversation = conversation_of(sent)
    shard = Keys(salon_id, 4).shard_of(conversation)
    stream = f"{old_keys}:in:{shard}"
    fields = {"src": "telegram", "conv": conversation, "id": "3002"}
    await redis.xadd(stream, {**fields, "at": int(time.time() * 1000), "body": json.dumps(sent)})
    await redis.xgroup_create(stream, INBOUND_GROUP, id="0")
    await redis.delete(RegistryKeys().keys_tagged)
    lock = RegistryKeys().key_migration
    await redis.set(lock, "another-process", px=30_000)  # another replica is renaming

    gateway = await asyncio.wait_for(start_gateway(keys_migrated=False), 10)
    async with gateway.http.get(f"{gateway.url}/healthz") as response:
        assert response.status == 200
    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["keys"] == "migrating keys"
    await asyncio.sleep(0.3)
    assert gateway.runtime.pool is None or not gateway.runtime.pool.owned  # no worker yet
    assert sandbox.telegram.messages_for(chat) == []
    assert await redis.exists(stream) == 1
    # A webhook meanwhile waits: queued now, it would take the new stream's name first.
    posting = asyncio.create_task(gateway.post_update(update(3003, chat_id=chat)))
    await asyncio.sleep(0.3)
    assert not posting.done()

    await redis.delete(lock)
    status, _ = await asyncio.wait_for(posting, 10)
    assert status == 200
    await eventually(lambda: len(sandbox.telegram.messages_for(chat)) == 2, timeout=10)
    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        assert response.status == 200
        assert "keys" not in await response.json()
    assert await redis.exists(stream) == 0
