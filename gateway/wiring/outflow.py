"""What the outbox delivers through, per channel, and at which pace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.integrations.chatwoot.helpdesk import HelpDeskState, StaffReplies
from gateway.integrations.http import ServiceRejected, ServiceUnavailable
from gateway.integrations.novu.api import NovuDelivery
from gateway.integrations.novu.staff import StaffPager
from gateway.integrations.telegram.factory import telegram_delivery
from gateway.integrations.whatsapp.factory import whatsapp_delivery
from gateway.pipeline.outbox import Delivery, Pacing, pace
from gateway.pipeline.resilience import Gate
from gateway.pipeline.streams import Author, Outgoing
from gateway.wiring.runtime import Runtime
from gateway.wiring.services import Services

log = logging.getLogger("frontdesk.app")


@dataclass
class Outflow:
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    pacing: dict[str, Pacing] = field(default_factory=dict)
    # One gate per sender: this salon's bot, its number, its service accounts.
    buckets: dict[str, Gate] = field(default_factory=dict)
    # Whether a bot message waits (a person owns its conversation); None without a help desk.
    held: Callable[[Outgoing], Awaitable[bool]] | None = None
    # Told of a message dead-lettered (message, entry id, error); None without staff paging.
    buried: Callable[[Outgoing, str, str], Awaitable[None]] | None = None

    def add(self, channel: str, delivery: Delivery, paced: tuple[Pacing, Gate]) -> None:
        self.deliveries[channel] = delivery
        self.pacing[channel], self.buckets[channel] = paced


def build_outflow(runtime: Runtime, services: Services, clock: Callable[[], datetime]) -> Outflow:
    """Each configured service's delivery, paced by the salon's settings for it."""
    settings, salon = runtime.settings, runtime.settings.salon
    outflow = Outflow()
    files = services.chatwoot.files if services.chatwoot is not None else None
    if services.chatwoot is not None and salon.chatwoot is not None:
        outflow.add("chatwoot", services.chatwoot.helpdesk, pace(salon.chatwoot.rate_global))
    if services.novu is not None and salon.novu is not None:
        outflow.add("novu", NovuDelivery(services.novu), pace(salon.novu.rate_global))
    if salon.telegram is not None:
        telegram = salon.telegram
        delivery = telegram_delivery(
            telegram, runtime.breaker, settings.service_timeout_seconds, files
        )
        services.closing.append(delivery.close)
        outflow.add(
            "telegram",
            delivery,
            pace(telegram.rate_global, telegram.rate_per_chat, telegram.burst_per_chat),
        )
    if (
        salon.whatsapp is not None
        and services.whatsapp is not None
        and services.whatsapp_state is not None
    ):
        whatsapp = salon.whatsapp
        sender = whatsapp_delivery(
            whatsapp,
            services.whatsapp,
            services.whatsapp_state,
            runtime.metrics,
            salon_name=salon.profile.name,
            clock=clock,
            files=files,
        )
        outflow.add(
            "whatsapp",
            sender,
            pace(whatsapp.rate_global, whatsapp.rate_per_chat, whatsapp.burst_per_chat),
        )
    if services.chatwoot is not None and services.helpdesk_state is not None:
        for channel in ("telegram", "whatsapp"):
            if channel in outflow.deliveries:
                outflow.deliveries[channel] = StaffReplies(
                    outflow.deliveries[channel], services.chatwoot.helpdesk
                )
        outflow.held = _held_back(services.helpdesk_state)
    outflow.buried = _page_undelivered(services.staff_pager)
    return outflow


def _page_undelivered(
    pager: StaffPager | None,
) -> Callable[[Outgoing, str, str], Awaitable[None]] | None:
    """A notice the client's messenger refused for good pages the salon's staff (issue 21)."""
    if pager is None:
        return None

    async def buried(message: Outgoing, entry: str, _error: str) -> None:
        if message.author != Author.NOTICE or message.channel not in ("telegram", "whatsapp"):
            return
        try:
            await pager.undelivered(message.channel, message.chat, entry)
        except (ServiceUnavailable, ServiceRejected) as exc:
            log.warning("staff not paged for an undelivered notice: %s", exc)

    return buried


def _held_back(state: HelpDeskState) -> Callable[[Outgoing], Awaitable[bool]]:
    async def held_back(message: Outgoing) -> bool:
        if message.channel not in ("telegram", "whatsapp"):
            return False
        return await state.human_owns(message.channel, message.chat)

    return held_back
