"""The routes that serve many salons: `/webhooks/<source>/<salon>`, looked up among the salons
served now (`ServedSalons.live`) on every request, so that a registry change takes effect on
the next request without touching the router.

A salon the gateway does not serve is answered before its body is read, and nothing of it is
queued or touched (no Redis call): 410 Gone when the registry holds it disabled, 404 when no
salon has that id (or that salon has no such source configured).
"""

from __future__ import annotations

from aiohttp import web

from gateway.wiring.routes import Route, SalonRoutes
from gateway.wiring.served import ServedSalons


def not_served(served: ServedSalons, salon_id: str) -> web.Response:
    """The answer for a salon the gateway does not serve: 410 disabled, 404 unknown."""
    if salon_id in served.held:
        return web.json_response({"error": "salon disabled"}, status=410)
    return web.json_response({"error": "no such salon"}, status=404)


def add_salon_routes(app: web.Application, served: ServedSalons) -> None:
    def salon_of(request: web.Request) -> SalonRoutes | web.Response:
        salon_id = request.match_info["salon"]
        salon = served.live.get(salon_id)
        if salon is not None:
            return salon.routes
        return not_served(served, salon_id)

    def source_route(source: str) -> Route:
        async def salon_webhook(request: web.Request) -> web.StreamResponse:
            routes = salon_of(request)
            if isinstance(routes, web.Response):
                return routes
            route = routes.webhooks.get(source)
            if route is None:
                return web.json_response({"error": f"{source} is off for this salon"}, status=404)
            return await route(request)

        return salon_webhook

    async def whatsapp_handshake(request: web.Request) -> web.StreamResponse:
        routes = salon_of(request)
        if isinstance(routes, web.Response):
            return routes
        if routes.handshake is None:
            return web.json_response({"error": "whatsapp is off for this salon"}, status=404)
        return await routes.handshake(request)

    environment = served.live[served.environment_id].routes
    signed_chatwoot = source_route("chatwoot")

    async def chatwoot(request: web.Request) -> web.StreamResponse:
        # `/webhooks/chatwoot/{x}` is both a salon's path and, for the environment's salon on
        # Chatwoot before 4.13, the path that carries the webhook token: a salon's id wins.
        part = request.match_info["salon"]
        by_token = environment.chatwoot_by_token
        if part in served.live or part in served.held or by_token is None:
            return await signed_chatwoot(request)
        return await by_token(request, part)

    async def chatwoot_by_token(request: web.Request) -> web.StreamResponse:
        routes = salon_of(request)
        if isinstance(routes, web.Response):
            return routes
        if routes.chatwoot_by_token is None:
            return web.json_response({"error": "no webhook token for this salon"}, status=404)
        return await routes.chatwoot_by_token(request, request.match_info["token"])

    for source in ("telegram", "whatsapp", "calcom", "novu"):
        app.router.add_post(f"/webhooks/{source}/{{salon}}", source_route(source))
    app.router.add_get("/webhooks/whatsapp/{salon}", whatsapp_handshake)
    app.router.add_post("/webhooks/chatwoot/{salon}", chatwoot)
    app.router.add_post("/webhooks/chatwoot/{salon}/{token}", chatwoot_by_token)
