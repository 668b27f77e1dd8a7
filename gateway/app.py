"""The composition root: builds every client, store and worker from settings.

Nothing here touches the network when called; connections open when the app starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiogram import Bot, Dispatcher
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.conversation import FrontDesk
from bot.events import Channel
from bot.i18n import Catalogs
from bot.salon import Salon
from gateway.analytics.facts import Recorder
from gateway.analytics.store import Writer
from gateway.integrations.calcom.api import CalcomClient
from gateway.integrations.calcom.api import is_failure as calcom_failure
from gateway.integrations.calcom.bookings import BookingLinks
from gateway.integrations.calcom.calendar import CalcomCalendar
from gateway.integrations.calcom.catalogue import CalcomCatalogue
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.integrations.chatwoot.api import is_failure as chatwoot_failure
from gateway.integrations.chatwoot.files import ChatwootFiles
from gateway.integrations.chatwoot.helpdesk import (
    HelpDesk,
    HelpDeskSettings,
    HelpDeskState,
    StaffReplies,
)
from gateway.integrations.metabase.api import embed_url, sign_embed
from gateway.integrations.novu.api import NovuClient, NovuDelivery
from gateway.integrations.novu.api import is_failure as novu_failure
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.integrations.telegram.api import TelegramDelivery, is_failure, make_bot
from gateway.integrations.whatsapp.api import WhatsAppClient, WhatsAppDelivery
from gateway.integrations.whatsapp.api import is_failure as whatsapp_failure
from gateway.integrations.whatsapp.state import WhatsAppState
from gateway.pipeline.edge import (
    LARGEST_BODY,
    EdgeLimits,
    WebhookSource,
    server_options,
    webhook_route,
)
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from gateway.pipeline.logs import flush_summaries
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox import Delivery, OutboxSender, Pacing
from gateway.pipeline.redis_client import connect_redis
from gateway.pipeline.resilience import CircuitBreaker, TokenBucket
from gateway.pipeline.sessions import SessionStore
from gateway.pipeline.streams import Outgoing
from gateway.pipeline.tasks import stop_task
from gateway.pipeline.workers import Handler, InboundConsumer, Lease, WorkerPool
from gateway.settings import Settings
from handlers import calcom as calcom_events
from handlers.calcom import CalcomEvents, CalcomWebhook
from handlers.calcom_novu import NovuPlanner
from handlers.chatwoot import ChatwootEvents, ChatwootWebhook, reconcile
from handlers.mirror import Mirror
from handlers.notices import NoticeSender, Templates
from handlers.novu import NovuEvents, NovuWebhook, send_overdue
from handlers.telegram import TelegramConversations, TelegramWebhook, build_router
from handlers.whatsapp import WhatsAppConversations, WhatsAppWebhook, verify_challenge

log = logging.getLogger("frontdesk.app")

HANDLING_SLOTS = 16
SENDING_SLOTS = 16
# How long a signed dashboard embed stays valid (it travels in a URL: keep it short).
EMBED_TTL = 600


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


RUNTIME = web.AppKey("runtime", Runtime)


def create_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> web.Application:
    if redis is None:
        if settings.redis_url is None:
            raise ValueError("REDIS_URL is required (the demo starts an embedded Redis)")
        redis = connect_redis(settings.redis_url)
    keys = Keys(settings.salon_id, settings.stream_shards)
    metrics = Metrics()
    runtime = Runtime(
        settings, redis, keys, metrics, Inbox(redis, keys, settings.dedup_ttl_seconds)
    )
    # Each webhook route enforces its own limit while reading; this one bounds the other routes.
    app = web.Application(
        client_max_size=LARGEST_BODY,
        handler_args=server_options(settings.keepalive_seconds),
    )
    app[RUNTIME] = runtime
    limits = EdgeLimits(settings.edge_max_pending_reads, settings.edge_read_timeout_seconds)
    # One bound for the whole process: forged traffic on one route takes no more slots than
    # forged traffic spread over all of them.
    slots = asyncio.Semaphore(settings.edge_max_pending_reads)

    def webhook(source: WebhookSource) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        return webhook_route(source, runtime.inbox, metrics, limits, slots)

    if settings.telegram_enabled:
        assert settings.telegram_webhook_secret is not None  # validated by Settings
        source = TelegramWebhook(settings.telegram_webhook_secret.get_secret_value())
        app.router.add_post("/webhooks/telegram", webhook(source))
    if settings.whatsapp_enabled:
        assert settings.whatsapp_app_secret is not None  # validated by Settings
        assert settings.whatsapp_phone_number_id is not None
        whatsapp = WhatsAppWebhook(
            settings.whatsapp_app_secret.get_secret_value(),
            settings.whatsapp_phone_number_id,
            metrics,
        )
        app.router.add_get("/webhooks/whatsapp", whatsapp_handshake)
        app.router.add_post("/webhooks/whatsapp", webhook(whatsapp))
    if settings.chatwoot_enabled:
        secret = settings.chatwoot_webhook_secret
        if secret is not None:
            secrets = [s.strip() for s in secret.get_secret_value().split(",")]
            signed = ChatwootWebhook(secrets)
            app.router.add_post("/webhooks/chatwoot", webhook(signed))
        if settings.chatwoot_webhook_token is not None:
            token = settings.chatwoot_webhook_token.get_secret_value()
            unsigned = webhook(ChatwootWebhook([], signed=False))

            async def by_token(request: web.Request) -> web.StreamResponse:
                # Chatwoot before 4.13 signs nothing: the secret is the URL's last part.
                given = request.match_info["token"].encode()
                if not hmac.compare_digest(given, token.encode()):
                    metrics.webhooks.labels("chatwoot", "unauthorized").inc()
                    return web.json_response({"error": "unauthorized"}, status=401)
                return await unsigned(request)

            app.router.add_post("/webhooks/chatwoot/{token}", by_token)
    if settings.calcom_webhook_secret is not None and settings.services()["calcom"]:
        calcom_webhook = CalcomWebhook(settings.calcom_webhook_secret.get_secret_value())
        app.router.add_post("/webhooks/calcom", webhook(calcom_webhook))
    if settings.novu_enabled:
        assert settings.novu_signing_key is not None  # the API key at least
        novu_webhook = NovuWebhook(settings.novu_signing_key)
        app.router.add_post("/webhooks/novu", webhook(novu_webhook))
    if settings.embedding_enabled:
        app.router.add_get("/analytics/embed", analytics_embed)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    app.cleanup_ctx.append(lambda app: _lifecycle(app, clock))
    app.cleanup_ctx.append(_background_refresh)
    return app


async def _background_refresh(app: web.Application) -> AsyncIterator[None]:
    """Reads what /metrics shows from Redis in the background, so that a scrape costs no Redis
    call however often (or by whomever) it comes; and writes the log summaries that are due."""
    runtime = app[RUNTIME]
    refreshing = asyncio.create_task(_refresh_forever(runtime))
    try:
        yield
    finally:
        await stop_task(refreshing, "metrics refresh")


async def _refresh_forever(runtime: Runtime) -> None:
    while True:
        # Redis away: the last values stay, and /readyz says why.
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(runtime.metrics.refresh_queues(runtime.redis, runtime.keys), 2.0)
        flush_summaries()
        await asyncio.sleep(runtime.settings.metrics_refresh_seconds)


async def _lifecycle(app: web.Application, clock: Callable[[], datetime]) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = runtime.settings
    handlers: dict[str, Handler] = {}
    closing: list[Callable[[], Awaitable[None]]] = []
    deliveries: dict[str, Delivery] = {}
    pacing: dict[str, Pacing] = {}
    buckets: dict[str, TokenBucket] = {}
    catalogs = Catalogs(default_locale=settings.default_locale)
    calcom: CalcomClient | None = None
    calendar: CalcomCalendar | None = None
    links = BookingLinks(runtime.redis, runtime.keys)
    if settings.calcom_api_key is not None and settings.calcom_api_url is not None:
        calcom_breaker = _breaker(runtime, "calcom", calcom_failure)
        calcom = CalcomClient(
            settings.calcom_api_url,
            settings.calcom_api_key.get_secret_value(),
            breaker=calcom_breaker,
            timeout=settings.service_timeout_seconds,
        )
        catalogue = CalcomCatalogue(
            calcom, team_id=settings.calcom_team_id, currency=settings.salon_currency
        )
        calendar = CalcomCalendar(
            calcom, catalogue, settings.salon_timezone, changing=links.changing
        )
    chatwoot: ChatwootClient | None = None
    staff_files: ChatwootFiles | None = None
    helpdesk_state: HelpDeskState | None = None
    mirror: Mirror | None = None
    helpdesk: HelpDesk | None = None
    if settings.chatwoot_enabled:
        assert settings.chatwoot_api_token is not None  # validated by Settings
        assert settings.chatwoot_url is not None
        assert settings.chatwoot_account_id is not None
        chatwoot_breaker = _breaker(runtime, "chatwoot", chatwoot_failure)
        chatwoot = ChatwootClient(
            settings.chatwoot_url,
            settings.chatwoot_account_id,
            settings.chatwoot_api_token.get_secret_value(),
            chatwoot_breaker,
            timeout=settings.service_timeout_seconds,
            bot_token=(
                settings.chatwoot_bot_token.get_secret_value()
                if settings.chatwoot_bot_token
                else None
            ),
        )
        closing.append(chatwoot.aclose)
        # Staff files are fetched when their message is delivered, behind the same breaker; a
        # download is allowed longer than an API call (files of up to 100 MB).
        staff_files = ChatwootFiles(chatwoot_breaker, timeout=3 * settings.service_timeout_seconds)
        closing.append(staff_files.aclose)
        helpdesk_state = HelpDeskState(runtime.redis, runtime.keys)
        inboxes = {
            channel: inbox
            for channel, inbox in (
                ("telegram", settings.chatwoot_telegram_inbox_id),
                ("whatsapp", settings.chatwoot_whatsapp_inbox_id),
            )
            if inbox is not None
        }
        helpdesk = HelpDesk(
            chatwoot,
            helpdesk_state,
            HelpDeskSettings(
                inboxes,
                settings.chatwoot_mirror,
                settings.chatwoot_team_id,
                settings.chatwoot_assignee_id,
                settings.chatwoot_labels,
            ),
        )
        mirror = Mirror(helpdesk_state, settings.chatwoot_mirror)
        deliveries["chatwoot"] = helpdesk
        # Chatwoot's own limit is 3000 requests a minute per IP, for every call we make.
        pacing["chatwoot"] = Pacing(1000.0, 1000, 40.0)
        buckets["chatwoot"] = TokenBucket(40.0, 40)
    desk = FrontDesk(
        Salon(
            id=settings.salon_id,
            name=settings.salon_name,
            timezone=settings.salon_timezone,
            address=settings.salon_address,
            phone=settings.salon_phone,
            hours=settings.salon_hours,
            addresses=settings.salon_addresses,
            opening_hours=settings.salon_opening_hours,
        ),
        catalogs,
        idle=timedelta(minutes=settings.session_idle_minutes),
        calendar=calendar,
        help_desk_channels=frozenset(
            Channel(channel) for channel in ("telegram", "whatsapp") if _inbox(settings, channel)
        ),
    )
    sessions = SessionStore(
        runtime.redis, runtime.keys, settings.session_retention_days * 24 * 3600
    )
    recorder: Recorder | None = None
    writer: Writer | None = None
    if settings.analytics_database_url is not None:
        assert settings.analytics_salt is not None  # validated by Settings
        recorder = Recorder(
            settings.salon_id,
            settings.analytics_salt.get_secret_value(),
            settings.salon_timezone,
            timedelta(minutes=settings.session_idle_minutes),
        )
        writer = Writer(
            runtime.redis,
            runtime.keys,
            settings.analytics_database_url.get_secret_value(),
            runtime.metrics,
        )
    notices = NoticeSender(
        desk,
        catalogs,
        sessions,
        Templates(settings.whatsapp_template_confirmation, settings.whatsapp_template_reminder),
        mirrored=frozenset(
            channel
            for channel in ("telegram", "whatsapp")
            if _inbox(settings, channel) and settings.chatwoot_mirror == "all"
        ),
        recorder=recorder,
    )
    planner: NovuPlanner | None = None
    ledger: NoticeLedger | None = None
    if settings.novu_enabled:
        assert settings.novu_api_key is not None
        assert settings.novu_api_url is not None
        novu = NovuClient(
            settings.novu_api_url,
            settings.novu_api_key.get_secret_value(),
            _breaker(runtime, "novu", novu_failure),
            timeout=settings.service_timeout_seconds,
        )
        closing.append(novu.aclose)
        deliveries["novu"] = NovuDelivery(novu)
        # Novu's smallest plan takes 20 configuration and 60 trigger requests a second.
        pacing["novu"] = Pacing(1000.0, 1000, 20.0)
        buckets["novu"] = TokenBucket(20.0, 20)
        planner = NovuPlanner(
            settings.salon_id,
            settings.salon_name,
            settings.salon_timezone,
            desk.notices,
            catalogs,
            settings.reminder_hours,
        )
        ledger = NoticeLedger(runtime.redis, runtime.keys)
        handlers["novu"] = NovuEvents(notices, clock, ledger)
    if calcom is not None:
        handlers["calcom"] = CalcomEvents(
            links, runtime.inbox, notices, planner, clock, recorder=recorder, ledger=ledger
        )

    if settings.telegram_bot_token is not None:
        breaker = _breaker(runtime, "telegram", is_failure)
        bot = make_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)
        runtime.bot = bot
        # Sessions are Frontdesk's own (committed with each turn), so aiogram's FSM stays off: it
        # would cost a storage lookup per update and keep an entry per user forever.
        dispatcher = Dispatcher(disable_fsm=True)
        dispatcher.include_router(build_router(settings.salon_id))
        handlers["telegram"] = TelegramConversations(
            bot,
            dispatcher,
            desk,
            sessions,
            clock,
            mirror if _inbox(settings, "telegram") else None,
            recorder=recorder,
        )
        telegram = TelegramDelivery(
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_api_url,
            breaker,
            files=staff_files,
        )
        deliveries["telegram"] = telegram
        closing.append(telegram.close)
        pacing["telegram"] = Pacing(
            settings.telegram_rate_per_chat,
            settings.telegram_burst_per_chat,
            settings.telegram_rate_global,
        )
        buckets["telegram"] = TokenBucket(
            settings.telegram_rate_global, max(1, int(settings.telegram_rate_global))
        )

    if settings.whatsapp_enabled:
        assert settings.whatsapp_access_token is not None  # validated by Settings
        assert settings.whatsapp_phone_number_id is not None
        whatsapp_breaker = _breaker(runtime, "whatsapp", whatsapp_failure)
        whatsapp_client = WhatsAppClient(
            settings.whatsapp_api_url,
            settings.whatsapp_phone_number_id,
            settings.whatsapp_access_token.get_secret_value(),
            whatsapp_breaker,
            timeout=settings.service_timeout_seconds,
        )
        closing.append(whatsapp_client.aclose)
        state = WhatsAppState(runtime.redis, runtime.keys)
        handlers["whatsapp"] = WhatsAppConversations(
            desk,
            catalogs,
            sessions,
            state,
            runtime.metrics,
            clock,
            mirror if _inbox(settings, "whatsapp") else None,
            recorder=recorder,
        )
        if helpdesk is not None:
            helpdesk.media["whatsapp"] = whatsapp_client.download
        deliveries["whatsapp"] = WhatsAppDelivery(
            whatsapp_client,
            state,
            runtime.metrics,
            reply_waiting_template=settings.whatsapp_template_reply_waiting,
            salon_name=settings.salon_name,
            clock=clock,
            files=staff_files,
        )
        pacing["whatsapp"] = Pacing(
            settings.whatsapp_rate_per_chat,
            settings.whatsapp_burst_per_chat,
            settings.whatsapp_rate_global,
        )
        buckets["whatsapp"] = TokenBucket(
            settings.whatsapp_rate_global, max(1, int(settings.whatsapp_rate_global))
        )

    held = None
    if helpdesk is not None and helpdesk_state is not None:
        handlers["chatwoot"] = ChatwootEvents(
            desk,
            catalogs,
            sessions,
            helpdesk_state,
            clock,
            settings.chatwoot_mirror == "all",
            recorder=recorder,
        )
        for channel in ("telegram", "whatsapp"):
            if channel in deliveries:
                deliveries[channel] = StaffReplies(deliveries[channel], helpdesk)
        state_of_helpdesk = helpdesk_state

        async def held_back(message: Outgoing) -> bool:
            if message.channel not in ("telegram", "whatsapp"):
                return False
            return await state_of_helpdesk.human_owns(message.channel, message.chat)

        held = held_back

    # How many entries are handled, and how many messages sent, at once in this process: well
    # under the Redis pool's 64 connections (the shards' blocking reads hold some too).
    handling_slots = asyncio.Semaphore(HANDLING_SLOTS)
    sending_slots = asyncio.Semaphore(SENDING_SLOTS)
    # One wake-up event per shard: the edge sets it when it queues, the outbox after a commit.
    inbound_wake = [asyncio.Event() for _ in range(settings.stream_shards)]
    outbound_wake = [asyncio.Event() for _ in range(settings.stream_shards)]
    runtime.inbox.listen(inbound_wake)

    async def run_shard(lease: Lease) -> None:
        consumer = InboundConsumer(
            runtime.redis,
            lease,
            handlers,
            runtime.metrics,
            max_attempts=settings.max_attempts,
            wake=inbound_wake[lease.shard],
            sent=outbound_wake[lease.shard],
            slots=handling_slots,
            record_facts=recorder is not None,
        )
        sender = OutboxSender(
            runtime.redis,
            lease,
            deliveries,
            pacing,
            buckets,
            runtime.metrics,
            schedule=settings.outbox_retry_schedule,
            wake=outbound_wake[lease.shard],
            slots=sending_slots,
            held=held,
        )
        await work_shard(lease, consumer, sender, settings.shutdown_grace_seconds)

    # What exists now lives as long as the process: keep the collector from walking it (the
    # aiogram and pydantic models alone are some 200k objects) on every full collection.
    gc.freeze()
    pool_task: asyncio.Task[None] | None = None
    if settings.run_workers:
        runtime.pool = WorkerPool(
            runtime.redis,
            runtime.keys,
            run_shard,
            lease_seconds=settings.lease_seconds,
        )
        pool_task = asyncio.create_task(runtime.pool.run())
    reconciling: asyncio.Task[None] | None = None
    if settings.run_workers and chatwoot is not None and helpdesk_state is not None:
        reconciling = asyncio.create_task(
            _reconcile_forever(chatwoot, helpdesk_state, runtime.inbox, settings)
        )
    writing = (
        asyncio.create_task(writer.run()) if settings.run_workers and writer is not None else None
    )
    if settings.run_workers and calcom is not None:
        bookings_sync = asyncio.create_task(
            _reconcile_bookings_forever(calcom, links, runtime.inbox, settings, clock)
        )
    else:
        bookings_sync = None
    overdue_notices = (
        asyncio.create_task(_send_overdue_forever(ledger, runtime.inbox, settings, clock))
        if settings.run_workers and ledger is not None
        else None
    )
    try:
        yield
    finally:
        runtime.stopping = True
        await stop_task(overdue_notices, "Novu notice ledger")
        await stop_task(reconciling, "Chatwoot reconciliation")
        await stop_task(bookings_sync, "Cal.com reconciliation")
        await stop_task(writing, "analytics writer")
        if runtime.pool is not None and pool_task is not None:
            await runtime.pool.stop(settings.shutdown_grace_seconds)
            await stop_task(pool_task, "worker pool")
        if runtime.bot is not None:
            await runtime.bot.session.close()
        for close in closing:
            await close()
        if calcom is not None:
            await calcom.aclose()
        if writer is not None:
            await writer.close()
        await runtime.redis.aclose()


def _breaker(
    runtime: Runtime, name: str, is_failure: Callable[[BaseException], bool]
) -> CircuitBreaker:
    """A service's circuit breaker, set from the settings and reported in /readyz and metrics."""
    settings = runtime.settings
    breaker = CircuitBreaker(
        name,
        fail_max=settings.breaker_failures,
        reset_timeout=settings.breaker_reset_seconds,
        is_failure=is_failure,
        on_change=runtime.metrics.breaker_changed,
    )
    runtime.breakers[name] = breaker
    runtime.metrics.breaker_changed(name, breaker.state)
    return breaker


