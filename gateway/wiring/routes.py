"""A salon's webhook routes, built from its settings, and the URL convention they answer on.

The environment's salon keeps today's paths (`/webhooks/<source>`); every salon the gateway
serves, the environment's included, also answers on `/webhooks/<source>/<salon>`
(`webhook_url`), which is what `frontdesk salons setup` registers with the providers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.pipeline.edge import EdgeLimits, WebhookRoute, WebhookSource, webhook_route
from gateway.salon_settings import ChatwootSettings, WhatsAppSettings
from gateway.wiring.runtime import Runtime
from handlers.calcom import CalcomWebhook
from handlers.chatwoot import ChatwootWebhook
from handlers.novu import NovuWebhook
from handlers.telegram import TelegramWebhook
from handlers.whatsapp import WhatsAppWebhook, verify_challenge

log = logging.getLogger("frontdesk.app")

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
TokenRoute = Callable[[web.Request, str], Awaitable[web.StreamResponse]]

# The sources that post webhooks, as they appear in the paths.
SOURCES = ("telegram", "whatsapp", "chatwoot", "calcom", "novu")


def webhook_url(public_url: str, source: str, salon_id: str | None = None) -> str:
    """Where `source` posts a salon's webhooks: `{PUBLIC_URL}/webhooks/<source>/<salon>`, or
    `{PUBLIC_URL}/webhooks/<source>` for the environment's salon (`salon_id` None: the routes
    of the single-salon gateway). One convention for the routes here, `frontdesk setup` and
    `frontdesk check`, which register and compare them.
    """
    if source not in SOURCES:
        raise ValueError(f"no webhooks from {source!r}")
    base = f"{public_url.rstrip('/')}/webhooks/{source}"
    return base if salon_id is None else f"{base}/{salon_id}"


@dataclass
class SalonRoutes:
    """One salon's webhook handlers: a POST route per configured source, WhatsApp's GET
    handshake, and Chatwoot's route for versions that sign nothing (the secret in the URL)."""

    webhooks: dict[str, Route] = field(default_factory=dict)
    handshake: Route | None = None
    chatwoot_by_token: TokenRoute | None = None
    # The WhatsApp number the salon answers for (`metadata.phone_number_id`), and its route's
    # steps, for the route shared by every salon's number (`gateway.wiring.whatsapp_numbers`).
    whatsapp_number: str | None = None
    whatsapp: WebhookRoute | None = None


def salon_routes(runtime: Runtime, limits: EdgeLimits, slots: asyncio.Semaphore) -> SalonRoutes:
    """A webhook route for each source the salon has configured, checked with its secrets and
    queued into its own streams. `slots` is the process's bound on unauthenticated reads."""
    salon = runtime.settings.salon

    def webhook(source: WebhookSource) -> Route:
        return webhook_route(source, runtime.inbox, runtime.metrics, limits, slots)

    routes = SalonRoutes()
    if salon.telegram is not None:
        secret = salon.telegram.webhook_secret.get_secret_value()
        routes.webhooks["telegram"] = webhook(TelegramWebhook(secret))
    if salon.whatsapp is not None:
        whatsapp = WhatsAppWebhook(
            salon.whatsapp.app_secret.get_secret_value(),
            salon.whatsapp.phone_number_id,
            runtime.metrics,
        )
        routes.whatsapp = WebhookRoute(whatsapp, runtime.inbox, runtime.metrics, limits, slots)
        routes.webhooks["whatsapp"] = routes.whatsapp.handle
        routes.handshake = _handshake(salon.whatsapp)
        routes.whatsapp_number = salon.whatsapp.phone_number_id
    if salon.chatwoot is not None:
        _chatwoot_routes(routes, runtime, salon.chatwoot, webhook)
    if salon.calcom is not None and salon.calcom.webhook_secret is not None:
        secret = salon.calcom.webhook_secret.get_secret_value()
        routes.webhooks["calcom"] = webhook(CalcomWebhook(secret))
    if salon.novu is not None:
        routes.webhooks["novu"] = webhook(NovuWebhook(salon.novu.signing_key))
    return routes


def _chatwoot_routes(
    routes: SalonRoutes,
    runtime: Runtime,
    chatwoot: ChatwootSettings,
    webhook: Callable[[WebhookSource], Route],
) -> None:
    if chatwoot.webhook_secret is not None:
        routes.webhooks["chatwoot"] = webhook(ChatwootWebhook(chatwoot.webhook_secrets()))
    if chatwoot.webhook_token is not None:
        token = chatwoot.webhook_token.get_secret_value()
        unsigned = webhook(ChatwootWebhook([], signed=False))

        async def by_token(request: web.Request, given: str) -> web.StreamResponse:
            # Chatwoot before 4.13 signs nothing: the secret is the URL's last part.
            if not hmac.compare_digest(given.encode(), token.encode()):
                runtime.metrics.webhooks.labels("chatwoot", "unauthorized").inc()
                return web.json_response({"error": "unauthorized"}, status=401)
            return await unsigned(request)

        routes.chatwoot_by_token = by_token


def _handshake(whatsapp: WhatsAppSettings) -> Route:
    verify_token = whatsapp.verify_token.get_secret_value()

    async def whatsapp_handshake(request: web.Request) -> web.Response:
        """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
        challenge = verify_challenge(request.query, verify_token)
        if challenge is None:
            log.warning("WhatsApp verification refused: wrong verify token or mode")
            return web.Response(status=403, text="forbidden")
        return web.Response(text=challenge, content_type="text/plain")

    return whatsapp_handshake


def add_environment_routes(app: web.Application, routes: SalonRoutes) -> None:
    """Today's paths, for the environment's salon (its Chatwoot token route is served by
    `add_salon_routes`, whose `/webhooks/chatwoot/{salon}` has the same shape, and WhatsApp's
    by `add_whatsapp_routes`, which every salon's number shares)."""
    for source, route in routes.webhooks.items():
        # WhatsApp's is shared by every salon's number: `gateway.wiring.whatsapp_numbers`.
        if source != "whatsapp":
            app.router.add_post(f"/webhooks/{source}", route)
