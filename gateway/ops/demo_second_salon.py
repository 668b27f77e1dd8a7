"""The demo's second salon: a Russian-speaking salon beside the first, with its own Telegram bot
(a second Telegram stand-in: one stand-in plays one bot token, as a token is one bot's, Bot API
docs, core.telegram.org/bots/api#authorizing-your-bot) and its own Cal.com stand-in, seeded
with its own masters and services.

It is served the way an operator serves many salons: from the salon registry (`gateway/salons`),
which the gateway follows while it runs, on `/webhooks/<source>/<salon>`. The registry needs
PostgreSQL, so the second salon is shown only when the demo has one (the demo's own database,
`frontdesk_demo`, where its analytics are kept); without it the demo runs its one salon, as the
README promises ("the demo needs no database"), and its banner says so. The registry's secrets
key is made afresh each run: the demo's salon row is written anew at start and removed at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field

from aiohttp import ClientSession, web
from cryptography.fernet import Fernet
from pydantic import SecretStr

from gateway.salons import NoSuchSalon, SalonRegistry, SecretCipher
from gateway.sandbox.calcom import CalcomSandbox
from gateway.sandbox.calcom.demo_salons import SECOND
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import Settings
from gateway.wiring.served import ServedSalons

log = logging.getLogger("frontdesk.demo")

SECOND_ID = "belaya-siren"
# Not secrets: the second salon's stand-ins accept them and nothing else does.
SECOND_TOKEN = "654321:frontdesk-demo-second-sandbox-token"  # noqa: S105 - the sandbox's only
SECOND_CALCOM_KEY = "cal_demo_second_sandbox_key"
# How the page's switch names the second salon's chat.
SECOND_PANE = "Белая сирень (Telegram)"
# The salon's own details, under the registry's names (those of the environment).
SECOND_VALUES = {
    "SALON_NAME": "Салон «Белая сирень»",
    "SALON_TIMEZONE": "Europe/Moscow",
    "SALON_CURRENCY": "RUB",
    "DEFAULT_LOCALE": "ru",
    "SALON_ADDRESS": "28 Nevsky Prospekt, Saint Petersburg",
    "SALON_ADDRESS_RU": SECOND.address,
    "SALON_PHONE": "+7 812 555-01-28",
    "SALON_HOURS": "Mon–Sat 10:00–20:00",
    "SALON_HOURS_RU": "Пн–Сб 10:00–20:00",
}
# How long the demo waits for the gateway to serve the salon it registered (the gateway reads
# the registry as it starts; the re-read every 5 s is the safety net).
LIVE_WITHIN_SECONDS = 20.0


def with_registry(settings: Settings, demo_database: str) -> Settings | None:
    """The settings with the registry on the demo's own database, when the demo's analytics
    are there and the operator named no registry of their own; None otherwise (one salon)."""
    analytics = settings.analytics
    if settings.database_url is not None or analytics is None:
        return None
    url = analytics.database_url.get_secret_value()
    if not url.endswith(f"/{demo_database}"):
        # The operator's analytics database: the demo writes no salon into it.
        return None
    key = Fernet.generate_key().decode()
    return settings.model_copy(
        update={"database_url": SecretStr(url), "secrets_key": SecretStr(key)}
    )


@dataclass
class SecondSalon:
    """The second salon's stand-ins (Telegram on `port + 7`, Cal.com on `port + 8`) and its
    registry entry."""

    id: str
    telegram: TelegramSandbox
    calendar: CalcomSandbox
    telegram_url: str
    calendar_url: str
    webhook_secret: str
    runners: list[web.AppRunner] = field(default_factory=list)

    @property
    def pane(self) -> tuple[str, str]:
        return SECOND_PANE, f"{self.telegram_url}/"

    async def go_live(self, served: ServedSalons, gateway: str) -> None:
        """Once the gateway serves the salon, point its bot's webhook at the salon's path, as
        `frontdesk salons setup` does with Telegram."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LIVE_WITHIN_SECONDS
        while self.id not in served.live:
            if loop.time() > deadline:
                raise RuntimeError(f"the gateway did not serve salon {self.id} from the registry")
            await asyncio.sleep(0.1)
        async with (
            ClientSession() as http,
            http.post(
                f"{self.telegram_url}/bot{SECOND_TOKEN}/setWebhook",
                json={
                    "url": f"{gateway}/webhooks/telegram/{self.id}",
                    "secret_token": self.webhook_secret,
                },
            ) as response,
        ):
            response.raise_for_status()

    async def cleanup(self, settings: Settings) -> None:
        for runner in self.runners:
            await runner.cleanup()
        await self.calendar.close()
        await _forget(settings, self.id)


async def serve_second_salon(
    settings: Settings, host: str, port: int, analytics_salt: str, salon_id: str = SECOND_ID
) -> SecondSalon:
    """Serve the second salon's stand-ins and write the salon into the registry (its clients
    hashed in the analytics with `analytics_salt`, as the first salon's)."""
    zone = SECOND_VALUES["SALON_TIMEZONE"]
    gateway = f"http://{host}:{port}"
    calcom_secret = secrets.token_urlsafe(24)
    calendar = CalcomSandbox(
        SECOND_CALCOM_KEY,
        webhook_url=f"{gateway}/webhooks/calcom/{salon_id}",
        webhook_secret=calcom_secret,
    )
    team_id = calendar.seed_demo_salon(zone=zone, salon=SECOND)
    telegram = TelegramSandbox(
        SECOND_TOKEN, bookings=calendar.bookings_json, calendar_zone=zone, client_language="ru"
    )
    second = SecondSalon(
        salon_id,
        telegram,
        calendar,
        f"http://{host}:{port + 7}",
        f"http://{host}:{port + 8}",
        secrets.token_urlsafe(24),
    )
    try:
        second.runners.append(await telegram.serve(host, port + 7))
        second.runners.append(await calendar.serve(host, port + 8))
        values = {
            **SECOND_VALUES,
            "TELEGRAM_BOT_TOKEN": SECOND_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": second.webhook_secret,
            "TELEGRAM_API_URL": second.telegram_url,
            "CALCOM_API_URL": second.calendar_url,
            "CALCOM_API_KEY": SECOND_CALCOM_KEY,
            "CALCOM_WEBHOOK_SECRET": calcom_secret,
            "CALCOM_TEAM_ID": str(team_id),
            "ANALYTICS_SALT": analytics_salt,
        }
        registry = await _registry(settings)
        try:
            # Written anew: an earlier run's row is sealed with a key this run does not have.
            await _remove(registry, salon_id)
            await registry.add(salon_id, values)
        finally:
            await registry.close()
    except BaseException:
        for runner in second.runners:
            await runner.cleanup()
        await calendar.close()
        raise
    log.info("the demo's second salon %s is in the registry", salon_id)
    return second


async def _registry(settings: Settings) -> SalonRegistry:
    assert settings.database_url is not None
    assert settings.secrets_key is not None
    cipher = SecretCipher(settings.secrets_key.get_secret_value())
    return await SalonRegistry.open(settings.database_url.get_secret_value(), cipher)


async def _remove(registry: SalonRegistry, salon_id: str) -> None:
    with contextlib.suppress(NoSuchSalon):
        await registry.remove(salon_id)


async def _forget(settings: Settings, salon_id: str) -> None:
    registry = await _registry(settings)
    try:
        await _remove(registry, salon_id)
    finally:
        await registry.close()