def _inbox(settings: Settings, channel: str) -> bool:
    """Whether the channel's conversations go to Chatwoot (it has an inbox there)."""
    inbox = (
        settings.chatwoot_telegram_inbox_id
        if channel == "telegram"
        else settings.chatwoot_whatsapp_inbox_id
    )
    return settings.chatwoot_enabled and inbox is not None


async def _reconcile_forever(
    chatwoot: ChatwootClient, state: HelpDeskState, inbox: Inbox, settings: Settings
) -> None:
    """Agent replies whose webhook never came, looked for every CHATWOOT_RECONCILE_SECONDS."""
    while True:
        await asyncio.sleep(settings.chatwoot_reconcile_seconds)
        try:
            await reconcile(chatwoot, state, inbox)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Chatwoot reconciliation failed: %s", type(exc).__name__)


async def _reconcile_bookings_forever(
    calcom: CalcomClient,
    links: BookingLinks,
    inbox: Inbox,
    settings: Settings,
    clock: Callable[[], datetime],
) -> None:
    """Booking changes whose webhook never came, looked for every CALCOM_RECONCILE_SECONDS."""
    while True:
        await asyncio.sleep(settings.calcom_reconcile_seconds)
        try:
            lookback = timedelta(hours=settings.calcom_reconcile_lookback_hours)
            await calcom_events.reconcile(calcom, links, inbox, clock(), lookback)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Cal.com reconciliation failed: %s", type(exc).__name__)


