"""The salons one gateway serves: the environment's, always, and the registry's enabled ones,
each with its own runtime (keys, Redis pool, inbox, metrics, breakers), services and workers.

A registry change is applied by `apply`: a new salon is built and started, then its routes go
live; an updated one (its version changed) is built anew and swapped in before the old one
stops, so that no webhook finds it missing; a disabled or removed one leaves the routes first,
then stops. A salon stopping gives its shards back after the turns in flight finish (within
SHUTDOWN_GRACE_SECONDS); what it had not started stays pending in its streams and the next
holder (the rebuilt salon, or this salon once enabled again) reads it: nothing is lost.

Why each registry salon has its own Redis pool: a salon's blocking stream reads then cannot
starve another's (the fairness the salons issue asks for), at the price of a pool per salon.
The handling and sending slots are the process's, shared fairly by all its salons (`work`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from redis.asyncio import Redis

from gateway.pipeline.edge import EdgeLimits
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.redis_client import connect_redis
from gateway.salon_settings import SalonSettings
from gateway.salons.registry import Salon
from gateway.settings import Settings, SettingsError
from gateway.wiring.background import work_slots
from gateway.wiring.routes import SalonRoutes, salon_routes
from gateway.wiring.running import RunningSalon, start_salon
from gateway.wiring.runtime import Runtime

log = logging.getLogger("frontdesk.salons")


@dataclass
class ServedSalon:
    runtime: Runtime
    routes: SalonRoutes
    # The registry's version of the salon; None for the environment's.
    version: int | None = None
    running: RunningSalon | None = None
    own_redis: bool = False

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
        if self.own_redis:
            await self.runtime.redis.aclose()


class ServedSalons:
    """Which salon a webhook is for: `live` by id (the routes look here), `held` the ids the
    registry holds but does not serve (disabled: their webhooks are answered 410 Gone)."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        limits: EdgeLimits,
        slots: asyncio.Semaphore,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        # The handling and sending slots every salon's workers share (fair_slots.py): one
        # salon's backlog or slow vendor holds no more than its share once another has work.
        self.work = work_slots()
        self.redis = redis
        self.limits = limits
        self.slots = slots
        self.clock = clock
        self.live: dict[str, ServedSalon] = {}
        self.held: frozenset[str] = frozenset()
        self.environment_id = settings.salon.profile.id
        # Registry salons changed one at a time, in the order the watcher saw the changes.
        self._applying = asyncio.Lock()
        # Salons on their way out: a stop runs to its end even when the change that began it
        # is cancelled (the gateway stopping), and the gateway's stop waits for it.
        self._retiring: set[asyncio.Task[None]] = set()

    def serve_environment(self, runtime: Runtime, routes: SalonRoutes) -> ServedSalon:
        served = self.live[self.environment_id] = ServedSalon(runtime, routes)
        return served

    @property
    def registry_salons(self) -> dict[str, ServedSalon]:
        return {i: s for i, s in self.live.items() if s.version is not None}

    def by_whatsapp_number(self) -> dict[str, ServedSalon]:
        return {s.routes.whatsapp_number: s for s in self.live.values() if s.routes.whatsapp_number}

    @property
    def settled(self) -> bool:
        """No change being applied and no salon still stopping (its workers may still write
        their leases until it has)."""
        return not self._retiring and not self._applying.locked()

    async def apply(self, enabled: Mapping[str, Salon], held: frozenset[str]) -> None:
        """Serve exactly the registry's `enabled` salons (beside the environment's)."""
        async with self._applying:
            self.held = held - set(enabled)
            for salon_id, served in self.registry_salons.items():
                salon = enabled.get(salon_id)
                if salon is None:
                    log.info("salon %s no longer served", salon_id)
                    del self.live[salon_id]
                    await self._retire(served)
            for salon_id, salon in enabled.items():
                current = self.live.get(salon_id)
                if salon_id == self.environment_id:
                    log.warning(
                        "salon %s is the environment's (SALON_ID): the registry's "
                        "entry is not served",
                        salon_id,
                    )
                elif current is None or current.version != salon.version:
                    await self._replace(salon, current)

    async def _replace(self, salon: Salon, current: ServedSalon | None) -> None:
        try:
            settings = salon.settings()
        except SettingsError as exc:
            # Kept as it was (or not served): the registry validates on write, so this is a
            # value an older version of Frontdesk accepted.
            log.warning("salon %s not (re)built: %s", salon.id, "; ".join(exc.problems))
            return
        fresh = self._start(settings, salon.version)
        self.live[salon.id] = fresh
        log.info(
            "salon %s %s (version %d)",
            salon.id,
            "served" if current is None else "rebuilt",
            salon.version,
        )
        if current is not None:
            await self._retire(current)

    def _start(self, salon: SalonSettings, version: int) -> ServedSalon:
        settings = self.settings.model_copy(update={"salon": salon})
        url = settings.redis_url
        redis = connect_redis(url) if url is not None else self.redis
        keys = Keys(salon.profile.id, settings.stream_shards)
        metrics = Metrics()
        runtime = Runtime(
            settings, redis, keys, metrics, Inbox(redis, keys, settings.dedup_ttl_seconds)
        )
        served = ServedSalon(
            runtime,
            salon_routes(runtime, self.limits, self.slots),
            version,
            own_redis=url is not None,
        )
        served.running = start_salon(runtime, self.clock, self.work)
        return served

    async def _retire(self, served: ServedSalon) -> None:
        stopping = asyncio.create_task(served.stop())
        self._retiring.add(stopping)
        stopping.add_done_callback(self._retiring.discard)
        await asyncio.shield(stopping)

    async def stop_registry_salons(self) -> None:
        async with self._applying:
            for salon_id, served in self.registry_salons.items():
                del self.live[salon_id]
                await self._retire(served)
        await asyncio.gather(*self._retiring, return_exceptions=True)


SERVED = web.AppKey("served", ServedSalons)
