"""The edge: authenticate, size-limit, parse just enough, queue durably, then acknowledge.

Nothing slow happens before the answer: the only IO is the (grouped) Redis write. The answer
is 200 only once every event of the request is queued (or known as a duplicate); if Redis
cannot take the write the answer is 503, so that the provider delivers again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.inbox import Event, Inbox, InboxUnavailable
from gateway.metrics import Metrics

log = logging.getLogger("frontdesk.edge")

MAX_BODY = 1024 * 1024


class Malformed(Exception):
    """The body is not what the provider sends: answered with 400 (and logged)."""


class WebhookSource(Protocol):
    name: str
    max_body: int

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        """Checked before the body is read (e.g. Telegram's secret-token header)."""
        ...

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        """The events in a body; raises Malformed (or returns [] for nothing to do)."""
        ...


def webhook_route(source: WebhookSource, inbox: Inbox, metrics: Metrics) -> Handler:
    counter = metrics.webhooks

    async def handle(request: web.Request) -> web.StreamResponse:
        if not source.authenticate(request.headers):
            counter.labels(source.name, "unauthorized").inc()
            log.warning("%s webhook refused: bad or missing secret", source.name)
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.content_length is not None and request.content_length > source.max_body:
            counter.labels(source.name, "too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        raw = await _read_limited(request, source.max_body)
        if raw is None:
            counter.labels(source.name, "too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        try:
            events = source.parse(request.headers, raw)
        except Malformed as exc:
            counter.labels(source.name, "malformed").inc()
            log.warning("%s webhook malformed: %s", source.name, exc)
            return web.json_response({"error": f"malformed: {exc}"}, status=400)
        try:
            queued = await asyncio.gather(*(inbox.put(event) for event in events))
        except InboxUnavailable:
            counter.labels(source.name, "unavailable").inc()
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        for event, fresh in zip(events, queued, strict=True):
            counter.labels(source.name, "queued" if fresh else "duplicate").inc()
            if not fresh:
                log.info(
                    "duplicate delivery acknowledged",
                    extra={"source": source.name, "event_id": event.event_id},
                )
        return web.json_response({})

    return handle


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes (a chunked body has no Content-Length to check)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