async def _send_overdue_forever(
    ledger: NoticeLedger, inbox: Inbox, settings: Settings, clock: Callable[[], datetime]
) -> None:
    """Messenger notices Novu did not post back, sent every NOVU_LEDGER_SECONDS once they are
    NOVU_GRACE_SECONDS past due."""
    grace = timedelta(seconds=settings.novu_grace_seconds)
    while True:
        await asyncio.sleep(settings.novu_ledger_seconds)
        try:
            await send_overdue(ledger, inbox, clock(), grace)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("the Novu notice ledger failed: %s", type(exc).__name__)


async def work_shard(
    lease: Lease, consumer: InboundConsumer, sender: OutboxSender, grace: float
) -> None:
    """Run a shard's consumer and sender until the lease is lost or given back.

    Given back (shutdown, rebalancing): the conversations in flight finish and the replies they
    committed are delivered, within `grace`; what was not started stays pending for the next
    holder. Lost: stop at once, the next holder may already be at work.
    """
    consume = asyncio.create_task(consumer.run())
    send = asyncio.create_task(sender.run())
    lost = asyncio.create_task(lease.lost.wait())
    ending = asyncio.create_task(lease.ending.wait())
    try:
        done, _ = await asyncio.wait(
            [consume, send, lost, ending], return_when=asyncio.FIRST_COMPLETED
        )
        deadline = time.monotonic() + grace
        await consumer.drain(deadline)
        if not lease.lost.is_set() and not send.done():
            sender.finishing = True
            sender.wake.set()
            await asyncio.wait([send], timeout=max(0.0, deadline - time.monotonic()))
    finally:
        lease.lost.set()
        await sender.drain(time.monotonic())
        for task in (consume, send, lost, ending):
            task.cancel()
        await asyncio.gather(consume, send, lost, ending, return_exceptions=True)
    for part in (consume, send):
        if part in done and not part.cancelled() and (error := part.exception()) is not None:
            raise error


