"""The provider-side steps of `frontdesk setup`: each reads what the provider has, says what it
would change (nothing: in place), and changes it when asked.

A step reads before it writes, so a second run writes nothing. The Chatwoot inboxes have their
own module (`setup_chatwoot`); this one holds Telegram, Cal.com, Novu and Metabase, each reusing
what its own command does (`frontdesk webhooks set`, `novu sync`, `metabase sync`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from gateway.analytics import store as analytics_store
from gateway.integrations.calcom.api import CalcomError
from gateway.integrations.calcom.factory import calcom_client
from gateway.integrations.metabase.api import MetabaseClient, MetabaseError
from gateway.integrations.metabase.api import sync as metabase_sync
from gateway.integrations.novu.api import NovuRejected, NovuUnavailable
from gateway.integrations.novu.factory import novu_client
from gateway.integrations.novu.workflows import all_definitions, differs
from gateway.integrations.novu.workflows import sync as novu_sync
from gateway.integrations.telegram.factory import telegram_bot
from gateway.ops.check import register_telegram_webhook
from gateway.pipeline.resilience import command_breaker
from gateway.salon_settings import (
    CalcomSettings,
    MetabaseSettings,
    NovuSettings,
    SalonSettings,
    TelegramSettings,
)
from gateway.wiring.routes import webhook_url
from handlers.calcom import TRIGGERS as CALCOM_TRIGGERS
from handlers.telegram import ALLOWED_UPDATES

TIMEOUT = 10.0


class StepFailed(Exception):
    """A provider refused, could not be reached, or a setting the step needs is missing."""


@dataclass
class Target:
    """The salon being set up: its settings, its id in the registry (None: the environment's
    salon), the gateway's public URL, and the values setup found for it (inbox ids, the
    dashboard) that the salon's settings do not say yet."""

    salon: SalonSettings
    salon_id: str | None
    public_url: str
    analytics_url: str | None = None
    found: dict[str, str] = field(default_factory=dict)

    def url(self, source: str) -> str:
        return webhook_url(self.public_url, source, self.salon_id)


@dataclass
class Step:
    """`inspect` says what would change (None: in place) and writes nothing; `apply` makes the
    change and says what it did. A step that cannot compare without writing (Metabase's sync
    is one idempotent pass) has no `inspect`: it is compared when it runs."""

    name: str
    apply: Callable[[], Awaitable[str | None]]
    inspect: Callable[[], Awaitable[str | None]] | None = None


# --- Telegram -------------------------------------------------------------------------------


def telegram_step(telegram: TelegramSettings, target: Target) -> Step:
    url = target.url("telegram")

    async def inspect() -> str | None:
        # getWebhookInfo shows the URL and the allowed updates, never the secret token
        # (Bot API, WebhookInfo): a rotated TELEGRAM_WEBHOOK_SECRET needs `webhooks set`.
        bot = telegram_bot(telegram, TIMEOUT)
        try:
            info = await bot.get_webhook_info()
        except (TelegramAPIError, TelegramNetworkError) as exc:
            raise StepFailed(f"Bot API refused or unreachable: {exc}") from None
        finally:
            await bot.session.close()
        if info.url == url and sorted(info.allowed_updates or ()) == sorted(ALLOWED_UPDATES):
            return None
        return f"setWebhook {url} (updates: {', '.join(ALLOWED_UPDATES)}; was {info.url or 'none'})"

    async def apply() -> str:
        try:
            await register_telegram_webhook(telegram, url)
        except (TelegramAPIError, TelegramNetworkError) as exc:
            raise StepFailed(f"Telegram refused the webhook: {exc}") from None
        return f"webhook set to {url}"

    return Step("telegram webhook", apply, inspect)


# --- Cal.com --------------------------------------------------------------------------------


