"""WhatsApp's clients from the salon's WhatsApp settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.integrations.chatwoot.files import ChatwootFiles
from gateway.integrations.whatsapp.api import WhatsAppClient, WhatsAppDelivery, is_failure
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.resilience import BreakerFor
from gateway.salon_settings import WhatsAppSettings


def whatsapp_client(
    settings: WhatsAppSettings, breaker_for: BreakerFor, timeout: float
) -> WhatsAppClient:
    """The Cloud API client of the salon's business number, behind WhatsApp's breaker."""
    return WhatsAppClient(
        settings.api_url,
        settings.phone_number_id,
        settings.access_token.get_secret_value(),
        breaker_for("whatsapp", is_failure),
        timeout=timeout,
    )


def whatsapp_delivery(
    settings: WhatsAppSettings,
    client: WhatsAppClient,
    state: WhatsAppState,
    metrics: Metrics,
    *,
    salon_name: str,
    clock: Callable[[], datetime],
    files: ChatwootFiles | None = None,
) -> WhatsAppDelivery:
    """The outbox's sender for WhatsApp: the 24-hour window, parking, the salon's template."""
    return WhatsAppDelivery(
        client,
        state,
        metrics,
        reply_waiting_template=settings.template_reply_waiting,
        salon_name=salon_name,
        clock=clock,
        files=files,
    )