async def whatsapp_handshake(request: web.Request) -> web.Response:
    """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    token = request.app[RUNTIME].settings.whatsapp_verify_token
    assert token is not None  # the route exists only when WhatsApp is configured
    challenge = verify_challenge(request.query, token.get_secret_value())
    if challenge is None:
        log.warning("WhatsApp verification refused: wrong verify token or mode")
        return web.Response(status=403, text="forbidden")
    return web.Response(text=challenge, content_type="text/plain")


async def analytics_embed(request: web.Request) -> web.Response:
    """A signed Metabase embed URL of the salon's dashboard, for staff holding the token."""
    settings = request.app[RUNTIME].settings
    assert settings.analytics_embed_token is not None  # the route exists only then
    assert settings.metabase_secret_key is not None
    assert settings.metabase_site_url is not None
    assert settings.metabase_dashboard_id is not None
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    given = given or request.query.get("token", "")
    expected = settings.analytics_embed_token.get_secret_value()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return web.json_response({"error": "unauthorized"}, status=401)
    days = request.query.get("days", "30")
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= 366:
        return web.json_response({"error": "days must be 1 to 366"}, status=400)
    today = datetime.now(settings.zone).date()
    params = {
        "salon": settings.salon_id,
        "start": (today - timedelta(days=int(days) - 1)).isoformat(),
        "end": today.isoformat(),
    }
    token = sign_embed(
        settings.metabase_secret_key.get_secret_value(),
        settings.metabase_dashboard_id,
        params,
        ttl=EMBED_TTL,
    )
    url = embed_url(settings.metabase_site_url, token)
    headers = {"Cache-Control": "no-store"}
    if request.query.get("open"):
        raise web.HTTPFound(url, headers=headers)
    return web.json_response({"url": url, "expires_in": EMBED_TTL}, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    checks: dict[str, object] = {}
    ready = not runtime.stopping
    try:
        await asyncio.wait_for(runtime.redis.ping(), 1.0)  # type: ignore[arg-type]
        checks["redis"] = "ok"
    except (RedisError, OSError, TimeoutError) as exc:
        checks["redis"] = f"unreachable ({type(exc).__name__})"
        ready = False
    services: dict[str, str] = {}
    for name, configured in runtime.settings.services().items():
        breaker = runtime.breakers.get(name)
        if not configured:
            services[name] = "off"
        elif breaker is not None:
            services[name] = breaker.state.name.lower().replace("_", "-")
        else:
            services[name] = "configured"
    checks["services"] = services
    if runtime.pool is not None:
        checks["shards"] = runtime.pool.owned
    if runtime.stopping:
        checks["stopping"] = True
    return web.json_response(
        {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
    )


async def metrics_route(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    token = runtime.settings.metrics_token
    if token is not None:
        # RFC 6750 §2.1: "Authorization: Bearer <token>"; §3: a 401 names the scheme.
        # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes: encode them back.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return web.Response(
        body=runtime.metrics.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
