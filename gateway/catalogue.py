"""The salon's catalogue from Cal.com: event types become services, their hosts or owners the
masters. Cached briefly; a stale copy is better than none while Cal.com is unreachable.

Two set-ups are supported (README, "Cal.com for Frontdesk"): team event types whose hosts are
the masters (set `CALCOM_TEAM_ID`), and per-master event types that share a slug (one service,
several masters).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal

from bot.catalogue import Master, Service
from bot.ports import CalendarUnavailable
from gateway.calcom import CalcomClient, CalcomError, EventType

log = logging.getLogger("frontdesk.catalogue")


class CalcomCatalogue:
    def __init__(
        self,
        client: CalcomClient,
        *,
        team_id: int | None,
        currency: str | None,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.team_id = team_id
        self.currency = currency
        self.ttl = ttl_seconds
        self._clock = clock
        self._cached: tuple[Service, ...] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def services(self) -> tuple[Service, ...]:
        if self._cached is not None and self._clock() - self._fetched_at < self.ttl:
            return self._cached
        async with self._lock:  # one fetch for many clients asking at once
            if self._cached is not None and self._clock() - self._fetched_at < self.ttl:
                return self._cached
            try:
                event_types = await self.client.event_types(team_id=self.team_id)
            except CalcomError as exc:
                if self._cached is not None:
                    log.warning("catalogue refresh failed, serving the last one: %s", exc)
                    return self._cached
                raise CalendarUnavailable(str(exc)) from exc
            self._cached = services_of(event_types, self.currency)
            self._fetched_at = self._clock()
            return self._cached

    def refresh(self) -> None:
        """Forget the cached catalogue; the next read fetches it anew."""
        self._fetched_at = float("-inf")


def _price(event_type: EventType, salon_currency: str | None) -> tuple[str | None, str | None]:
    """The salon's list price (metadata `price`, in SALON_CURRENCY), else the price a Cal.com
    payment app charges (`price` in minor units, with its own `currency`)."""
    listed = event_type.metadata.get("price")
    if listed not in (None, ""):
        return str(listed), salon_currency.upper() if salon_currency else None
    if event_type.price:
        major = (Decimal(str(event_type.price)) / 100).normalize()
        return f"{major:f}", (event_type.currency or salon_currency or "").upper() or None
    return None, None


def services_of(event_types: list[EventType], currency: str | None) -> tuple[Service, ...]:
    """Visible event types grouped by slug, in Cal.com's order."""
    grouped: dict[str, list[EventType]] = {}
    for event_type in event_types:
        if not event_type.hidden:
            grouped.setdefault(event_type.slug, []).append(event_type)
    services = []
    for slug, group in grouped.items():
        first = group[0]
        masters: dict[int, Master] = {}
        for event_type in group:
            for person in event_type.hosts or event_type.users:
                if person.id is not None and person.id not in masters:
                    masters[person.id] = Master(person.id, person.name or f"#{person.id}")
        price, price_currency = _price(first, currency)
        services.append(
            Service(
                key=slug,
                title=first.title,
                minutes=first.length_in_minutes,
                price=price,
                currency=price_currency,
                description=first.description or "",
                category=first.category,
                masters=tuple(masters.values()),
            )
        )
    return tuple(services)
