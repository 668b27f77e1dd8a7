"""Cal.com's clients from the salon's Cal.com settings: the API client, and the bot's catalogue
and calendar over it."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.integrations.calcom.api import CalcomClient, is_failure
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.calcom.calendar import CalcomCalendar
from gateway.integrations.calcom.catalogue import CalcomCatalogue
from gateway.integrations.calcom.slot_cache import SlotCache
from gateway.pipeline.resilience import BreakerFor
from gateway.salon_settings import CalcomSettings, SalonProfile


@dataclass(frozen=True)
class CalcomClients:
    client: CalcomClient
    catalogue: CalcomCatalogue
    calendar: CalcomCalendar


def calcom_client(
    settings: CalcomSettings, breaker_for: BreakerFor, timeout: float
) -> CalcomClient:
    """The API client of the salon's Cal.com, behind Cal.com's breaker."""
    return CalcomClient(
        settings.api_url,
        settings.api_key.get_secret_value(),
        breaker=breaker_for("calcom", is_failure),
        timeout=timeout,
    )


def calcom_clients(
    settings: CalcomSettings,
    profile: SalonProfile,
    links: BookingLinks,
    breaker_for: BreakerFor,
    timeout: float,
) -> CalcomClients:
    """The client, the salon's services (priced in its currency) and its calendar (its zone)."""
    client = calcom_client(settings, breaker_for, timeout)
    catalogue = CalcomCatalogue(client, team_id=settings.team_id, currency=profile.currency)
    calendar = CalcomCalendar(
        client,
        catalogue,
        profile.timezone,
        changing=links.changing,
        slot_cache=SlotCache(settings.slots_cache_seconds),
    )
    return CalcomClients(client, catalogue, calendar)
