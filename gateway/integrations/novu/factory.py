"""Novu's client from the salon's Novu settings."""

from __future__ import annotations

from gateway.integrations.novu.api import NovuClient, is_failure
from gateway.pipeline.resilience import BreakerFor
from gateway.salon_settings import NovuSettings


def novu_client(settings: NovuSettings, breaker_for: BreakerFor, timeout: float) -> NovuClient:
    """The API client of the salon's Novu environment, behind Novu's breaker."""
    return NovuClient(
        settings.api_url,
        settings.api_key.get_secret_value(),
        breaker_for("novu", is_failure),
        timeout=timeout,
    )
