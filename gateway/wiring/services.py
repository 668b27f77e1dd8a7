"""The salon's clients at each vendor, built by the integrations' factories from its settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiogram import Bot
from yarl import URL

from bot.i18n import Catalogs
from gateway.analytics.store import Writer
from gateway.dashboard_app import tokens
from gateway.dashboard_app.desk import StaffDesk
from gateway.dashboard_app.notices import StaffNotices
from gateway.dashboard_app.proposals import RedisProposals
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.calcom.factory import CalcomClients, calcom_clients
from gateway.integrations.calcom.waitlist import WaitlistStore
from gateway.integrations.chatwoot.factory import ChatwootClients, chatwoot_clients
from gateway.integrations.chatwoot.helpdesk import HelpDeskState
from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.factory import novu_client
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.novu.staff_pages import StaffPager
from gateway.integrations.telegram.factory import telegram_bot
from gateway.integrations.whatsapp.api import WhatsAppClient
from gateway.integrations.whatsapp.factory import whatsapp_client
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.sessions import SessionStore
from gateway.wiring.runtime import Runtime


@dataclass
class Services:
    """Each vendor's clients, None where the salon has not configured it."""

    links: BookingLinks
    calcom: CalcomClients | None = None
    # The waitlist's state (with Cal.com on: it holds freed times there).
    waitlist: WaitlistStore | None = None
    chatwoot: ChatwootClients | None = None
    helpdesk_state: HelpDeskState | None = None
    novu: NovuClient | None = None
    # Pages the salon's staff through Novu (with Novu and Chatwoot configured).
    staff_pager: StaffPager | None = None
    ledger: NoticeLedger | None = None
    whatsapp: WhatsAppClient | None = None
    whatsapp_state: WhatsAppState | None = None
    bot: Bot | None = None
    writer: Writer | None = None
    # The help desk's Dashboard App (with both Cal.com and Chatwoot): its proposals and desk.
    proposals: RedisProposals | None = None
    staff_desk: StaffDesk | None = None
    # The Notices app (with Chatwoot and Novu): each staff member's Novu in-app feed.
    staff_notices: StaffNotices | None = None
    # What to close when the app stops, besides the clients above.
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        if self.bot is not None:
            await self.bot.session.close()
        for close in self.closing:
            await close()
        if self.chatwoot is not None:
            await self.chatwoot.aclose()
        if self.novu is not None:
            await self.novu.aclose()
        if self.whatsapp is not None:
            await self.whatsapp.aclose()
        if self.calcom is not None:
            await self.calcom.client.aclose()
        if self.writer is not None:
            await self.writer.close()


def build_services(
    runtime: Runtime, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Services:
    settings, salon = runtime.settings, runtime.settings.salon
    timeout, breaker_for = settings.service_timeout_seconds, runtime.breaker
    services = Services(BookingLinks(runtime.redis, runtime.keys))
    if salon.calcom is not None:
        services.calcom = calcom_clients(
            salon.calcom, salon.profile, services.links, breaker_for, timeout
        )
        services.waitlist = WaitlistStore(runtime.redis, runtime.keys, salon.profile.timezone)
    if salon.chatwoot is not None:
        services.helpdesk_state = HelpDeskState(runtime.redis, runtime.keys)
        services.chatwoot = chatwoot_clients(
            salon.chatwoot, services.helpdesk_state, breaker_for, timeout
        )
    if services.calcom is not None and services.chatwoot is not None and salon.chatwoot:
        _dashboard_app(runtime, services, salon.chatwoot.api_token.get_secret_value(), clock)
    if salon.novu is not None:
        services.novu = novu_client(salon.novu, breaker_for, timeout)
        services.ledger = NoticeLedger(runtime.redis, runtime.keys)
        if services.chatwoot is not None and salon.chatwoot is not None:
            # Staff read their notices in the salon's language, with a link to the conversation.
            profile = salon.profile
            words = Catalogs(default_locale=profile.default_locale).get(profile.default_locale)
            desk = f"{salon.chatwoot.url.rstrip('/')}/app/accounts/{salon.chatwoot.account_id}"
            pager = StaffPager(profile.id, words, desk, profile.zone, profile.default_locale)
            services.chatwoot.helpdesk.pager = pager.handoff
            services.staff_pager = pager
            services.staff_notices = StaffNotices(
                profile.id,
                tokens.secret_for(
                    profile.id,
                    salon.chatwoot.api_token.get_secret_value(),
                    runtime.settings.dashboard_app_key_version,
                ),
                services.chatwoot.client,
                services.novu,
                chatwoot_origin=str(URL(salon.chatwoot.url).origin()),
                zone=profile.zone,
                locale=profile.default_locale,
            )
    if salon.telegram is not None:
        services.bot = runtime.bot = telegram_bot(salon.telegram, timeout)
    if salon.whatsapp is not None:
        services.whatsapp = whatsapp_client(salon.whatsapp, breaker_for, timeout)
        services.whatsapp_state = WhatsAppState(runtime.redis, runtime.keys)
        if services.chatwoot is not None:
            # Files clients send on WhatsApp are fetched from Meta for the help desk.
            services.chatwoot.helpdesk.media["whatsapp"] = services.whatsapp.download
    if settings.analytics is not None:
        services.writer = Writer(
            runtime.redis,
            runtime.keys,
            settings.analytics.database_url.get_secret_value(),
            runtime.metrics,
        )
    return services


def _dashboard_app(
    runtime: Runtime, services: Services, chatwoot_token: str, clock: Callable[[], datetime]
) -> None:
    assert services.calcom is not None
    assert services.chatwoot is not None
    salon = runtime.settings.salon
    services.proposals = RedisProposals(runtime.redis, runtime.keys, services.calcom.client, clock)
    services.staff_desk = StaffDesk(
        salon.profile.id,
        salon.profile.zone,
        tokens.secret_for(
            salon.profile.id, chatwoot_token, runtime.settings.dashboard_app_key_version
        ),
        services.calcom.calendar,
        services.chatwoot.client,
        SessionStore(runtime.redis, runtime.keys, salon.session_retention_days * 24 * 3600),
        services.proposals,
        runtime.inbox,
        clock,
        chatwoot_origin=str(URL(salon.chatwoot.url).origin()) if salon.chatwoot else "",
    )
