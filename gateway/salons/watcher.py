"""How a running gateway follows the registry: a callback with the enabled salons, called at the
start and again whenever they change.

A change is seen at once when its announcement arrives over Redis, and within `every` seconds
(default 5, the issue's bound being 10) when it does not: pub/sub delivers only to whoever
listens at that moment (a gateway reconnecting, a write made with Redis down or straight in
SQL), so the registry is re-read on a timer too. The re-read is one cheap query, (id, version)
of the enabled salons; the salons are loaded and decrypted only when that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.salons.registry import Salon, SalonRegistry

log = logging.getLogger("frontdesk.salons")

OnChange = Callable[[Mapping[str, Salon]], Awaitable[None]]


class SalonWatcher:
    def __init__(self, registry: SalonRegistry, redis: Redis | None, *, every: float = 5.0) -> None:
        self.registry = registry
        self.redis = redis
        self.every = every

    async def run(self, on_change: OnChange) -> None:
        """Call `on_change` with the enabled salons now and after every change; until cancelled.
        A failed read (PostgreSQL down, a key SECRETS_KEY lacks) keeps what was served and is
        tried again on the next tick."""
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake)) if self.redis is not None else None
        seen: frozenset[tuple[str, int, bool]] | None = None
        last: dict[str, Salon] = {}
        try:
            while True:
                # Cleared before reading: an announcement that arrives during the read wakes
                # the next one at once.
                wake.clear()
                try:
                    # Read before the salons: a change made in between is seen next time.
                    fingerprint = await self.registry.fingerprint()
                    if fingerprint != seen:
                        salons, unreadable = await self.registry.load_readable()
                        for salon_id, problem in unreadable.items():
                            log.warning("%s: its last readable version stays served", problem)
                            if salon_id in last:
                                salons[salon_id] = last[salon_id]
                        await on_change(salons)
                        last = salons
                        # An unreadable salon is read again on every tick until it reads.
                        seen = None if unreadable else fingerprint
                except Exception as exc:  # whatever it was, the last salons stay served
                    log.warning("salon registry not read: %s: %s", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.every)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _listen(self, wake: asyncio.Event) -> None:
        assert self.redis is not None
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.registry.channel)
                # What was announced while nobody listened is read now.
                wake.set()
                while True:
                    # A bounded wait for each announcement, under the connection's socket
                    # timeout (the gateway's Redis client has one): a quiet channel is no error.
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0):
                        wake.set()
            except (RedisError, OSError) as exc:
                log.warning(
                    "salon announcements not heard (%s): re-reading on the timer",
                    type(exc).__name__,
                )
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self.every)
