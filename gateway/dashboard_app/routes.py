"""The Dashboard App's routes: the page (`GET /dashboard-app/<salon>?key=`) and its API, and
what every Dashboard App of ours shares (`framed_page`, `guarded`; the Notices app too).

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
from typing import Any, Protocol, TypeVar

from aiohttp import web

from bot.ports import CalendarUnavailable
from gateway.dashboard_app import changes, tokens
from gateway.dashboard_app.agents import Refused
from gateway.dashboard_app.desk import StaffDesk
from gateway.pipeline.inbox import InboxUnavailable

log = logging.getLogger("frontdesk.dashboard_app")

PAGE = Path(__file__).parent / "page.html"
# The page's own requests only: Chatwoot frames it, so framing stays allowed.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

App = TypeVar("App", bound="Framed")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FindDesk = Callable[[str], StaffDesk | None]
Action = Callable[[StaffDesk, dict[str, Any], web.Request], Awaitable[Any]]
Change = Callable[[StaffDesk, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def page_url(public_url: str, salon_id: str, secret: bytes) -> str:
    """The URL to set in Chatwoot (Settings → Integrations → Dashboard Apps)."""
    return f"{public_url.rstrip('/')}/dashboard-app/{salon_id}?key={tokens.link_key(secret)}"


class Framed(Protocol):
    """What a Dashboard App's routes need of the salon's app: its secret and Chatwoot's origin."""

    secret: bytes
    chatwoot_origin: str


def framed_page(find: Callable[[str], Framed | None], html: str) -> Handler:
    """`GET ...?key=`: the page, holding a page token, for a salon's Chatwoot only."""

    async def page(request: web.Request) -> web.Response:
        found = find(request.match_info["salon"])
        if found is None:
            return _error(404, "no such Dashboard App for this salon")
        if not tokens.key_matches(found.secret, request.query.get("key", "")):
            return _error(403, "this page opens only from the salon's Chatwoot")
        token = tokens.issue(found.secret, tokens.PAGE, {}, time.time())
        body = (
            html.replace("{{PAGE_TOKEN}}", token)
            .replace("{{SALON}}", request.match_info["salon"])
            .replace("{{CHATWOOT_ORIGIN}}", json.dumps(found.chatwoot_origin)[1:-1])
        )
        return web.Response(text=body, content_type="text/html", headers=HEADERS)

    return page


def guarded(
    find: Callable[[str], App | None],
    scope: str,
    action: Callable[[App, dict[str, Any], web.Request], Awaitable[Any]],
) -> Handler:
    """An API call: 401 without a valid token for `scope`; Refused as its 4xx (or 503)."""

    async def handle(request: web.Request) -> web.Response:
        found = find(request.match_info["salon"])
        if found is None:
            return _error(404, "no such Dashboard App for this salon")
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        claims = tokens.read(found.secret, given, scope, time.time())
        if claims is None:
            return _error(401, "a valid token is needed (open the app from Chatwoot again)")
        try:
            answer = await action(found, claims, request)
        except Refused as refused:
            return _error(refused.status, refused.message)
        except InboxUnavailable:
            return _error(503, "cannot queue the message now: try again")
        except CalendarUnavailable:
            return _error(503, "the calendar cannot be reached now")
        return web.json_response(answer, headers=HEADERS)

    return handle


def add_dashboard_app_routes(app: web.Application, find: FindDesk) -> None:
    base = "/dashboard-app/{salon}"
    app.router.add_get(base, framed_page(find, PAGE.read_text(encoding="utf-8")))

    def api(scope: str, action: Action) -> Handler:
        return guarded(find, scope, action)

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
    answer = await desk.open(await read_body(request))
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
    answer = await desk.propose(claims, await read_body(request))
    log.info("agent %s proposed times (proposal %s)", claims.get("agent"), answer["proposal"])
    return answer


def _change(name: str, change: Change) -> Action:
    async def act(desk: StaffDesk, claims: dict[str, Any], request: web.Request) -> Any:
        answer = await change(desk, claims, await read_body(request))
        log.info(
            "agent %s: %s for the client (booking %s)", claims.get("agent"), name, answer["uid"]
        )
        return answer

    return act


async def read_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise Refused(400, "the body is not a JSON object")
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=HEADERS)
