"""`frontdesk demo`: the real gateway wired to the local sandbox; no accounts, no tokens.

The sandboxes play Telegram and WhatsApp: the page is a Telegram chat with the bot and, beside
it, a WhatsApp chat; each delivers the client's messages to the gateway's webhooks the way the
real service does (Telegram's secret header, Meta's signature). Cal.com is a stand-in with a
believable salon. Redis is the one at `REDIS_URL`, or an embedded in-process one when unset.
With a local PostgreSQL a second salon runs beside the first (`demo_second_salon`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import ClientSession, web
from pydantic import SecretStr

from gateway.analytics import store as analytics_store
from gateway.analytics.weekly import Week
from gateway.app import SERVED, create_app
from gateway.dashboard_app import tokens
from gateway.dashboard_app.notices_routes import notices_url
from gateway.dashboard_app.routes import page_url
from gateway.integrations.chatwoot.api import is_failure
from gateway.integrations.chatwoot.factory import chatwoot_client
from gateway.integrations.novu.factory import novu_client
from gateway.integrations.novu.staff import sync_staff
from gateway.integrations.novu.workflows import sync as sync_workflows
from gateway.ops.demo_dashboard import METABASE_OFFSET, report_command, serve_dashboard
from gateway.ops.demo_second_salon import SECOND_ID, SecondSalon, serve_second_salon, with_registry
from gateway.ops.report_page import ReportPage
from gateway.pipeline.embedded_redis import EmbeddedRedis
from gateway.pipeline.logs import configure
from gateway.pipeline.resilience import command_breaker
from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.chatwoot import ChatwootSandbox, Inbox
from gateway.sandbox.novu import NovuSandbox
from gateway.sandbox.pages import serve
from gateway.sandbox.telegram import TelegramSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox
from gateway.settings import AnalyticsSettings, Settings, SettingsError, load

log = logging.getLogger("frontdesk.demo")

# Not a secret: the sandbox accepts it and nothing else does.
DEMO_TOKEN = "123456:frontdesk-demo-sandbox-token"  # noqa: S105 - known to the sandbox only
DEMO_CALCOM_KEY = "cal_demo_sandbox_key"
DEMO_WHATSAPP_TOKEN = "EAAG-frontdesk-demo-sandbox"  # noqa: S105 - known to the sandbox only
DEMO_WHATSAPP_NUMBER = "106540352242922"
DEMO_CHATWOOT_TOKEN = "chatwoot-demo-agent-token"  # noqa: S105 - known to the sandbox only
DEMO_NOVU_KEY = "novu-demo-sandbox-key"
# Where the demo keeps its analytics when ANALYTICS_DATABASE_URL is not set: a local
# PostgreSQL, if there is one (trust auth), in a database of its own.
DEMO_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEMO_DATABASE = "frontdesk_demo"
DEMO_SALT = "frontdesk-demo-salt-not-a-secret"
DEMO_SALON = {
    "salon_name": "Frontdesk Demo Salon",
    "salon_timezone": "Europe/Moscow",
    "salon_currency": "RUB",
    "salon_address": "1 Example Street",
    "salon_phone": "+1 555 0100",
    "salon_hours": "Mon–Sat 10:00–20:00",
    # What a Russian-speaking client reads instead.
    "salon_address_ru": "Примерная улица, 1",
    "salon_hours_ru": "Пн–Сб 10:00–20:00",
}


def demo_overrides(host: str, port: int) -> dict[str, object]:
    """The settings the demo imposes; the salon's own details win when they are set."""
    overrides: dict[str, object] = {
        "telegram_bot_token": DEMO_TOKEN,
        "telegram_webhook_secret": secrets.token_urlsafe(24),
        "telegram_api_url": f"http://{host}:{port + 1}",
        "calcom_api_url": f"http://{host}:{port + 2}",
        "calcom_api_key": DEMO_CALCOM_KEY,
        "whatsapp_access_token": DEMO_WHATSAPP_TOKEN,
        "whatsapp_phone_number_id": DEMO_WHATSAPP_NUMBER,
        "whatsapp_app_secret": secrets.token_urlsafe(24),
        "whatsapp_verify_token": secrets.token_urlsafe(16),
        "whatsapp_api_url": f"http://{host}:{port + 3}/v23.0",
        "chatwoot_api_token": DEMO_CHATWOOT_TOKEN,
        "chatwoot_url": f"http://{host}:{port + 4}",
        "chatwoot_account_id": 1,
        "chatwoot_telegram_inbox_id": 1,
        "chatwoot_whatsapp_inbox_id": 2,
        # Replaced by the sandbox inboxes' own secrets when the demo starts.
        "chatwoot_webhook_secret": "pending",
        "chatwoot_reconcile_seconds": 5.0,
        "calcom_webhook_secret": secrets.token_urlsafe(24),
        "novu_api_url": f"http://{host}:{port + 5}",
        "novu_api_key": DEMO_NOVU_KEY,
        "public_url": f"http://{host}:{port}",
        "log_format": "text",
    }
    for name, value in DEMO_SALON.items():
        if not os.environ.get(name.upper()):
            overrides[name] = value
    return overrides


