"""The composition root: builds every client, store and worker from settings.

Nothing here touches the network when called; connections open when the app starts. The routes
are here; the steps the app runs when it starts are in `gateway.wiring`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.dashboard_app.desk import StaffDesk
from gateway.dashboard_app.notices import StaffNotices
from gateway.dashboard_app.notices_routes import add_notices_routes
from gateway.dashboard_app.routes import add_dashboard_app_routes
from gateway.integrations.metabase.factory import EMBED_TTL, dashboard_link
from gateway.pipeline.edge import LARGEST_BODY, EdgeLimits, server_options
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from gateway.pipeline.logs import flush_summaries
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.metrics_by_salon import OTHER, SalonLabels, render_by_salon, volume
from gateway.pipeline.redis_client import connect_redis
from gateway.pipeline.tasks import stop_task
from gateway.salon_settings import SalonSettings
from gateway.settings import Settings
from gateway.wiring.dispatch import add_salon_routes, not_served
from gateway.wiring.key_upgrade import KEY_UPGRADE, KeyUpgrade, wait_for_keys
from gateway.wiring.registry_watch import follow_registry
from gateway.wiring.routes import add_environment_routes, salon_routes
from gateway.wiring.running import start_salon
from gateway.wiring.runtime import RUNTIME, Runtime
from gateway.wiring.served import SERVED, ServedSalons
from gateway.wiring.week_dashboard import week_dashboard
from gateway.wiring.whatsapp_numbers import add_whatsapp_routes

__all__ = ["RUNTIME", "SERVED", "Runtime", "create_app"]

log = logging.getLogger("frontdesk.app")

# Which registry salons keep their own `salon` label at /metrics (kept from scrape to scrape).
SALON_LABELS = web.AppKey("salon_labels", SalonLabels)


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
    keys = Keys(settings.salon.profile.id, settings.stream_shards)
    metrics = Metrics()
    runtime = Runtime(
        settings, redis, keys, metrics, Inbox(redis, keys, settings.dedup_ttl_seconds)
    )
    # Each webhook route enforces its own limit while reading; this one bounds the other routes.
    app = web.Application(
        client_max_size=LARGEST_BODY,
        handler_args=server_options(settings.keepalive_seconds),
        middlewares=[wait_for_keys],
    )
    app[RUNTIME] = runtime
    app[KEY_UPGRADE] = KeyUpgrade()
    app[SALON_LABELS] = SalonLabels(settings.metrics_salons)
    limits = EdgeLimits(settings.edge_max_pending_reads, settings.edge_read_timeout_seconds)
    # One bound for the whole process: forged traffic on one route (or salon) takes no more
    # slots than forged traffic spread over all of them.
    slots = asyncio.Semaphore(settings.edge_max_pending_reads)
    served = app[SERVED] = ServedSalons(settings, redis, limits, slots, clock)
    routes = salon_routes(runtime, limits, slots)
    served.serve_environment(runtime, routes)
    add_environment_routes(app, routes)
    add_salon_routes(app, served)
    add_whatsapp_routes(app, served)
    if settings.salon.embedding is not None:
        app.router.add_get("/analytics/embed", analytics_embed)
    app.router.add_get("/analytics/embed/{salon}", salon_analytics_embed)
    app.router.add_get("/analytics/week/{salon}/{week}", week_dashboard)
    add_dashboard_app_routes(app, lambda salon_id: _staff_desk(served, salon_id))
    add_notices_routes(app, lambda salon_id: _staff_notices(served, salon_id))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    app.cleanup_ctx.append(lambda app: _lifecycle(app, clock))
    app.cleanup_ctx.append(_background_refresh)
    # After the lifecycle: stopped before it, while the shared Redis client is still open.
    app.cleanup_ctx.append(follow_registry)
    return app


def _staff_desk(served: ServedSalons, salon_id: str) -> StaffDesk | None:
    """The Dashboard App of a salon the gateway serves (with Cal.com and Chatwoot)."""
    live = served.live.get(salon_id)
    if live is None or live.running is None:
        return None
    return live.running.services.staff_desk


def _staff_notices(served: ServedSalons, salon_id: str) -> StaffNotices | None:
    """The Notices app of a salon the gateway serves (with Chatwoot and Novu)."""
    live = served.live.get(salon_id)
    if live is None or live.running is None:
        return None
    return live.running.services.staff_notices


async def _background_refresh(app: web.Application) -> AsyncIterator[None]:
    """Reads what /metrics shows from Redis in the background, so that a scrape costs no Redis
    call however often (or by whomever) it comes; and writes the log summaries that are due."""
    runtime = app[RUNTIME]
    refreshing = asyncio.create_task(_refresh_forever(runtime, app[SERVED]))
    try:
        yield
    finally:
        await stop_task(refreshing, "metrics refresh")


async def _refresh_forever(runtime: Runtime, served: ServedSalons) -> None:
    while True:
        # Every salon served, each from its own keys (and Redis pool), side by side.
        salons = [salon.runtime for salon in list(served.live.values())]
        await asyncio.gather(*(_refresh(salon) for salon in salons))
        flush_summaries()
        await asyncio.sleep(runtime.settings.metrics_refresh_seconds)


async def _refresh(runtime: Runtime) -> None:
    # Redis away: the last values stay, and /readyz says why.
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        await asyncio.wait_for(runtime.metrics.refresh_queues(runtime.redis, runtime.keys), 2.0)


async def _lifecycle(app: web.Application, clock: Callable[[], datetime]) -> AsyncIterator[None]:
    """Build the salon's services, the handlers and the outbox's deliveries; run the workers
    and the periodic tasks while the app is up; stop and close them all when it stops."""
    runtime = app[RUNTIME]
    served = app[SERVED]
    upgrade = app[KEY_UPGRADE]

    async def start() -> None:
        # The server listens meanwhile: /healthz answers, /readyz says "migrating keys".
        if runtime.settings.redis_cluster:
            upgrade.skip()
        else:
            await upgrade.run(runtime.redis)
        served.live[runtime.settings.salon.profile.id].running = start_salon(
            runtime, clock, served.work
        )

    starting = asyncio.create_task(start())
    # The shared slots' bounds follow how late the event loop runs (fair_slots.py).
    timing = asyncio.create_task(served.work.keep_time())
    # What exists now lives as long as the process: keep the collector from walking it (the
    # aiogram and pydantic models alone are some 200k objects) on every full collection.
    gc.freeze()
    try:
        yield
    finally:
        await stop_task(starting, "the key migration")
        await stop_task(timing, "the slots' timekeeper")
        running = served.live[runtime.settings.salon.profile.id].running
        if running is not None:
            await running.stop()
        await runtime.redis.aclose()


async def analytics_embed(request: web.Request) -> web.Response:
    """A signed Metabase embed URL of the environment's salon's dashboard, for staff holding
    its token (401 otherwise)."""
    salon = request.app[RUNTIME].settings.salon
    return _embed(request, salon, refused=401)


async def salon_analytics_embed(request: web.Request) -> web.Response:
    """`/analytics/embed/<salon>`: the same for each salon's staff, with that salon's own
    ANALYTICS_EMBED_TOKEN and dashboard, locked to that salon. Another salon's token is
    forbidden (403: the caller may be staff, just not this salon's); a salon the gateway
    does not serve is answered like its webhooks (410 disabled, 404 unknown)."""
    served = request.app[SERVED]
    salon_id = request.match_info["salon"]
    live = served.live.get(salon_id)
    if live is None:
        return not_served(served, salon_id)
    return _embed(request, live.runtime.settings.salon, refused=403)


def _embed(request: web.Request, salon: SalonSettings, refused: int) -> web.Response:
    embed = salon.embedding
    if embed is None:
        return web.json_response({"error": "no analytics embed for this salon"}, status=404)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    given = given or request.query.get("token", "")
    expected = embed.token.get_secret_value()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return web.json_response({"error": "unauthorized"}, status=refused)
    days = request.query.get("days", "30")
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= 366:
        return web.json_response({"error": "days must be 1 to 366"}, status=400)
    today = datetime.now(salon.profile.zone).date()
    # The dashboard's Salon parameter is locked (`frontdesk metabase sync`): the signed
    # params carry the salon, so staff see their own salon's rows and nobody else's.
    params = {
        "salon": salon.profile.id,
        "start": (today - timedelta(days=int(days) - 1)).isoformat(),
        "end": today.isoformat(),
    }
    url = dashboard_link(embed, params, ttl=EMBED_TTL)
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
    upgrade = request.app[KEY_UPGRADE]
    if upgrade.state != "done":
        checks["keys"] = upgrade.state
        ready = False
    elif upgrade.left:
        checks["keys"] = f"{upgrade.left} old keys left (their new name exists)"
    checks["services"] = _services(runtime)
    if runtime.pool is not None:
        checks["shards"] = runtime.pool.owned
    # The registry's salons, each with its services (the process's readiness is the
    # environment's salon and Redis: one salon's vendor down leaves the others served).
    if salons := request.app[SERVED].registry_salons:
        checks["salons"] = {
            salon_id: {"services": _services(salon.runtime)}
            for salon_id, salon in sorted(salons.items())
        }
    if runtime.stopping:
        checks["stopping"] = True
    return web.json_response(
        {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
    )


def _services(runtime: Runtime) -> dict[str, str]:
    """Each service of the salon: off, configured, or its circuit breaker's state."""
    services: dict[str, str] = {}
    for name, configured in runtime.settings.services().items():
        breaker = runtime.breakers.get(name)
        if not configured:
            services[name] = "off"
        elif breaker is not None:
            services[name] = breaker.state.name.lower().replace("_", "-")
        else:
            services[name] = "configured"
    return services


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
        body=_metrics_page(request.app),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _metrics_page(app: web.Application) -> bytes:
    """The single-salon gateway's metrics as they always were; with a salon registry, every
    salon's under a `salon` label (bounded: `gateway.pipeline.metrics_by_salon`).

    The label comes with the registry, not with the first registry salon: a gateway's series
    keep one shape for as long as its configuration does, and a single-salon gateway's
    dashboards and alerts (written without the label) keep working as they are."""
    runtime = app[RUNTIME]
    settings = runtime.settings
    if settings.database_url is None or settings.secrets_key is None:
        return runtime.metrics.render()
    served = app[SERVED]
    registry = served.registry_salons
    own = app[SALON_LABELS].choose(
        {salon_id: volume(salon.runtime.metrics) for salon_id, salon in registry.items()}
    )
    return render_by_salon(
        [
            (served.environment_id, runtime.metrics),
            *(
                (salon_id if salon_id in own else OTHER, salon.runtime.metrics)
                for salon_id, salon in sorted(registry.items())
            ),
        ]
    )
