"""Following the salon registry while the app is up, when the process has one (`DATABASE_URL`
and `SECRETS_KEY`): the registry's enabled salons are served beside the environment's, and a
change is applied within seconds (`SalonWatcher`: an announcement over Redis, a re-read every
5 s as the safety net)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web
from redis.asyncio import Redis

from gateway.pipeline.redis_client import connect_listener
from gateway.pipeline.tasks import stop_task
from gateway.salons import Salon, SalonRegistry, SalonWatcher, SecretCipher
from gateway.wiring.key_upgrade import KEY_UPGRADE, KeyUpgrade
from gateway.wiring.runtime import RUNTIME
from gateway.wiring.served import SERVED, ServedSalons

log = logging.getLogger("frontdesk.salons")

# How long after a failed connection to the registry the next try comes.
RETRY_SECONDS = 5.0


async def follow_registry(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: the registry's salons are served from start to stop."""
    settings = app[RUNTIME].settings
    if settings.database_url is None or settings.secrets_key is None:
        yield
        return
    served = app[SERVED]
    following = asyncio.create_task(
        _after_keys(
            app[KEY_UPGRADE],
            served,
            settings.database_url.get_secret_value(),
            settings.secrets_key.get_secret_value(),
            settings.redis_url,
        )
    )
    try:
        yield
    finally:
        await stop_task(following, "salon registry")
        await served.stop_registry_salons()


async def _after_keys(
    upgrade: KeyUpgrade,
    served: ServedSalons,
    database_url: str,
    secrets_key: str,
    redis_url: str | None,
) -> None:
    # The registry's salons read streams too: not before the old keys are renamed.
    await upgrade.done.wait()
    await _follow(served, database_url, secrets_key, redis_url)


async def _follow(
    served: ServedSalons, database_url: str, secrets_key: str, redis_url: str | None
) -> None:
    # The announcements are heard on a client of their own: the gateway's pool times a read
    # out after 5 s, and a subscription waits for as long as nobody writes to the registry.
    listening = connect_listener(redis_url) if redis_url is not None else served.redis
    try:
        await _watch(served, database_url, secrets_key, listening)
    finally:
        if listening is not served.redis:
            await listening.aclose()


async def _watch(served: ServedSalons, database_url: str, secrets_key: str, redis: Redis) -> None:
    # PostgreSQL away at start: the environment's salon is served meanwhile, and the registry
    # tried again, rather than the gateway refusing to start.
    cipher = SecretCipher(secrets_key)
    while True:
        try:
            registry = await SalonRegistry.open(database_url, cipher, redis)
            break
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("salon registry unreachable (%s): trying again", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)
    try:

        async def on_change(enabled: Mapping[str, Salon]) -> None:
            everyone = await registry.all_salons()
            await served.apply(enabled, frozenset(salon.id for salon in everyone))

        await SalonWatcher(registry, redis).run(on_change)
    finally:
        await registry.close()
