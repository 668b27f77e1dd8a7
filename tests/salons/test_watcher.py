"""A running gateway follows the registry: a change announced over Redis is seen at once, one
made without an announcement on the periodic re-read (real PostgreSQL, real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import asyncpg
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from gateway.salons import Salon, SalonRegistry, SalonWatcher, SecretCipher
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import eventually

KEY = Fernet.generate_key().decode()


class Seen:
    """What the watcher handed over, each time."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Salon]] = []

    async def __call__(self, salons: Mapping[str, Salon]) -> None:
        self.calls.append(dict(salons))

    @property
    def last(self) -> dict[str, Salon]:
        return self.calls[-1]


@contextlib.asynccontextmanager
async def watching(watcher: SalonWatcher, seen: Seen) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(watcher.run(seen))
    try:
        await eventually(lambda: seen.calls)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_announced_change_is_seen_at_once(analytics_db: str, redis: Redis) -> None:
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY), redis)
    await registry.add(
        "nord",
        {
            "SALON_NAME": "Nord",
            "CALCOM_API_KEY": "cal_key_1",
            "CALCOM_API_URL": "https://cal.example",
        },
    )
    seen = Seen()
    # A re-read only every minute: what arrives sooner came by the announcement.
    async with watching(SalonWatcher(registry, redis, every=60), seen):
        assert list(seen.last) == ["nord"]
        assert seen.last["nord"].secrets["CALCOM_API_KEY"].get_secret_value() == "cal_key_1"
        # The listener subscribes beside the first read: wait until it hears.
        await eventually(lambda: redis.pubsub_numsub(registry.channel), timeout=5)
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        await registry.add("south", {"SALON_NAME": "South"})
        await eventually(lambda: "south" in seen.last, timeout=5)
        assert asyncio.get_running_loop().time() - started < 5
        await registry.set_enabled("nord", False)
        await eventually(lambda: list(seen.last) == ["south"], timeout=5)
        await registry.update("south", {"SALON_NAME": "South Side"})
        await eventually(lambda: seen.last["south"].name == "South Side", timeout=5)
    await registry.close()


async def test_a_quiet_channel_on_the_gateways_redis_client_is_no_error(
    analytics_db: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The gateway's client gives up a read after its socket timeout; a watcher listening on
    # it must take a quiet channel as quiet, still hear the next announcement at once.
    quick = Redis.from_url(redis_url, socket_timeout=0.5)
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY), quick)
    seen = Seen()
    with caplog.at_level(logging.WARNING, logger="frontdesk"):
        async with watching(SalonWatcher(registry, quick, every=60), seen):
            await eventually(lambda: quick.pubsub_numsub(registry.channel), timeout=5)
            await asyncio.sleep(1.5)  # three socket timeouts of silence
            await registry.add("nord", {"SALON_NAME": "Nord"})
            await eventually(lambda: "nord" in seen.last, timeout=3)
    assert not [r for r in caplog.records if "not heard" in r.getMessage()]
    await registry.close()
    await quick.aclose()


async def test_a_change_made_without_announcement_is_seen_on_the_re_read(
    analytics_db: str, redis: Redis
) -> None:
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY))  # announces nothing
    seen = Seen()
    async with watching(SalonWatcher(registry, redis, every=0.3), seen):
        assert seen.last == {}
        await registry.add("nord", {"SALON_NAME": "Nord"})
        await eventually(lambda: "nord" in seen.last, timeout=5)
        # Straight in SQL, as an operator might.
        connection = await asyncpg.connect(analytics_db)
        await connection.execute(
            "UPDATE salons SET enabled = false, version = nextval('salon_versions')"
        )
        await connection.close()
        await eventually(lambda: seen.last == {}, timeout=5)
        calls = len(seen.calls)
        await asyncio.sleep(1)
        assert len(seen.calls) == calls  # nothing changed: nothing handed over
    await registry.close()


async def test_one_unreadable_salon_holds_back_no_other(
    analytics_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    newer = Fernet.generate_key().decode()
    writer = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    await writer.add("nord", {"CALCOM_API_KEY": "k", "CALCOM_API_URL": "https://c.example"})
    await writer.add("south", {"SALON_NAME": "South"})  # no secret: read with any key
    # The gateway's SECRETS_KEY has the first salon's key but not the newer one.
    reader = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    seen = Seen()
    task = asyncio.create_task(SalonWatcher(reader, None, every=0.1).run(seen))
    await eventually(lambda: seen.calls and sorted(seen.last) == ["nord", "south"])
    served = seen.last["nord"].version
    # The operator rotates: nord's secrets are now sealed with the key the reader lacks.
    await writer.close()
    writer = await SalonRegistry.open(analytics_db, SecretCipher(f"{newer},{KEY}"))
    await writer.rotate_secrets()
    await writer.update("nord", {"CALCOM_API_URL": "https://c2.example"})
    await writer.update("south", {"SALON_NAME": "South Side"})
    with caplog.at_level(logging.WARNING, logger="frontdesk.salons"):
        await eventually(lambda: seen.last["south"].name == "South Side")
        # Said, and tried again on every tick: the last readable version stays served.
        await eventually(
            lambda: sum("cannot be decrypted" in r.getMessage() for r in caplog.records) >= 2
        )
    assert seen.last["nord"].version == served
    assert "c2.example" not in str(seen.last["nord"].values)
    await writer.remove("nord")
    await eventually(lambda: list(seen.last) == ["south"])
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await reader.close()
    await writer.close()


async def test_announcements_lost_with_redis_fall_back_to_the_re_read(
    analytics_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    registry = await SalonRegistry.open(analytics_db, SecretCipher(KEY))
    seen = Seen()
    with caplog.at_level(logging.WARNING, logger="frontdesk.salons"):
        async with watching(SalonWatcher(registry, down, every=0.2), seen):
            await registry.add("nord", {"SALON_NAME": "Nord"})
            await eventually(lambda: "nord" in seen.last, timeout=5)
            await eventually(
                lambda: any("announcements not heard" in r.getMessage() for r in caplog.records)
            )
    await registry.close()
    await down.aclose()
