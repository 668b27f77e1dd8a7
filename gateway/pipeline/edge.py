"""The edge: authenticate, size-limit, parse just enough, queue durably, then acknowledge.

Nothing slow happens before the answer: the only IO is the (grouped) Redis write. The answer
is 200 only once every event of the request is queued (or known as a duplicate); if Redis
cannot take the write the answer is 503, so that the provider delivers again later.

The edge refuses cheaply: a body is read in chunks and refused (413) the moment it passes its
route's limit, chunked or not; it must arrive within the read timeout (408); and a body that
only its own bytes can authenticate (an HMAC) is read only while one of a bounded number of
slots is free, so that forged traffic cannot make the process hold more than
slots x the largest body. Slow request heads are the server's part (`server_options`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import StreamReader, web
from aiohttp.typedefs import Handler

from gateway.pipeline.inbox import Event, Inbox, InboxUnavailable, event_problem
from gateway.pipeline.metrics import Metrics

log = logging.getLogger("frontdesk.edge")

MAX_BODY = 1024 * 1024
# Meta sends webhook payloads of up to 3 MB.
LARGEST_BODY = 3 * 1024 * 1024
# How long a request over the bound of unauthenticated reads waits for a slot before it is
# answered 503: under Chatwoot's 5 s webhook timeout (Chatwoot does not retry its webhooks,
# contracts/chatwoot-whatsapp-telegram.md §1.6), so a short burst is absorbed, not refused.
SLOT_WAIT_SECONDS = 2.0
# After a refusal the rest of a body is read and dropped for at most this long, so that the
# sender sees the answer rather than a reset; then the connection is closed.
LINGER_SECONDS = 2.0
# What aiohttp buffers of a body before the handler reads it: it stops reading the socket past
# twice this (StreamReader's high-water mark), so a connection waiting for a slot holds at
# most that plus one socket read (asyncio reads up to 256 KiB at a time). aiohttp's default
# is 64 KiB; smaller keeps hundreds of waiting forged uploads cheap.
READ_BUFFER = 16 * 1024


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """How much the edge reads before it knows who is talking to it."""

    pending_reads: int = 32  # bodies read at once before they could be authenticated
    read_timeout: float = 10.0  # seconds for a whole body to arrive
    slot_wait: float = SLOT_WAIT_SECONDS


def server_options(keepalive_seconds: float) -> dict[str, Any]:
    """The aiohttp server's own bounds, passed as the app's `handler_args`.

    aiohttp has no separate timeout for a request's head. Its keep-alive timer is it: since
    aiohttp 3.10 it is armed when a connection is made, it is not pushed back by arriving
    bytes, and when it fires while the connection still waits for a complete request head it
    closes the connection (aiohttp/web_protocol.py, `RequestHandler.connection_made` and
    `_process_keepalive`, aiohttp 3.14.5). So `keepalive_seconds` bounds both an idle
    keep-alive connection and a head dribbled byte by byte (slowloris); after each answer the
    timer starts again. The body has its own bound in the handler (EdgeLimits.read_timeout).
    """
    return {
        "keepalive_timeout": keepalive_seconds,
        "lingering_time": LINGER_SECONDS,
        "read_bufsize": READ_BUFFER,
        # aiohttp's defaults, stated: a request line or header over 8190 bytes is a 400.
        "max_line_size": 8190,
        "max_field_size": 8190,
    }


class Malformed(Exception):
    """The body is not what the provider sends: answered with 400 (and logged)."""


class WebhookSource(Protocol):
    name: str
    max_body: int
    # True when only the body can authenticate the request (an HMAC over it): such bodies are
    # read in one of EdgeLimits.pending_reads slots. False when the headers (or the route)
    # already proved who sends it.
    signed_body: bool

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        """Checked before the body is read (e.g. Telegram's secret-token header)."""
        ...

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        """Checked on the raw bytes before anything is parsed (e.g. WhatsApp's HMAC)."""
        ...

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        """The events in a body; raises Malformed (or returns [] for nothing to do)."""
        ...


class _TooLarge(Exception):
    pass


async def read_body(content: StreamReader, limit: int) -> bytes:
    """The body, read as it arrives; _TooLarge as soon as it passes `limit`.

    What has not arrived yet is never read: at most `limit` plus what the stream had buffered
    (bounded by READ_BUFFER, see there) is ever held.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _TooLarge
    return b"".join(chunks)


def _refuse(status: int, error: str, **headers: str) -> web.Response:
    """An answer that closes the connection: what a refused sender was still sending is not
    read (beyond LINGER_SECONDS), and its connection is not kept for another request."""
    response = web.json_response({"error": error}, status=status, headers=headers or None)
    response.force_close()
    return response


# Every answer the edge counts, per source (`frontdesk_webhooks_total{source, result}`).
_RESULTS = (
    "queued",
    "duplicate",
    "unauthorized",
    "too_large",
    "malformed",
    "unavailable",
    "busy",
    "too_slow",
)


def webhook_route(
    source: WebhookSource,
    inbox: Inbox,
    metrics: Metrics,
    limits: EdgeLimits,
    slots: asyncio.Semaphore,
) -> Handler:
    """The handler of a webhook route. `slots` is shared by every route of the process."""
    # aiohttp takes only coroutine functions as handlers (web_urldispatcher.py,
    # `ResourceRoute`): the bound method, not the object.
    return WebhookRoute(source, inbox, metrics, limits, slots).handle


class WebhookRoute:
    """One source's webhook route, in its steps: authenticate, read, verify, parse, queue.

    Each step answers with a refusal (a `web.Response`) or hands on what the next step needs.
    """

    def __init__(
        self,
        source: WebhookSource,
        inbox: Inbox,
        metrics: Metrics,
        limits: EdgeLimits,
        slots: asyncio.Semaphore,
    ) -> None:
        self.source = source
        self.inbox = inbox
        self.limits = limits
        self.slots = slots
        # Label children made once: `labels()` per request is measurable at thousands per second.
        self.count = {result: metrics.webhooks.labels(source.name, result) for result in _RESULTS}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await self.receive(request)
        if isinstance(raw, web.Response):
            return raw
        return await self.accept(request, raw)

    async def receive(self, request: web.Request) -> bytes | web.Response:
        """The body, once the headers allow reading it; else the refusal."""
        source = self.source
        if not _authentic(lambda: source.authenticate(request.headers)):
            self.count["unauthorized"].inc()
            # Anyone can send forged requests: INFO, no stack trace (the metric counts them).
            log.info("%s webhook refused: bad or missing secret", source.name)
            return _refuse(401, "unauthorized")
        if request.content_length is not None and request.content_length > source.max_body:
            self.count["too_large"].inc()
            return _refuse(413, "body too large")
        return await (
            self._read_unauthenticated(request) if source.signed_body else self._read(request)
        )

    async def accept(self, request: web.Request, raw: bytes) -> web.Response:
        """A body received: verified, parsed and queued, or the refusal."""
        source = self.source
        if not _authentic(lambda: source.verify(request.headers, raw)):
            self.count["unauthorized"].inc()
            log.info("%s webhook refused: bad signature", source.name)
            return _refuse(401, "unauthorized")
        events = self._parse(request, raw)
        if isinstance(events, web.Response):
            return events
        return await self._queue(events)

    async def _read(self, request: web.Request) -> bytes | web.Response:
        try:
            async with asyncio.timeout(self.limits.read_timeout):
                return await read_body(request.content, self.source.max_body)
        except _TooLarge:
            self.count["too_large"].inc()
            return _refuse(413, "body too large")
        except TimeoutError:
            self.count["too_slow"].inc()
            return _refuse(408, "body not received in time")

    async def _read_unauthenticated(self, request: web.Request) -> bytes | web.Response:
        try:
            async with asyncio.timeout(self.limits.slot_wait):
                await self.slots.acquire()
        except TimeoutError:
            self.count["busy"].inc()
            # Meta, Cal.com and Novu deliver a 503 again later; Retry-After says when.
            return _refuse(503, "busy", **{"Retry-After": "1"})
        try:
            return await self._read(request)
        finally:
            self.slots.release()

    def _parse(self, request: web.Request, raw: bytes) -> list[Event] | web.Response:
        source = self.source
        try:
            events = source.parse(request.headers, raw)
        except Malformed as exc:
            self.count["malformed"].inc()
            log.warning("%s webhook malformed: %s", source.name, exc)
            return web.json_response({"error": f"malformed: {exc}"}, status=400)
        # Every id that reaches a Redis key is checked before any event of the request is
        # queued: one that cannot be written is the sender's mistake (400), and none is queued.
        for event in events:
            if (problem := event_problem(event)) is not None:
                self.count["malformed"].inc()
                log.warning("%s webhook malformed: %s", source.name, problem)
                return web.json_response({"error": f"malformed: {problem}"}, status=400)
        return events

    async def _queue(self, events: list[Event]) -> web.Response:
        inbox = self.inbox
        try:
            if len(events) == 1:
                queued = [await inbox.put(events[0])]
            else:
                queued = await asyncio.gather(*(inbox.put(event) for event in events))
        except InboxUnavailable:
            self.count["unavailable"].inc()
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        for event, fresh in zip(events, queued, strict=True):
            self.count["queued" if fresh else "duplicate"].inc()
            if not fresh:
                log.info(
                    "duplicate delivery acknowledged",
                    extra={"source": self.source.name, "event_id": event.event_id},
                )
        return web.Response(body=b"{}", content_type="application/json")


def _authentic(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except (ValueError, TypeError, ArithmeticError):
        # A credential the source cannot even read (a timestamp of "²" or 400 digits, a
        # signature in non-ASCII) is no credential: 401, never 500.
        return False
