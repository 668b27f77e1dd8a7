"""The bot and the handlers that drive it: one per source of events, built together here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Dispatcher

from bot.conversation import FrontDesk
from bot.events import Channel
from bot.i18n import Catalogs
from bot.salon import Salon
from gateway.analytics.facts import Recorder
from gateway.integrations.calcom.waitlist_offers import WaitlistOffers
from gateway.pipeline.identity import Identities
from gateway.pipeline.sessions import SessionStore
from gateway.pipeline.workers import Handler
from gateway.salon_settings import (
    TEMPLATE_CONFIRMATION,
    TEMPLATE_PROPOSAL,
    TEMPLATE_REMINDER,
    TEMPLATE_WAITLIST_OFFER,
    SalonSettings,
)
from gateway.wiring.runtime import Runtime
from gateway.wiring.services import Services
from handlers.calcom import CalcomEvents
from handlers.calcom_novu import NovuPlanner
from handlers.chatwoot import ChatwootEvents
from handlers.dashboard_app import DashboardEvents
from handlers.mirror import Mirror
from handlers.notices import NoticeSender, Templates
from handlers.novu import NovuEvents
from handlers.staff_notices import StaffNotices
from handlers.telegram import TelegramConversations, build_router
from handlers.waitlist import WaitlistEvents
from handlers.whatsapp import WhatsAppConversations


@dataclass(frozen=True)
class Conversations:
    """What the workers need of the conversations: a handler per source."""

    handlers: dict[str, Handler]
    recorder: Recorder | None
    # Offers freed times to waiting clients (a periodic task), with Cal.com on.
    waitlist: WaitlistOffers | None = None


def build_desk(salon: SalonSettings, services: Services) -> FrontDesk:
    """The bot, as the salon's profile describes it, over its calendar and help desk."""
    profile = salon.profile
    return FrontDesk(
        Salon(
            id=profile.id,
            name=profile.name,
            timezone=profile.timezone,
            address=profile.address,
            phone=profile.phone,
            hours=profile.hours,
            addresses=profile.addresses,
            opening_hours=profile.opening_hours,
            working_hours=profile.schedule,
        ),
        Catalogs(default_locale=profile.default_locale),
        idle=timedelta(minutes=salon.session_idle_minutes),
        calendar=services.calcom.calendar if services.calcom is not None else None,
        help_desk_channels=frozenset(
            Channel(channel) for channel in ("telegram", "whatsapp") if salon.inbox(channel)
        ),
        waitlist=services.waitlist,
        proposals=services.proposals,
    )


def build_recorder(runtime: Runtime) -> Recorder | None:
    """The facts the handlers record, when the process has an analytics database."""
    salon = runtime.settings.salon
    # ANALYTICS_SALT is validated to be set once the process has an analytics database.
    if runtime.settings.analytics is None or salon.analytics.salt is None:
        return None
    return Recorder(
        salon.profile.id,
        salon.analytics.salt.get_secret_value(),
        salon.profile.timezone,
        timedelta(minutes=salon.session_idle_minutes),
    )


