"""The salon's catalogue from Cal.com: event types become services, their hosts or owners the
masters. Cached briefly; a stale copy is better than none while Cal.com is unreachable.

A service is one or more event types (README, "Cal.com for Frontdesk"): a team event type whose
hosts are the masters, round robin (Cal.com picks a free one), and/or one event type per master
(which lets the client choose), grouped by `metadata.service` or, failing that, by slug.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from bot.catalogue import Master, Names, Service
from bot.i18n import SUPPORTED
from bot.ports import CalendarUnavailable
from gateway.integrations.calcom.api import CalcomClient, CalcomError, EventType

log = logging.getLogger("frontdesk.catalogue")


SERVICE_METADATA_KEY = "service"
# The title and category in each language the bot speaks: `title_ru`, `category_en`, ...
# Cal.com returns an event type's metadata as a free-form object (EventTypeOutput_2024_06_14
# `metadata: {type: object}` in its v2 spec); the keys are the salon's (§1.6: at most 50 keys
# of at most 40 characters, string values of at most 500).
TITLE_METADATA_PREFIX = "title_"
CATEGORY_METADATA_PREFIX = "category_"


@dataclass(frozen=True, slots=True)
class Offer:
    """One Cal.com event type through which a service is booked."""

    event_type_id: int
    masters: tuple[int, ...]  # its hosts (team) or its owner
    # Several hosts, round robin: Cal.com gives the booking to one who is free.
    assigns: bool

    @property
    def master(self) -> int | None:
        """The master of an event type of their own (the client may choose them), else None."""
        return self.masters[0] if len(self.masters) == 1 and not self.assigns else None


@dataclass(frozen=True, slots=True)
class Listing:
    services: tuple[Service, ...]
    offers: dict[str, tuple[Offer, ...]]  # by service key, in Cal.com's order
    names: dict[int, str]  # master id -> name
    service_of: dict[int, str]  # event type id -> service key


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
        self._cached: Listing | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def services(self) -> tuple[Service, ...]:
        return (await self.listing()).services

    async def listing(self) -> Listing:
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
            self._cached = listing_of(event_types, self.currency)
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


def _names(event_type: EventType, prefix: str) -> Names:
    """The event type's words per language (`title_ru`: "Маникюр"), blank ones left out."""
    found = ((locale, event_type.metadata.get(f"{prefix}{locale}")) for locale in SUPPORTED)
    return tuple((locale, str(text).strip()) for locale, text in found if str(text or "").strip())


def services_of(event_types: list[EventType], currency: str | None) -> tuple[Service, ...]:
    return listing_of(event_types, currency).services


def _service_key(event_type: EventType) -> str:
    value = event_type.metadata.get(SERVICE_METADATA_KEY)
    return str(value) if value not in (None, "") else event_type.slug


def listing_of(event_types: list[EventType], currency: str | None) -> Listing:
    """Visible event types grouped into services (by `metadata.service`, else by slug), in
    Cal.com's order. A master can be chosen where they have an event type of their own for
    the service; a round-robin event type with several hosts books "any master"."""
    grouped: dict[str, list[EventType]] = {}
    for event_type in event_types:
        if not event_type.hidden:
            grouped.setdefault(_service_key(event_type), []).append(event_type)
    services: list[Service] = []
    offers: dict[str, tuple[Offer, ...]] = {}
    names: dict[int, str] = {}
    service_of: dict[int, str] = {}
    for key, group in grouped.items():
        first = group[0]
        choosable: dict[int, Master] = {}
        found: list[Offer] = []
        for event_type in group:
            people = [p for p in event_type.hosts or event_type.users if p.id is not None]
            ids = tuple(dict.fromkeys(p.id for p in people if p.id is not None))
            for person in people:
                assert person.id is not None
                names.setdefault(person.id, person.name or f"#{person.id}")
            assigns = len(ids) > 1 and event_type.scheduling_type != "collective"
            found.append(Offer(event_type.id, ids, assigns))
            service_of[event_type.id] = key
        offers[key] = tuple(found)
        for offer in found:
            if offer.master is not None and offer.master not in choosable:
                choosable[offer.master] = Master(offer.master, names[offer.master])
        price, price_currency = _price(first, currency)
        services.append(
            Service(
                key=key,
                title=first.title,
                minutes=first.length_in_minutes,
                price=price,
                currency=price_currency,
                description=first.description or "",
                category=first.category,
                masters=tuple(choosable.values()),
                titles=_names(first, TITLE_METADATA_PREFIX),
                categories=_names(first, CATEGORY_METADATA_PREFIX),
            )
        )
    return Listing(tuple(services), offers, names, service_of)
