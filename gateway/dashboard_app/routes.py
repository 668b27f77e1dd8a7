"""The Dashboard App's routes: the page (`GET /dashboard-app/<salon>?key=`) and its API.

Every API call carries `Authorization: Bearer <token>` (tokens.py): the page token for `open`,
the staff token it returns for the rest. A call without a valid one is 401; bad input is 400
(or 404, 409, 422), never a 5xx; a vendor that cannot be reached is 503.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.ports import CalendarUnavailable
from gateway.dashboard_app import changes, tokens
from gateway.dashboard_app.desk import Refused, StaffDesk
from gateway.pipeline.inbox import InboxUnavailable

log = logging.getLogger("frontdesk.dashboard_app")

PAGE = Path(__file__).parent / "page.html"
# The page's own requests only: Chatwoot frames it, so framing stays allowed.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

FindDesk = Callable[[str], StaffDesk | None]
Action = Callable[[StaffDesk, dict[str, Any], web.Request], Awaitable[Any]]
Change = Callable[[StaffDesk, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def page_url(public_url: str, salon_id: str, secret: bytes) -> str:
    """The URL to set in Chatwoot (Settings → Integrations → Dashboard Apps)."""
    return f"{public_url.rstrip('/')}/dashboard-app/{salon_id}?key={tokens.link_key(secret)}"


def add_dashboard_app_routes(app: web.Application, find: FindDesk) -> None:
    html = PAGE.read_text(encoding="utf-8")

    async def page(request: web.Request) -> web.Response:
        desk = find(request.match_info["salon"])
        if desk is None:
            return _error(404, "no Dashboard App for this salon")
        if not tokens.key_matches(desk.secret, request.query.get("key", "")):
            return _error(403, "this page opens only from the salon's Chatwoot")
        token = tokens.issue(desk.secret, tokens.PAGE, {}, time.time())
        body = (
            html.replace("{{PAGE_TOKEN}}", token)
            .replace("{{SALON}}", desk.salon_id)
            .replace("{{CHATWOOT_ORIGIN}}", json.dumps(desk.chatwoot_origin)[1:-1])
        )
        return web.Response(text=body, content_type="text/html", headers=HEADERS)

    def api(scope: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            desk = find(request.match_info["salon"])
            if desk is None:
                return _error(404, "no Dashboard App for this salon")
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            claims = tokens.read(desk.secret, given, scope, time.time())
            if claims is None:
                return _error(401, "a valid token is needed (open the app from Chatwoot again)")
            try:
                answer = await action(desk, claims, request)
            except Refused as refused:
                return _error(refused.status, refused.message)
            except InboxUnavailable:
                return _error(503, "cannot queue the message now: try again")
            except CalendarUnavailable:
                return _error(503, "the calendar cannot be reached now")
            return web.json_response(answer, headers=HEADERS)

        return handle

    base = "/dashboard-app/{salon}"
    app.router.add_get(base, page)
    app.router.add_post(f"{base}/api/open", api(tokens.PAGE, _open))
    app.router.add_get(f"{base}/api/overview", api(tokens.STAFF, _overview))
    app.router.add_get(f"{base}/api/slots", api(tokens.STAFF, _slots))
    app.router.add_post(f"{base}/api/propose", api(tokens.STAFF, _propose))
    for name, change in (
        ("book", changes.book),
        ("move", changes.move),
        ("cancel", changes.cancel),
    ):
        app.router.add_post(f"{base}/api/{name}", api(tokens.STAFF, _change(name, change)))


async def _open(desk: StaffDesk, _claims: dict[str, Any], request: web.Request) -> Any:
    answer = await desk.open(await _body(request))
    log.info("dashboard app opened by agent %s", answer["agent_id"])
    return answer


async def _overview(desk: StaffDesk, claims: dict[str, Any], _request: web.Request) -> Any:
    return await desk.overview(claims)


async def _slots(desk: StaffDesk, _claims: dict[str, Any], request: web.Request) -> Any:
    query = request.query
    master = query.get("master") or None
    if master is not None and not (master.isascii() and master.isdigit() and len(master) < 19):
        raise Refused(400, "master must be a master's id")
    slots = await desk.slots(
        query.get("service", ""), int(master) if master else None, query.get("day", "")
    )
    return {"slots": slots}


async def _propose(desk: StaffDesk, claims: dict[str, Any], request: web.Request) -> Any:
    answer = await desk.propose(claims, await _body(request))
    log.info("agent %s proposed times (proposal %s)", claims.get("agent"), answer["proposal"])
    return answer


def _change(name: str, change: Change) -> Action:
    async def act(desk: StaffDesk, claims: dict[str, Any], request: web.Request) -> Any:
        answer = await change(desk, claims, await _body(request))
        log.info(
            "agent %s: %s for the client (booking %s)", claims.get("agent"), name, answer["uid"]
        )
        return answer

    return act


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise Refused(400, "the body is not a JSON object")
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=HEADERS)
