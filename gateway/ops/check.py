"""`frontdesk check` and `frontdesk webhooks`: what the operator runs after configuring."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from redis.exceptions import RedisError

from gateway.analytics.store import migrations
from gateway.integrations.calcom.api import CalcomClient, CalcomError
from gateway.integrations.calcom.catalogue import services_of
from gateway.integrations.calcom.factory import calcom_client
from gateway.integrations.novu.api import NovuRejected, NovuUnavailable
from gateway.integrations.novu.factory import novu_client
from gateway.integrations.novu.workflows import all_definitions, differs
from gateway.integrations.telegram.factory import telegram_bot
from gateway.ops.report_check import report_lines
from gateway.ops.salon_choice import Refused, is_environment, registry_salon
from gateway.pipeline.logs import Scrubber, scrubbed_output
from gateway.pipeline.redis_client import connect_redis
from gateway.pipeline.resilience import command_breaker
from gateway.salon_settings import (
    CalcomSettings,
    ChatwootSettings,
    MetabaseSettings,
    NovuSettings,
    SalonProfile,
    TelegramSettings,
    WhatsAppSettings,
)
from gateway.settings import AnalyticsSettings, Settings, SettingsError
from gateway.wiring.routes import webhook_url
from handlers.calcom import TRIGGERS as CALCOM_TRIGGERS
from handlers.telegram import ALLOWED_UPDATES

TIMEOUT = 10.0


def _line(name: str, ok: bool | None, detail: str) -> str:
    mark = {True: "ok  ", False: "FAIL", None: "off "}[ok]
    return f"[{mark}] {name:<9} {detail}"


async def run_check(settings: Settings, salon_id: str | None = None) -> int:
    """Reach every configured service; exit 1 when any configured one does not work.
    `salon_id` names a registry salon in `settings.salon` (its own webhook URLs), None the
    environment's."""

    def url(source: str) -> str | None:
        public = settings.public_url
        return webhook_url(public, source, salon_id) if public is not None else None

    failed = False
    if settings.redis_url is None:
        print(_line("redis", False, "REDIS_URL is not set"))
        failed = True
    else:
        redis = connect_redis(settings.redis_url)
        try:
            await asyncio.wait_for(redis.ping(), TIMEOUT)  # type: ignore[arg-type]
            print(_line("redis", True, "reachable"))
        except (RedisError, OSError, TimeoutError) as exc:
            print(_line("redis", False, f"unreachable ({type(exc).__name__})"))
            failed = True
        finally:
            await redis.aclose()

    salon = settings.salon
    for name, configured in settings.services().items():
        if not configured:
            print(_line(name, None, "not configured"))
        elif name == "telegram" and salon.telegram is not None:
            failed |= not await _check_telegram(salon.telegram, url("telegram"))
        elif name == "calcom" and salon.calcom is not None:
            failed |= not await _check_calcom(salon.calcom, salon.profile.currency)
        elif name == "whatsapp" and salon.whatsapp is not None:
            failed |= not await _check_whatsapp(salon.whatsapp)
        elif name == "chatwoot" and salon.chatwoot is not None:
            failed |= not await _check_chatwoot(salon.chatwoot)
            for line in routing_lines(salon.chatwoot, salon.profile):
                print(_line("chatwoot", True, line))
        elif name == "novu" and salon.novu is not None:
            failed |= not await _check_novu(salon.novu, url("novu"))
        elif name == "analytics" and settings.analytics is not None:
            failed |= not await _check_analytics(settings.analytics)
        elif salon.metabase is not None:
            failed |= not await _check_metabase(salon.metabase)
    for ok, detail in report_lines(settings, datetime.now(UTC)):
        print(_line("report", ok, detail))
        failed |= ok is False
    return 1 if failed else 0