def build_handlers(
    runtime: Runtime, services: Services, clock: Callable[[], datetime]
) -> Conversations:
    salon = runtime.settings.salon
    desk = build_desk(salon, services)
    catalogs = desk.catalogs
    recorder = build_recorder(runtime)
    sessions = SessionStore(runtime.redis, runtime.keys, salon.session_retention_days * 24 * 3600)
    # One client across messengers: the chats that verified one number (README, "One client").
    identities = Identities(runtime.redis, runtime.keys)
    mirror_all = salon.chatwoot is not None and salon.chatwoot.mirror == "all"
    state = services.helpdesk_state
    mirror = Mirror(state, salon.chatwoot.mirror) if state and salon.chatwoot else None
    whatsapp = salon.whatsapp
    notices = NoticeSender(
        desk,
        catalogs,
        sessions,
        Templates(
            whatsapp.template_confirmation if whatsapp else TEMPLATE_CONFIRMATION,
            whatsapp.template_reminder if whatsapp else TEMPLATE_REMINDER,
        ),
        mirrored=frozenset(c for c in ("telegram", "whatsapp") if salon.inbox(c) and mirror_all),
        recorder=recorder,
    )
    handlers: dict[str, Handler] = {}
    planner = None
    if services.ledger is not None:
        profile = salon.profile
        planner = NovuPlanner(
            profile.id, profile.name, profile.timezone, desk.notices, catalogs, salon.reminder_hours
        )
        handlers["novu"] = NovuEvents(
            notices, clock, services.ledger, routing=(identities, runtime.inbox)
        )
    offers = None
    if services.calcom is not None and services.waitlist is not None:
        calcom = services.calcom
        offers = WaitlistOffers(
            services.waitlist, calcom.client, calcom.catalogue, runtime.inbox, clock
        )
        template = whatsapp.template_waitlist_offer if whatsapp else TEMPLATE_WAITLIST_OFFER
        handlers["waitlist"] = WaitlistEvents(
            services.waitlist, notices, clock, template, recorder=recorder
        )
    if services.calcom is not None:
        handlers["calcom"] = CalcomEvents(
            services.links,
            runtime.inbox,
            notices,
            planner,
            clock,
            recorder=recorder,
            ledger=services.ledger,
            identities=identities,
            waitlist=offers,
            slots_changed=services.calcom.calendar.slot_cache.changed,
        )
    if services.bot is not None:
        # Sessions are Frontdesk's own (committed with each turn), so aiogram's FSM stays off: it
        # would cost a storage lookup per update and keep an entry per user forever.
        dispatcher = Dispatcher(disable_fsm=True)
        dispatcher.include_router(build_router(salon.profile.id))
        handlers["telegram"] = TelegramConversations(
            services.bot,
            dispatcher,
            desk,
            sessions,
            clock,
            mirror if salon.inbox("telegram") else None,
            recorder=recorder,
            identities=identities,
        )
    if services.whatsapp_state is not None:
        handlers["whatsapp"] = WhatsAppConversations(
            desk,
            catalogs,
            sessions,
            services.whatsapp_state,
            runtime.metrics,
            clock,
            mirror if salon.inbox("whatsapp") else None,
            recorder=recorder,
            identities=identities,
        )
    if services.novu is not None and salon.chatwoot is not None:
        _page_staff(handlers, salon, catalogs, clock)
    if services.proposals is not None:
        proposal_template = whatsapp.template_proposal if whatsapp else TEMPLATE_PROPOSAL
        handlers["dashboard"] = DashboardEvents(
            salon.profile.id, salon.profile.zone, catalogs, sessions, proposal_template
        )
    if state is not None:
        handlers["chatwoot"] = ChatwootEvents(
            desk, catalogs, sessions, state, clock, mirror_all, recorder=recorder
        )
    return Conversations(handlers, recorder, offers)


def _page_staff(
    handlers: dict[str, Handler],
    salon: SalonSettings,
    catalogs: Catalogs,
    clock: Callable[[], datetime],
) -> None:
    """Staff are Novu subscribers made from Chatwoot's agents (`frontdesk novu sync`): they
    hear of clients' turns and no-shows in the salon's language, against its working hours."""
    profile = salon.profile
    words = catalogs.get(profile.default_locale)
    staff = StaffNotices(profile.id, profile.zone, words, profile.schedule, clock)
    for channel in ("telegram", "whatsapp"):
        handler = handlers.get(channel)
        if isinstance(handler, TelegramConversations | WhatsAppConversations):
            handler.turns.staff = staff.of_turn
    calcom_events = handlers.get("calcom")
    if isinstance(calcom_events, CalcomEvents):
        calcom_events.staff = staff.no_show
        calcom_events.out_of_hours = staff.of_calendar
