"""What the routes and the composition root's steps share: settings, Redis, keys, metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiogram import Bot
from aiohttp import web
from redis.asyncio import Redis

from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.workers import WorkerPool
from gateway.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    keys: Keys
    metrics: Metrics
    inbox: Inbox
    breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    pool: WorkerPool | None = None
    bot: Bot | None = None
    stopping: bool = False

    def breaker(self, name: str, is_failure: Callable[[BaseException], bool]) -> CircuitBreaker:
        """A service's circuit breaker (a `BreakerFor`), set from BREAKER_FAILURES and
        BREAKER_RESET_SECONDS for every service, and reported in /readyz and the metrics."""
        breaker = CircuitBreaker(
            name,
            fail_max=self.settings.breaker_failures,
            reset_timeout=self.settings.breaker_reset_seconds,
            is_failure=is_failure,
            on_change=self.metrics.breaker_changed,
        )
        self.breakers[name] = breaker
        self.metrics.breaker_changed(name, breaker.state)
        return breaker


RUNTIME = web.AppKey("runtime", Runtime)
