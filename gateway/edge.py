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
# Meta sends webhook payloads of up to 3 MB.
LARGEST_BODY = 3 * 1024 * 1024


class Malformed(Exception):
    """The body is not what the provider sends: answered with 400 (and logged)."""


class WebhookSource(Protocol):
    name: str
    max_body: int

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        """Checked before the body is read (e.g. Telegram's secret-token header)."""
        ...

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        """Checked on the raw bytes before anything is parsed (e.g. WhatsApp's HMAC)."""
        ...

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        """The events in a body; raises Malformed (or returns [] for nothing to do)."""
        ...


def webhook_route(source: WebhookSource, inbox: Inbox, metrics: Metrics) -> Handler:
    results = ("queued", "duplicate", "unauthorized", "too_large", "malformed", "unavailable")
    # Label children made once: `labels()` per request is measurable at thousands per second.
    count = {result: metrics.webhooks.labels(source.name, result) for result in results}

    async def handle(request: web.Request) -> web.StreamResponse:
        if not source.authenticate(request.headers):
            count["unauthorized"].inc()
            # Anyone can send forged requests: INFO, no stack trace (the metric counts them).
            log.info("%s webhook refused: bad or missing secret", source.name)
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.content_length is not None and request.content_length > source.max_body:
            count["too_large"].inc()
            return web.json_response({"error": "body too large"}, status=413)
        try:
            # The app's client_max_size bounds this read, chunked bodies included.
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            count["too_large"].inc()
            return web.json_response({"error": "body too large"}, status=413)
        if len(raw) > source.max_body:
            # The app's limit is the largest of all sources (WhatsApp's 3 MB).
            count["too_large"].inc()
            return web.json_response({"error": "body too large"}, status=413)
        if not source.verify(request.headers, raw):
            count["unauthorized"].inc()
            log.info("%s webhook refused: bad signature", source.name)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            events = source.parse(request.headers, raw)
        except Malformed as exc:
            count["malformed"].inc()
            log.warning("%s webhook malformed: %s", source.name, exc)
            return web.json_response({"error": f"malformed: {exc}"}, status=400)
        try:
            if len(events) == 1:
                queued = [await inbox.put(events[0])]
            else:
                queued = await asyncio.gather(*(inbox.put(event) for event in events))
        except InboxUnavailable:
            count["unavailable"].inc()
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        for event, fresh in zip(events, queued, strict=True):
            count["queued" if fresh else "duplicate"].inc()
            if not fresh:
                log.info(
                    "duplicate delivery acknowledged",
                    extra={"source": source.name, "event_id": event.event_id},
                )
        return web.Response(body=b"{}", content_type="application/json")

    return handle