async def check_salon(settings: Settings, salon_id: str | None) -> int:
    """`frontdesk check [--salon ID]`: the environment's salon, or a registry salon with its
    own settings (read from the registry, secrets decrypted) and webhook URLs."""
    if is_environment(settings, salon_id):
        return await run_check(settings)
    assert salon_id is not None
    try:
        salon = await registry_salon(settings, salon_id, decrypt=True)
    except Refused as refused:
        return refused.report()
    if salon is None:
        return Refused(f"no salon {salon_id} (see `frontdesk salons list`)", 1).report()
    try:
        salon_settings = salon.settings()
    except SettingsError as exc:
        print(f"frontdesk: salon {salon_id}'s values have problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if not salon.enabled:
        print(f"salon {salon_id} is disabled: its webhooks are refused until it is enabled")
    # The command's output is scrubbed of the environment's secrets; these are the salon's.
    with scrubbed_output(Scrubber([*settings.secrets(), *salon_settings.secrets()])):
        return await run_check(settings.model_copy(update={"salon": salon_settings}), salon_id)


def _bot(telegram: TelegramSettings) -> Bot:
    return telegram_bot(telegram, TIMEOUT)


async def _check_telegram(telegram: TelegramSettings, expected: str | None) -> bool:
    bot = _bot(telegram)
    try:
        me = await asyncio.wait_for(bot.get_me(), TIMEOUT)
        info = await asyncio.wait_for(bot.get_webhook_info(), TIMEOUT)
    except (TelegramAPIError, TelegramNetworkError, TimeoutError) as exc:
        print(_line("telegram", False, f"Bot API refused or unreachable: {exc}"))
        return False
    finally:
        await bot.session.close()
    detail = f"@{me.username}; webhook {info.url or 'not set'}"
    if info.pending_update_count:
        detail += f"; {info.pending_update_count} updates waiting"
    if info.last_error_message:
        detail += f"; last delivery error: {info.last_error_message}"
    ok = expected is None or info.url == expected
    if not ok:
        detail += f" (expected {expected}: run `frontdesk webhooks set`)"
    print(_line("telegram", ok, detail))
    return ok


def _calcom_client(calcom: CalcomSettings) -> CalcomClient:
    """A client for one command: its own breaker, the commands' short timeout."""
    return calcom_client(calcom, command_breaker, TIMEOUT)


async def _check_calcom(calcom: CalcomSettings, currency: str | None) -> bool:
    client = _calcom_client(calcom)
    try:
        services = services_of(await client.event_types(team_id=calcom.team_id), currency)
    except CalcomError as exc:
        print(_line("calcom", False, f"Cal.com refused or unreachable: {exc}"))
        return False
    finally:
        await client.aclose()
    where = f"team {calcom.team_id}" if calcom.team_id else "the key's owner"
    if not services:
        print(_line("calcom", False, f"no visible event types for {where}: nothing to book"))
        return False
    print(_line("calcom", True, f"{len(services)} services of {where}"))
    return True


async def _check_novu(novu: NovuSettings, expected: str | None) -> bool:
    """The key works, and the workflows `frontdesk novu sync` makes are there and current."""
    webhook = expected or "PUBLIC_URL/webhooks/novu"
    async with novu_client(novu, command_breaker, TIMEOUT) as client:
        try:
            found = {
                w["workflowId"]: await client.workflow(w["workflowId"])
                for w in all_definitions(webhook)
            }
        except (NovuRejected, NovuUnavailable) as exc:
            print(_line("novu", False, f"Novu refused or unreachable: {exc}"))
            return False
    missing = [name for name, workflow in found.items() if workflow is None]
    wanted = {w["workflowId"]: w for w in all_definitions(webhook)}
    stale = [
        name
        for name, workflow in found.items()
        if workflow is not None and differs(workflow, wanted[name])
    ]
    if missing or stale:
        detail = ", ".join([*(f"{n} missing" for n in missing), *(f"{n} differs" for n in stale)])
        print(_line("novu", False, f"{detail}: run `frontdesk novu sync`"))
        return False
    print(_line("novu", True, f"{len(found)} workflows in place"))
    return True


async def _check_analytics(analytics: AnalyticsSettings) -> bool:
    """PostgreSQL answers, and the schema is the one this version writes."""
    try:
        connection = await asyncpg.connect(
            analytics.database_url.get_secret_value(), timeout=TIMEOUT
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(_line("analytics", False, f"PostgreSQL unreachable: {type(exc).__name__}"))
        return False
    try:
        applied = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM schema_migrations")
        }
    except asyncpg.UndefinedTableError:
        applied = set()
    finally:
        await connection.close()
    missing = [f"{v:04d}_{n}" for v, n, _ in migrations() if v not in applied]
    if missing:
        detail = f"schema not up to date ({', '.join(missing)}): run `frontdesk analytics migrate`"
        print(_line("analytics", False, detail))
        return False
    print(_line("analytics", True, "PostgreSQL reachable, schema up to date"))
    return True


async def _check_metabase(metabase: MetabaseSettings) -> bool:
    status, _ = await _get(f"{metabase.site_url}/api/health", {})
    if status != 200:
        print(_line("metabase", False, f"{metabase.site_url} does not answer"))
        return False
    if metabase.secret_key is None or metabase.dashboard_id is None:
        detail = "reachable; set METABASE_SECRET_KEY and METABASE_DASHBOARD_ID to embed"
        print(_line("metabase", False, detail))
        return False
    print(_line("metabase", True, f"reachable; dashboard {metabase.dashboard_id}"))
    return True


async def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    return await _request("GET", url, headers)


async def _request(
    method: str, url: str, headers: dict[str, str], body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """The answer's status (0 when unreachable) and JSON object."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        try:
            response = await http.request(method, url, headers=headers, json=body)
        except httpx.HTTPError as exc:
            return 0, {"error": type(exc).__name__}
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


async def _check_whatsapp(whatsapp: WhatsAppSettings) -> bool:
    token = whatsapp.access_token.get_secret_value()
    url = f"{whatsapp.api_url}/{whatsapp.phone_number_id}"
    status, body = await _get(url, {"Authorization": f"Bearer {token}"})
    if status != 200:
        error = (body.get("error") or {}).get("message") or body.get("error") or f"HTTP {status}"
        print(_line("whatsapp", False, f"Cloud API refused or unreachable: {error}"))
        return False
    name = body.get("verified_name") or "?"
    print(_line("whatsapp", True, f"{body.get('display_phone_number', '?')} ({name})"))
    return True


async def _check_chatwoot(chatwoot: ChatwootSettings) -> bool:
    base = f"{chatwoot.url}/api/v1/accounts/{chatwoot.account_id}"
    headers = {"api_access_token": chatwoot.api_token.get_secret_value()}
    found = []
    for channel, inbox in chatwoot.inboxes().items():
        status, body = await _get(f"{base}/inboxes/{inbox}", headers)
        if status != 200:
            print(_line("chatwoot", False, f"inbox {inbox} ({channel}): HTTP {status or 'down'}"))
            return False
        found.append(f"{channel} → {body.get('name', inbox)}")
    handoff = await _chatwoot_handoff(chatwoot, headers)
    if handoff is None:
        return False
    print(_line("chatwoot", True, "; ".join([*found, handoff])))
    return True


def routing_lines(chatwoot: ChatwootSettings, profile: SalonProfile) -> list[str]:
    """How handoffs are routed: each rule in order (the first that takes a handoff wins), the
    default, and the working hours that tell "in" from "out"."""
    lines = [f"routing {n}. {rule.describe()}" for n, rule in enumerate(chatwoot.routing, 1)]
    default = [f"team {chatwoot.team_id}"] if chatwoot.team_id is not None else []
    if chatwoot.assignee_id is not None:
        default.append(f"agent {chatwoot.assignee_id}")
    if chatwoot.labels:
        default.append(f"labels {','.join(chatwoot.labels)}")
    lines.append(f"routing otherwise → {', '.join(default) or 'the inbox as it is'}")
    schedule = profile.schedule
    if schedule is None:
        lines.append("working hours: not set (SALON_WORKING_HOURS): every handoff is in hours")
    else:
        label = chatwoot.after_hours_label or "no label"
        zone = profile.timezone
        lines.append(f"working hours: {schedule.describe()} ({zone}); outside them: {label}")
    return lines


async def _chatwoot_handoff(chatwoot: ChatwootSettings, headers: dict[str, str]) -> str | None:
    """How a handoff lands in staff's queue with these tokens (None: it cannot, said why).

    Chatwoot assigns a conversation to the user who opens it when they have the agent role
    (conversations_controller#toggle_status); the token's role in the account comes from its
    profile (GET /api/v1/profile, `accounts[].role`). An agent bot's token is refused there,
    so it is tried on a conversation that cannot exist: 404 means the token reaches the
    account, 401 that it does not."""
    status, profile = await _get(f"{chatwoot.url}/api/v1/profile", headers)
    roles = {int(a.get("id") or 0): a.get("role") for a in profile.get("accounts") or []}
    role = roles.get(chatwoot.account_id)
    if status != 200 or role is None:
        why = f"HTTP {status or 'down'}" if status != 200 else "not a member of the account"
        print(_line("chatwoot", False, f"the API token's profile: {why}"))
        return None
    if chatwoot.bot_token is not None:
        bot = {"api_access_token": chatwoot.bot_token.get_secret_value()}
        base = f"{chatwoot.url}/api/v1/accounts/{chatwoot.account_id}"
        probe, _ = await _request(
            "POST", f"{base}/conversations/0/toggle_status", bot, {"status": "open"}
        )
        if probe != 404:
            detail = f"CHATWOOT_BOT_TOKEN refused for the account: HTTP {probe or 'down'}"
            print(_line("chatwoot", False, detail))
            return None
        return f"token role {role}; handoffs by the agent bot (Chatwoot's bot handoff)"
    if role == "agent":
        return (
            "token role agent: Chatwoot assigns what it opens to that user, so Frontdesk "
            "puts each handoff back in staff's queue (set CHATWOOT_BOT_TOKEN to use "
            "Chatwoot's bot handoff instead)"
        )
    return f"token role {role}: handoffs are not assigned to it"


async def set_webhooks(settings: Settings, drop_pending: bool) -> int:
    """Register the gateway's URLs with Telegram and Cal.com (each when configured)."""
    telegram, calcom = settings.salon.telegram, settings.salon.calcom
    if telegram is None and calcom is None:
        print("Neither Telegram nor Cal.com is configured; nothing to register.")
        return 0
    if settings.public_url is None:
        print("PUBLIC_URL is required to register webhooks.")
        return 2
    codes = []
    if telegram is not None:
        codes.append(await _set_telegram_webhook(telegram, settings.public_url, drop_pending))
    if calcom is not None:
        codes.append(await _set_calcom_webhook(calcom, settings.public_url))
    return max(codes)


async def _set_calcom_webhook(calcom: CalcomSettings, public_url: str) -> int:
    """Cal.com's webhook to PUBLIC_URL/webhooks/calcom for the triggers Frontdesk handles,
    signed with CALCOM_WEBHOOK_SECRET; running it again changes nothing (`ensure_webhook`)."""
    if calcom.webhook_secret is None:
        print(
            "CALCOM_WEBHOOK_SECRET is required to register Cal.com's webhook "
            "(unsigned deliveries are refused)."
        )
        return 2
    url = webhook_url(public_url, "calcom")
    client = _calcom_client(calcom)
    try:
        done, _ = await client.ensure_webhook(
            url, sorted(CALCOM_TRIGGERS), calcom.webhook_secret.get_secret_value()
        )
    except CalcomError as exc:
        print(f"Cal.com refused the webhook: {exc}")
        return 1
    finally:
        await client.aclose()
    print(f"Cal.com webhook to {url}: {done} (triggers: {', '.join(sorted(CALCOM_TRIGGERS))})")
    return 0


async def _set_telegram_webhook(
    telegram: TelegramSettings, public_url: str, drop_pending: bool
) -> int:
    url = webhook_url(public_url, "telegram")
    try:
        await register_telegram_webhook(telegram, url, drop_pending)
    except (TelegramAPIError, TelegramNetworkError) as exc:
        print(f"Telegram refused the webhook: {exc}")
        return 1
    print(f"Telegram webhook set to {url} (updates: {', '.join(ALLOWED_UPDATES)})")
    return 0


async def register_telegram_webhook(
    telegram: TelegramSettings, url: str, drop_pending: bool = False
) -> None:
    """setWebhook to `url` with the secret token and the updates the gateway reads; raises
    aiogram's errors when Telegram refuses or cannot be reached."""
    bot = _bot(telegram)
    try:
        await bot.set_webhook(
            url,
            secret_token=telegram.webhook_secret.get_secret_value(),
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=drop_pending,
        )
    finally:
        await bot.session.close()


async def show_webhooks(settings: Settings) -> int:
    if settings.salon.telegram is None:
        print("Telegram is not configured.")
        return 0
    public = settings.public_url
    expected = webhook_url(public, "telegram") if public is not None else None
    return 0 if await _check_telegram(settings.salon.telegram, expected) else 1
