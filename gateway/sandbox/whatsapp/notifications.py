"""Meta's side of the WhatsApp stand-in: what it keeps of the business number, the callback
URL, and the signed notifications (messages, statuses) it posts there, redelivered on a non-200
answer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import ClientTimeout

from gateway.sandbox.base import StandIn
from gateway.sandbox.flood import Bucket, Limits, SlidingWindow
from gateway.sandbox.spec import load_spec
from gateway.sandbox.whatsapp.rules import (
    DEFAULT_TEMPLATES,
    DISPLAY_NUMBER,
    JSON,
    SIGNATURE_HEADER,
    WABA_ID,
    Sent,
    _Client,
    _what,
)

# How long Meta waits for the callback URL's answer (the sandbox's choice: Meta does not say).
DELIVERY_SECONDS = 30


class Notifications(StandIn):
    """The business number's state and its webhook (see `WhatsAppSandbox` for the knobs)."""

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        app_secret: str,
        spec_path: Path | None = None,
        *,
        redelivery_attempts: int = 3,
        redelivery_backoff: float = 0.2,
        bookings: Callable[[], list[JSON]] | None = None,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.validating = spec_path is not None and spec_path.is_file()
        self._spec = load_spec(spec_path) if spec_path is not None and self.validating else None
        self.redelivery_attempts = redelivery_attempts
        self.redelivery_backoff = redelivery_backoff
        self.templates: dict[tuple[str, str], int] = dict(DEFAULT_TEMPLATES)
        self.window_errors = "status"
        self.auto_statuses = True
        self.shuffle_statuses = False
        self.duplicate_statuses = False
        self.clock: Callable[[], float] = time.time
        self.sent: list[Sent] = []
        self.reads: list[str] = []
        self.errors: list[tuple[int, str]] = []  # (code, details) of every refused request
        self.deliveries: list[tuple[str, int]] = []  # (what, HTTP status of the webhook)
        self.media: dict[str, tuple[str, str, bytes]] = {}
        # Files clients sent: media id -> (kind, mime type, bytes).
        self.client_media: dict[str, tuple[str, str, bytes]] = {}
        # The chat as the page shows it: (client key, "client" or "business", message).
        self.history: list[tuple[str, str, JSON]] = []
        self._throttle: list[int] = []
        # Off unless a test or the broadcast bench turns it on (`enforce_limits`).
        self.limits: Limits | None = None
        self._clients: dict[str, _Client] = {}
        self._bookings = bookings
        self._ids = itertools.count(1)
        self._webhook_url = ""
        self._lock = asyncio.Lock()
        self._page_html: str | None = None

    async def close(self) -> None:
        # Nothing more goes out: a call still arriving must not open a session nobody closes.
        self._closed = True
        await self._cancel_deliveries()
        await super().close()

    # -- test helpers ---------------------------------------------------------------------

    def throttle(self, times: int = 1, code: int = 130429) -> None:
        """The next `times` sends fail with a rate-limit error (130429 or 131056)."""
        self._throttle += [code] * times

    def enforce_limits(
        self, per_number: int = 80, pair_rate: float = 1 / 6, pair_burst: int = 45
    ) -> Limits:
        """Refuse sends over Meta's limits (see gateway/sandbox/flood.py for the model): the
        number's throughput, `per_number` messages in any second (130429), and the pair rate,
        `pair_rate` a second to one user with bursts of `pair_burst` (131056)."""
        self.limits = Limits(SlidingWindow(per_number), Bucket(pair_rate, pair_burst))
        return self.limits

    def sent_to(self, to: str) -> list[Sent]:
        return [message for message in self.sent if message.to == to]

    # -- subscription ---------------------------------------------------------------------

    async def subscribe(self, url: str, verify_token: str) -> None:
        """Register the callback URL as Meta does: a GET with a challenge it must echo."""
        challenge = secrets.token_hex(8)
        query = {"hub.mode": "subscribe", "hub.verify_token": verify_token}
        async with self._http().get(
            url,
            params=query | {"hub.challenge": challenge},
            timeout=ClientTimeout(total=DELIVERY_SECONDS),
        ) as answer:
            text = await answer.text()
            if answer.status != 200 or text != challenge:
                raise RuntimeError(f"callback verification failed: HTTP {answer.status}")
        self._webhook_url = url

    async def deliver(self, key: str, messages: list[JSON]) -> JSON:
        """One notification with these messages (Meta batches), signed and POSTed."""
        client = self._clients[key]
        contact: JSON = {"profile": {"name": client.name}}
        if client.wa_id:
            contact["wa_id"] = client.wa_id
        if client.bsuid:
            contact["user_id"] = client.bsuid
        client.last_inbound = max(client.last_inbound, self.clock())
        self.history += [(key, "client", message) for message in messages]
        value = {"messaging_product": "whatsapp", "contacts": [contact], "messages": messages}
        payload = self._envelope(value)
        await self.post(payload)
        return payload

    def _statuses(self, wamid: str, to: str, steps: list[tuple[str, int, str]]) -> None:
        statuses: list[JSON] = []
        for status, code, details in steps:
            item: JSON = {
                "id": wamid,
                "status": status,
                "timestamp": str(int(self.clock())),
                "recipient_id": to,
            }
            if code:
                item["errors"] = [
                    {
                        "code": code,
                        "title": "Re-engagement message",
                        "message": "Re-engagement message",
                        "error_data": {"details": details},
                    }
                ]
            statuses.append(item)
        if self.shuffle_statuses:
            random.shuffle(statuses)
        if self.duplicate_statuses:
            statuses = [*statuses, *statuses]
        if self._closed:
            return
        # Separate notifications, sent after the send call has answered, as Meta does.
        self._spawn(self._post_statuses(statuses))

    async def _post_statuses(self, statuses: list[JSON]) -> None:
        await asyncio.sleep(0.01)
        for status in statuses:
            await self.post(self._envelope({"messaging_product": "whatsapp", "statuses": [status]}))

    async def client_reads(self, key: str) -> None:
        """The client opens the chat: `read` for everything sent to them."""
        self._statuses_all(key, "read")
        await self.settle()

    def _statuses_all(self, key: str, status: str) -> None:
        for sent in self.sent_to(key):
            self._statuses(sent.wamid, key, [(status, 0, "")])

    def _envelope(self, value: JSON) -> JSON:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": self.phone_number_id,
            },
        } | value
        change = {"field": "messages", "value": value}
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [change]}],
        }

    def sign(self, raw: bytes) -> str:
        digest = hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return f"sha256={digest}"

    async def post(self, payload: JSON) -> int:
        """POST a notification to the webhook (signed), redelivering on a non-200 answer."""
        if not self._webhook_url:
            raise RuntimeError("no callback URL: subscribe() first, as the app's setup does")
        # Meta escapes non-ASCII characters; the signature covers these exact bytes.
        raw = json.dumps(payload).encode()
        headers = {SIGNATURE_HEADER: self.sign(raw), "Content-Type": "application/json"}
        what = _what(payload)
        status = 0
        async with self._lock:  # one delivery at a time keeps a chat's messages in order
            for attempt in range(1 + max(0, self.redelivery_attempts)):
                if attempt:
                    await asyncio.sleep(self.redelivery_backoff)
                answer = await self._post(
                    self._webhook_url, raw, headers, answer_within=DELIVERY_SECONDS
                )
                status = answer.status
                self.deliveries.append((what, status))
                if status == 200:
                    break
        return status