async def _with_analytics(settings: Settings, database: str = DEMO_DATABASE) -> Settings:
    """Analytics on a local PostgreSQL when the operator gave none and one answers, in the
    demo's own `database`, emptied of the demo salon's rows: each run starts from nothing."""
    if settings.analytics is not None:
        return settings
    try:
        admin = await asyncpg.connect(DEMO_POSTGRES, timeout=2)
    except (OSError, asyncpg.PostgresError) as exc:
        log.info("no local PostgreSQL for the demo's analytics: %s", type(exc).__name__)
        return settings
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{database}"')
    except asyncpg.PostgresError as exc:
        log.info("the demo's analytics database cannot be made: %s", exc)
        return settings
    finally:
        await admin.close()
    url = DEMO_POSTGRES.rsplit("/", 1)[0] + f"/{database}"
    await _fresh_analytics(url, settings.salon.profile.id)
    return settings.with_salon(analytics_salt=DEMO_SALT).model_copy(
        update={"analytics": AnalyticsSettings(database_url=SecretStr(url))}
    )


async def _fresh_analytics(url: str, salon_id: str) -> None:
    """Forget what earlier demo runs recorded for this salon, so the analytics pane shows this
    run alone, and which weeks' owner's reports they sent, so this run's can be sent. Only the
    demo's own database: one the operator gave is never emptied."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await analytics_store.migrate(connection)
        deleted = await connection.execute("DELETE FROM events WHERE salon = $1", salon_id)
        await connection.execute("DELETE FROM owner_reports WHERE salon = $1", salon_id)
    finally:
        await connection.close()
    log.info("the demo's analytics start afresh (%s earlier rows)", deleted.split()[-1])


def run_demo(host: str, port: int) -> int:
    embedded = None
    overrides = demo_overrides(host, port)
    if not os.environ.get("REDIS_URL"):
        embedded = EmbeddedRedis().start()
        overrides["redis_url"] = embedded.url
    try:
        settings = load(**overrides)
    except SettingsError as exc:
        print("frontdesk: the configuration has problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    configure("text", settings.log_level, settings.secrets())
    try:
        asyncio.run(_run(settings, host, port, embedded is not None))
    except OSError as exc:
        print(
            f"frontdesk demo: cannot listen on {host}:{port} to {port + METABASE_OFFSET}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


@dataclass
class _Sandboxes:
    """The stand-ins the demo serves, and what the gateway is told of them."""

    calendar: CalcomSandbox
    whatsapp: WhatsAppSandbox
    inboxes: list[Inbox]
    desk: ChatwootSandbox
    runners: list[web.AppRunner] = field(default_factory=list)
    analytics: bool = False

    async def cleanup(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        await self.calendar.close()


async def _run(
    settings: Settings,
    host: str,
    port: int,
    embedded: bool,
    stop: asyncio.Event | None = None,
    second_id: str = SECOND_ID,
    database: str = DEMO_DATABASE,
) -> None:
    """Serve the sandbox and the gateway until `stop` is set (by default: Ctrl+C or SIGTERM);
    with PostgreSQL, a second salon (`second_id`) from the salon registry beside the first.
    `database`: the demo's own (the test suite keeps to another, so that a test run beside a
    running demo leaves its registry and analytics alone)."""
    settings = await _with_analytics(settings, database)
    second = None
    if (registry := with_registry(settings, database)) is not None:
        settings = registry
        second = await serve_second_salon(settings, host, port, DEMO_SALT, second_id)
    try:
        await _serve_gateway(settings, host, port, embedded, second, stop)
    finally:
        if second is not None:
            await second.cleanup(settings)


async def _serve_gateway(
    settings: Settings,
    host: str,
    port: int,
    embedded: bool,
    second: SecondSalon | None,
    stop: asyncio.Event | None,
) -> None:
    extra = [second.pane] if second is not None else []
    sandboxes = await _serve_sandboxes(settings, host, port, extra)
    # Metabase's stand-in with the synced dashboard, which the owner's report links to.
    settings, dashboard = await serve_dashboard(settings, host, port)
    if dashboard is not None:
        sandboxes.runners.append(dashboard)
    # The gateway is told the stand-ins' own inboxes, secrets and team.
    settings = settings.with_salon(
        chatwoot_telegram_inbox_id=sandboxes.inboxes[0].id,
        chatwoot_whatsapp_inbox_id=sandboxes.inboxes[1].id,
        chatwoot_webhook_secret=",".join(i.secret for i in sandboxes.inboxes),
        calcom_team_id=sandboxes.calendar.seed_demo_salon(zone=settings.salon.profile.timezone),
    )
    sandboxes.runners.append(await sandboxes.calendar.serve(host, port + 2))
    app = create_app(settings)
    gateway = web.AppRunner(app, access_log=None)
    await gateway.setup()
    try:
        await web.TCPSite(gateway, host, port).start()
        await _register(settings, sandboxes, f"http://{host}:{port}")
        if second is not None:
            await second.go_live(app[SERVED], f"http://{host}:{port}")
        this_week = Week.of(datetime.now(settings.salon.profile.zone).date())
        report = report_command(settings, this_week)
        print(_banner(host, port, embedded, sandboxes.analytics, second, report), flush=True)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        with contextlib.suppress(Exception):
            await gateway.cleanup()
        await sandboxes.cleanup()


async def _serve_sandboxes(
    settings: Settings, host: str, port: int, extra: list[tuple[str, str]]
) -> _Sandboxes:
    """The stand-ins on the ports after the gateway's, but Cal.com's (served once seeded);
    `extra` panes go last on the page (the second salon's chat)."""
    salon = settings.salon
    assert salon.calcom is not None
    assert salon.calcom.webhook_secret is not None
    assert salon.whatsapp is not None
    # A believable salon in the Cal.com stand-in: three masters, six services, a week of hours.
    # It tells the gateway of every booking change, signed, as Cal.com does.
    calendar = CalcomSandbox(
        DEMO_CALCOM_KEY,
        webhook_url=f"http://{host}:{port}/webhooks/calcom",
        webhook_secret=salon.calcom.webhook_secret.get_secret_value(),
    )
    whatsapp = WhatsAppSandbox(
        DEMO_WHATSAPP_TOKEN,
        DEMO_WHATSAPP_NUMBER,
        salon.whatsapp.app_secret.get_secret_value(),
        bookings=calendar.bookings_json,
    )
    desk = ChatwootSandbox(DEMO_CHATWOOT_TOKEN, 1)
    inboxes = [desk.add_inbox(name) for name in ("Telegram (gateway)", "WhatsApp (gateway)")]
    sandboxes = _Sandboxes(calendar, whatsapp, inboxes, desk)
    runners = sandboxes.runners
    # The panes beside the Telegram chat, as the page's switches name them.
    panes = [
        ("WhatsApp", f"http://{host}:{port + 3}/"),
        ("Staff (Chatwoot)", f"http://{host}:{port + 4}/"),
        ("Notifications (Novu)", f"http://{host}:{port + 5}/"),
    ]
    if settings.analytics is not None:
        report = ReportPage(
            settings.analytics.database_url.get_secret_value(),
            salon.profile.id,
            salon.profile.timezone,
        )
        runners.append(await serve(report.app(), host, port + 6))
        sandboxes.analytics = True
        panes.append(("Analytics", f"http://{host}:{port + 6}/"))
    panes.extend(extra)
    # Novu with the repo's workflows: notifications, and a clock the page fast-forwards.
    runners.append(await NovuSandbox(DEMO_NOVU_KEY).serve(host, port + 5))
    runners.append(await whatsapp.serve(host, port + 3))
    runners.append(await desk.serve(host, port + 4))
    telegram = TelegramSandbox(
        DEMO_TOKEN,
        bookings=calendar.bookings_json,
        beside=panes,
        calendar_zone=salon.profile.timezone,
    )
    runners.append(await telegram.serve(host, port + 1))
    return sandboxes


async def _register(settings: Settings, sandboxes: _Sandboxes, gateway: str) -> None:
    """Tell the stand-ins where the gateway is, as the operator's commands tell the vendors."""
    salon = settings.salon
    assert salon.telegram is not None
    assert salon.whatsapp is not None
    assert salon.novu is not None
    # Register the webhook with the sandbox exactly as `frontdesk webhooks set` does with
    # Telegram: URL and secret.
    async with (
        ClientSession() as http,
        http.post(
            f"{salon.telegram.api_url}/bot{DEMO_TOKEN}/setWebhook",
            json={
                "url": f"{gateway}/webhooks/telegram",
                "secret_token": salon.telegram.webhook_secret.get_secret_value(),
            },
        ) as response,
    ):
        response.raise_for_status()
    for inbox in sandboxes.inboxes:
        inbox.webhook_url = f"{gateway}/webhooks/chatwoot"
    # The bookings app beside the conversation, as an administrator adds it in Chatwoot.
    assert salon.chatwoot is not None
    token = salon.chatwoot.api_token.get_secret_value()
    secret = tokens.secret_for(salon.profile.id, token, settings.dashboard_app_key_version)
    sandboxes.desk.add_dashboard_app("Bookings", page_url(gateway, salon.profile.id, secret))
    # And the second one: the signed-in staff member's Novu in-app feed.
    sandboxes.desk.add_dashboard_app("Notices", notices_url(gateway, salon.profile.id, secret))
    # Novu's workflows, as `frontdesk novu sync` creates them.
    timeout = settings.service_timeout_seconds
    async with novu_client(salon.novu, command_breaker, timeout) as novu:
        await sync_workflows(novu, f"{gateway}/webhooks/novu")
        # And the salon's staff, from Chatwoot's agents: their in-app feed is on Novu's page.
        chatwoot = chatwoot_client(salon.chatwoot, command_breaker("chatwoot", is_failure), timeout)
        try:
            await sync_staff(novu, await chatwoot.agents(), salon.profile.id)
        finally:
            await chatwoot.aclose()
    # And with Meta's way for WhatsApp: the verification handshake on the callback URL.
    await sandboxes.whatsapp.subscribe(
        f"{gateway}/webhooks/whatsapp", salon.whatsapp.verify_token.get_secret_value()
    )


def _banner(
    host: str,
    port: int,
    embedded: bool,
    analytics: bool,
    second: SecondSalon | None = None,
    report: str | None = None,
) -> str:
    redis = "embedded, in this process (nothing is kept)" if embedded else "REDIS_URL"
    where = (
        f"http://{host}:{port + 6}/  (PostgreSQL)"
        if analytics
        else "off: no PostgreSQL (set ANALYTICS_DATABASE_URL to see it)"
    )
    return (
        "\nFrontdesk demo is running.\n"
        "  The demo page: a client in Telegram and in WhatsApp, salon staff (Chatwoot),\n"
        "  notifications and analytics, each pane switched on or off at the top:\n"
        f"    http://{host}:{port + 1}/\n"
        f"  WhatsApp alone:  http://{host}:{port + 3}/\n"
        f"  Staff alone (Chatwoot stand-in):  http://{host}:{port + 4}/\n"
        f"  Notifications (Novu stand-in, fast-forward and reset):  http://{host}:{port + 5}/\n"
        f"  Gateway:  http://{host}:{port}  (/healthz, /readyz, /metrics)\n"
        f"  Cal.com stand-in:  http://{host}:{port + 2}  (bookings: /_sandbox/bookings)\n"
        f"  Analytics:  {where}\n"
        f"{_second_lines(second, analytics)}"
        f"{_report_lines(report, host, port)}"
        f"  Redis:    {redis}\n"
        "Press Ctrl+C to stop.\n"
    )


def _report_lines(report: str | None, host: str, port: int) -> str:
    if report is None:
        return ""
    return (
        f"  Metabase stand-in (the dashboard the owner's report links to):  "
        f"http://{host}:{port + METABASE_OFFSET}\n"
        "  The owner's weekly report of this session, from another shell (it shows on the\n"
        "  Novu pane; a second run sends nothing):\n"
        f"    {report}\n"
    )


def _second_lines(second: SecondSalon | None, analytics: bool) -> str:
    if second is None:
        why = (
            "the demo writes no salon into a database it was given"
            if analytics
            else "no PostgreSQL for the salon registry"
        )
        return f"  Second salon:  off: {why} (the demo runs one salon)\n"
    return (
        f"  Second salon ({second.id}, Russian, served from the salon registry):\n"
        f'    its Telegram chat: the pane "{second.pane[0]}" on the page, or alone at\n'
        f"    {second.telegram_url}/   (Cal.com stand-in: {second.calendar_url})\n"
    )
