"""The Notices app: a staff member's Novu in-app feed, read and marked server-side.

Staff open it from Chatwoot like the Bookings app (the same link key, page token and
`appContext` check, agents.py); the notices token it returns names only the agent, so every
call reads and marks the feed of `<salon>:staff:<that agent>` and no other. Novu is asked with
the salon's own API key (NovuClient: feed, mark-as, mark-all); the page sees our own shape of a
notice, never Novu's message objects.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from bot.local_time import format_label
from gateway.dashboard_app import tokens
from gateway.dashboard_app.agents import Refused, opener, whole
from gateway.integrations.chatwoot.api import ChatwootClient
from gateway.integrations.novu.api import NovuClient, NovuRejected, NovuUnavailable
from gateway.integrations.novu.staff import subscriber_id
from gateway.pipeline.resilience import BreakerOpen

log = logging.getLogger("frontdesk.dashboard_app.notices")
T = TypeVar("T")

# Notices a page shows (Novu's feed allows 1-100 a page).
PAGE_SIZE = 20
# Novu away: it answered 5xx or nothing, or the salon's breaker for it is open after that
# (BreakerOpen is no ServiceError). Also a refusal of the salon's key: the operator's to fix.
UNREACHABLE = (NovuUnavailable, NovuRejected, BreakerOpen)
# Novu's message ids are MongoDB ObjectIds; mark-as casts each one, so others never reach it.
MESSAGE_ID = re.compile(r"[0-9a-f]{24}")
LINK = re.compile(r"https?://\S+", re.IGNORECASE)


@dataclass
class StaffNotices:
    salon_id: str
    secret: bytes
    chatwoot: ChatwootClient
    novu: NovuClient
    chatwoot_origin: str = ""
    # When a notice came, on the salon's clock and in its language (staff work in the salon).
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    locale: str = "en"

    async def open(self, context: dict[str, Any]) -> dict[str, Any]:
        """Chatwoot's `appContext`, checked (agents.py): the notices token and the feed."""
        found = await opener(self.chatwoot, context)
        claims = {"agent": found.agent_id, "name": found.name}
        token = tokens.issue(self.secret, tokens.NOTICES, claims, time.time())
        return {"token": token, "agent": found.name, **await self.feed(claims, 0)}

    async def feed(self, claims: dict[str, Any], page: int) -> dict[str, Any]:
        """One page of the agent's feed, newest first, and whether there are more."""
        subscriber = self._subscriber(claims)
        try:
            answer = await self.novu.feed(subscriber, page, PAGE_SIZE)
        except UNREACHABLE as exc:
            log.warning("the feed of agent %s could not be read: %s", claims.get("agent"), exc)
            raise Refused(503, "Novu cannot be reached now") from exc
        items = answer.get("data") if isinstance(answer.get("data"), list) else []
        notices = [self._notice(item) for item in items or [] if isinstance(item, dict)]
        return {
            "notices": notices,
            "unread": sum(1 for n in notices if not n["read"]),
            "page": page,
            "more": answer.get("hasMore") is True,
        }

    async def mark_read(self, claims: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise Refused(400, "ids must list the notices to mark (1 to 100)")
        if not all(isinstance(i, str) and MESSAGE_ID.fullmatch(i) for i in ids):
            raise Refused(400, "a notice id is 24 hexadecimal characters")
        await self._novu_call(self.novu.mark_read(self._subscriber(claims), ids))
        return {"marked": len(ids)}

    async def mark_all_read(self, claims: dict[str, Any]) -> dict[str, Any]:
        return {"marked": await self._novu_call(self.novu.mark_all_read(self._subscriber(claims)))}

    async def _novu_call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except UNREACHABLE as exc:
            log.warning("Novu did not mark the notices: %s", exc)
            raise Refused(503, "Novu cannot be reached now") from exc

    def _notice(self, item: dict[str, Any]) -> dict[str, Any]:
        """Novu's in-app message (NotificationFeedItemDto) as the page shows it; the link only
        when it is a web address (a click opens it)."""
        cta = item.get("cta") if isinstance(item.get("cta"), dict) else {}
        data = (cta or {}).get("data")
        url = str(data.get("url") or "") if isinstance(data, dict) else ""
        return {
            "id": str(item.get("_id") or ""),
            "subject": str(item.get("subject") or ""),
            "text": str(item.get("content") or ""),
            "url": url if LINK.fullmatch(url) else "",
            "read": item.get("read") is True,
            "at": self._when(item.get("createdAt")),
        }

    def _when(self, created: Any) -> str:
        try:
            moment = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        except ValueError:
            return ""
        if moment.tzinfo is None:
            return ""
        return format_label(moment, self.zone, self.locale)

    def _subscriber(self, claims: dict[str, Any]) -> str:
        agent = whole(claims.get("agent"))
        if agent is None:
            raise Refused(403, "the token names no agent")
        return subscriber_id(self.salon_id, agent)