def calcom_step(calcom: CalcomSettings, target: Target) -> Step:
    url = target.url("calcom")
    triggers = sorted(CALCOM_TRIGGERS)

    def secret() -> str:
        if calcom.webhook_secret is None:
            raise StepFailed("CALCOM_WEBHOOK_SECRET is not set (unsigned deliveries are refused)")
        return calcom.webhook_secret.get_secret_value()

    async def inspect() -> str | None:
        client = calcom_client(calcom, command_breaker, TIMEOUT)
        try:
            existing, changes = await client.webhook_changes(url, triggers, secret())
        except CalcomError as exc:
            raise StepFailed(f"Cal.com refused or unreachable: {exc}") from None
        finally:
            await client.aclose()
        if existing is None:
            return f"create the webhook to {url} (triggers: {', '.join(triggers)})"
        return f"update the webhook to {url}: {', '.join(changes)}" if changes else None

    async def apply() -> str:
        client = calcom_client(calcom, command_breaker, TIMEOUT)
        try:
            done, _ = await client.ensure_webhook(url, triggers, secret())
        except CalcomError as exc:
            raise StepFailed(f"Cal.com refused the webhook: {exc}") from None
        finally:
            await client.aclose()
        return f"webhook to {url}: {done}"

    return Step("calcom webhook", apply, inspect)


# --- Novu -----------------------------------------------------------------------------------


def novu_step(novu: NovuSettings, target: Target) -> Step:
    url = target.url("novu")

    async def inspect() -> str | None:
        async with novu_client(novu, command_breaker, TIMEOUT) as client:
            try:
                wanted = all_definitions(url)
                found = {w["workflowId"]: await client.workflow(w["workflowId"]) for w in wanted}
            except (NovuRejected, NovuUnavailable) as exc:
                raise StepFailed(f"Novu refused or unreachable: {exc}") from None
        todo = [
            f"{w['workflowId']} {'missing' if found[w['workflowId']] is None else 'differs'}"
            for w in wanted
            if (current := found[w["workflowId"]]) is None or differs(current, w)
        ]
        return f"workflows: {', '.join(todo)}" if todo else None

    async def apply() -> str:
        async with novu_client(novu, command_breaker, TIMEOUT) as client:
            try:
                done = await novu_sync(client, url)
            except (NovuRejected, NovuUnavailable) as exc:
                raise StepFailed(f"Novu refused or unreachable: {exc}") from None
        changed = [f"{workflow} {what}" for workflow, what in done if what != "unchanged"]
        return f"workflows: {', '.join(changed) or 'none changed'}"

    return Step("novu workflows", apply, inspect)


# --- Analytics ------------------------------------------------------------------------------


def analytics_step(database_url: str) -> Step:
    """The analytics schema (`frontdesk analytics migrate`): Metabase's questions read it."""

    async def connect() -> asyncpg.Connection:
        try:
            return await asyncpg.connect(database_url, timeout=TIMEOUT)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StepFailed(f"PostgreSQL unreachable: {type(exc).__name__}") from None

    async def inspect() -> str | None:
        connection = await connect()
        try:
            applied = {r["version"] for r in await connection.fetch(_APPLIED)}
        except asyncpg.UndefinedTableError:
            applied = set()
        finally:
            await connection.close()
        missing = [f"{v:04d}_{n}" for v, n, _ in analytics_store.migrations() if v not in applied]
        return f"migrate: {', '.join(missing)}" if missing else None

    async def apply() -> str:
        connection = await connect()
        try:
            return f"applied {', '.join(await analytics_store.migrate(connection)) or 'nothing'}"
        finally:
            await connection.close()

    return Step("analytics schema", apply, inspect)


_APPLIED = "SELECT version FROM schema_migrations"


# --- Metabase -------------------------------------------------------------------------------


def metabase_step(metabase: MetabaseSettings, target: Target, database_url: str) -> Step:
    async def apply() -> str | None:
        api_key = metabase.api_key.get_secret_value() if metabase.api_key else None
        password = metabase.password.get_secret_value() if metabase.password else None
        if api_key is None and (metabase.user is None or password is None):
            raise StepFailed("needs METABASE_API_KEY, or METABASE_USER and METABASE_PASSWORD")
        try:
            async with MetabaseClient(
                metabase.site_url, api_key=api_key, user=metabase.user, password=password
            ) as client:
                done = await metabase_sync(client, database_url, analytics_store.questions())
                changes = list(client.writes)
        except (MetabaseError, httpx.HTTPError) as exc:
            raise StepFailed(f"Metabase refused or is unreachable: {exc}") from None
        if metabase.dashboard_id != done["dashboard"]:
            target.found["METABASE_DASHBOARD_ID"] = str(done["dashboard"])
        if not changes:
            return None
        cards = len(done["cards"])
        return f"dashboard {done['dashboard']}, {cards} questions ({len(changes)} writes)"

    return Step("metabase dashboard", apply)
