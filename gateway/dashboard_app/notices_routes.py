"""The Notices app's routes: the page (`GET /dashboard-app/<salon>/notices?key=`) and its API
(`open` with the page token; `feed`, `read`, `read-all` with the notices token), guarded as the
Bookings app's are (routes.py): no token is 401, bad input 400, Novu away 503."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.dashboard_app import tokens
from gateway.dashboard_app.agents import Refused
from gateway.dashboard_app.notices import StaffNotices
from gateway.dashboard_app.routes import framed_page, guarded, read_body

log = logging.getLogger("frontdesk.dashboard_app.notices")

PAGE = Path(__file__).parent / "notices.html"
FindNotices = Callable[[str], StaffNotices | None]


def notices_url(public_url: str, salon_id: str, secret: bytes) -> str:
    """The URL to set in Chatwoot as the second Dashboard App, "Notices"."""
    base = f"{public_url.rstrip('/')}/dashboard-app/{salon_id}/notices"
    return f"{base}?key={tokens.link_key(secret)}"


def add_notices_routes(app: web.Application, find: FindNotices) -> None:
    base = "/dashboard-app/{salon}/notices"
    app.router.add_get(base, framed_page(find, PAGE.read_text(encoding="utf-8")))
    app.router.add_post(f"{base}/api/open", guarded(find, tokens.PAGE, _open))
    app.router.add_get(f"{base}/api/feed", guarded(find, tokens.NOTICES, _feed))
    app.router.add_post(f"{base}/api/read", guarded(find, tokens.NOTICES, _read))
    app.router.add_post(f"{base}/api/read-all", guarded(find, tokens.NOTICES, _read_all))


async def _open(notices: StaffNotices, _claims: dict[str, Any], request: web.Request) -> Any:
    answer = await notices.open(await read_body(request))
    log.info("notices opened by an agent (%d unread shown)", answer["unread"])
    return answer


async def _feed(notices: StaffNotices, claims: dict[str, Any], request: web.Request) -> Any:
    page = request.query.get("page", "0")
    if not (page.isascii() and page.isdigit() and int(page) < 1000):
        raise Refused(400, "page must be a whole number below 1000")
    return await notices.feed(claims, int(page))


async def _read(notices: StaffNotices, claims: dict[str, Any], request: web.Request) -> Any:
    return await notices.mark_read(claims, await read_body(request))


async def _read_all(notices: StaffNotices, claims: dict[str, Any], _request: web.Request) -> Any:
    return await notices.mark_all_read(claims)
