"""What the outbox delivers through, per channel, and at which pace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.integrations.chatwoot.helpdesk import HelpDeskState, StaffReplies, assignee_of
from gateway.integrations.http import ServiceRejected, ServiceUnavailable
from gateway.integrations.novu.api import NovuDelivery
from gateway.integrations.novu.staff_pages import DeskClient, StaffPager, StaffPages
from gateway.integrations.telegram.factory import telegram_delivery
from gateway.integrations.whatsapp.factory import whatsapp_delivery
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.outbox import Delivery, Pacing, PermanentFailure, pace
from gateway.pipeline.resilience import BreakerOpen, Gate
from gateway.pipeline.streams import Outgoing
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
    # What a message dead-lettered causes (given it and its entry id): a page to the staff.
    buried: Callable[[Outgoing, str], Sequence[Outgoing]] | None = None

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
        novu: Delivery = NovuDelivery(services.novu)
        if services.chatwoot is not None:
            # A handoff's page goes only while Chatwoot shows the conversation with no one.
            # A notice that did not reach a client is addressed to them as the help desk
            # knows them.
            addressed = (
                _addressed(services.staff_pager, services.helpdesk_state, services.chatwoot.client)
                if services.staff_pager is not None and services.helpdesk_state is not None
                else None
            )
            novu = StaffPages(novu, _assignee(services.chatwoot.client), addressed)
        outflow.add("novu", novu, pace(salon.novu.rate_global))
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
    if services.staff_pager is not None:
        outflow.buried = services.staff_pager.undelivered
    return outflow


def _assignee(client: ChatwootClient) -> Callable[[int], Awaitable[int | None]]:
    """Who Chatwoot shows a conversation is with, read when a handoff's page is sent. A
    conversation Chatwoot no longer has is with no one to page for: the page is refused.
    When Chatwoot cannot say (down, slow, its breaker open), staff are paged all the same: a
    page too many costs a glance, a client left waiting unseen costs the salon the client (the
    check only spares the person who has the conversation a page)."""

    async def assignee(conversation: int) -> int | None:
        try:
            return assignee_of(await client.conversation(conversation))
        except ServiceRejected as exc:
            raise PermanentFailure(f"conversation {conversation}: {exc}") from exc
        except (ServiceUnavailable, BreakerOpen) as exc:
            log.warning(
                "handoff %s: Chatwoot cannot say who has it (%s): paging staff",
                conversation,
                type(exc).__name__,
            )
            return None

    return assignee


def _addressed(
    pager: StaffPager, state: HelpDeskState, client: ChatwootClient
) -> Callable[[Outgoing], Awaitable[Outgoing]]:
    """A page about a notice that did not reach a client, addressed when it is sent: the
    client's conversation from the help desk's own mapping (helpdesk.py, `cw:client:...`), and
    the name Chatwoot shows for them, `meta.sender` (the contact partial in app/views/api/v1/
    conversations/partials/_conversation.json.jbuilder). A conversation Chatwoot no longer has
    is as good as none: the contact search then. When Chatwoot cannot answer (down, slow, its
    breaker open) the page goes without a link rather than wait: staff still learn of it."""

    async def addressed(page: Outgoing) -> Outgoing:
        channel, _, chat = str(page.params["payload"]["conversation"]).partition(":")
        mapping = await state.mapping(Conversation(channel, chat))
        if mapping is None:
            return pager.addressed(page, DeskClient())
        conversation = int(mapping["conversation"])
        try:
            shown = await client.conversation(conversation)
        except ServiceRejected:
            return pager.addressed(page, DeskClient())
        except (ServiceUnavailable, BreakerOpen) as exc:
            log.warning(
                "undelivered notice: Chatwoot cannot say whose conversation %s is (%s): "
                "paging staff without a link",
                conversation,
                type(exc).__name__,
            )
            return pager.addressed(page, None)
        meta = shown.get("meta")
        sender = meta.get("sender") if isinstance(meta, dict) else None
        name = sender.get("name") if isinstance(sender, dict) else None
        return pager.addressed(page, DeskClient(conversation, str(name or "")))

    return addressed


def _held_back(state: HelpDeskState) -> Callable[[Outgoing], Awaitable[bool]]:
    async def held_back(message: Outgoing) -> bool:
        if message.channel not in ("telegram", "whatsapp"):
            return False
        return await state.human_owns(message.channel, message.chat)

    return held_back
