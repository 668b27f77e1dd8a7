"""A faithful local stand-in of the WhatsApp Cloud API (Graph v23.0): an aiohttp application.

Towards the gateway it answers like graph.facebook.com: `POST /{version}/{phone_number_id}/
messages` and `/media` with a bearer token, Graph error envelopes with Meta's codes, and the
rules Meta enforces: at most 3 reply buttons with unique titles of 20 characters, lists of at
most 10 rows (titles 24, descriptions 72, button label 20), bodies of 1024, texts of 4096, the
24-hour customer-service window (free-form messages outside it fail with 131047: in the
message's `failed` status by default, as Meta mostly reports it, or at once), and templates that
must exist in the requested language with the right number of parameters (132001, 132000).
Given the vendor spec (`whatsapp-cloud.openapi.json`) every message is also checked against
its schema (see `gateway/sandbox/spec.py` for how the spec's loose spots are read).

Towards the webhook it acts as Meta: a client's message, tap or reaction becomes a real-shaped
notification signed with `X-Hub-Signature-256`, redelivered on a non-200 answer; each accepted
message gets `sent` and `delivered` statuses (and `read` once the client "reads" it), which can
be delivered out of order and twice (`shuffle_statuses`, `duplicate_statuses`), as Meta does.

Simplifications: one business number; media uploads are kept in memory and never expire; no
pricing or conversation objects in statuses; no group messaging.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import page, serve
from gateway.sandbox.spec import Reading, load_spec

log = logging.getLogger(__name__)

JSON = dict[str, Any]
SIGNATURE_HEADER = "X-Hub-Signature-256"
STATIC_DIR = Path(__file__).parent / "static"
WINDOW_SECONDS = 24 * 3600
DISPLAY_NUMBER = "15550100200"
WABA_ID = "100200300400500"
# The templates a salon registers for Frontdesk (README, WhatsApp): (name, language) -> the
# number of body parameters.
DEFAULT_TEMPLATES = {
    ("frontdesk_reply_waiting", "ru"): 1,
    ("frontdesk_reply_waiting", "en"): 1,
    ("frontdesk_booking_confirmed", "ru"): 2,
    ("frontdesk_booking_confirmed", "en"): 2,
    ("frontdesk_reminder", "ru"): 2,
    ("frontdesk_reminder", "en"): 2,
}
TEMPLATE_TEXT = {
    "ru": "Салон «{0}» ответил на ваше сообщение. Нажмите «Продолжить», чтобы прочитать.",
    "en": "{0} has replied to your message. Tap Continue to read it.",
}
# The registered texts of the notice templates, and their three quick-reply buttons (whose
# payloads the sender sets per message).
NOTICE_TEXT = {
    "frontdesk_booking_confirmed": {
        "ru": "Вы записаны: {0}, {1}.",
        "en": "You are booked: {0} on {1}.",
    },
    "frontdesk_reminder": {
        "ru": "Напоминаем о визите: {0}, {1}. Вы придёте?",
        "en": "A reminder of your visit: {0} on {1}. Will you come?",
    },
}
NOTICE_BUTTONS = {
    "ru": ("Приду", "Перенести", "Отменить"),
    "en": ("I'll come", "Reschedule", "Cancel"),
}
TEMPLATE_BUTTON = {"ru": "Продолжить", "en": "Continue"}
# Meta's "Supported media types" (cloud-api/reference/media#supported-media-types): the largest
# file per kind (images 5 MB; audio and video 16 MB; documents 100 MB; stickers 500 KB).
MB = 1024 * 1024
MEDIA_LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "application": 100 * MB}
MEDIA_LIMITS |= {"text": 100 * MB, "image/webp": 500 * 1024}
# Which uploaded types a message of each kind takes (the same page, per message type).
MESSAGE_MEDIA = {
    "image": ("image/jpeg", "image/png"),
    "audio": ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    "video": ("video/mp4", "video/3gpp"),
}
# Meta's "Supported media types" for uploads.
MEDIA_TYPES = frozenset(
    {
        "text/plain",
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "image/jpeg",
        "image/png",
        "image/webp",
        "audio/aac",
        "audio/amr",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "video/mp4",
        "video/3gpp",
    }
)


class GraphError(Exception):
    """An error answer of the Graph API."""

    def __init__(self, code: int, message: str, status: int = 400, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or message

    def response(self) -> web.Response:
        error = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
        return web.json_response({"error": error}, status=self.status)


# The spec's template button `index` pattern refuses Meta's own example ("0") and its own
# description ("Position index of the button (0-9)"): Meta does not apply it.
_META_READING = Reading(unchecked_patterns=frozenset({"^[2-6, 11-14]$"}))


def _invalid(details: str) -> GraphError:
    return GraphError(100, "(#100) Invalid parameter", details=details)


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the sandbox accepted (`to` is the phone number or business-scoped id)."""

    wamid: str
    to: str
    body: JSON
    at: float

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))


@dataclass(slots=True)
class _Client:
    key: str  # the phone number (wa_id), or the business-scoped id when there is none
    name: str
    wa_id: str | None
    bsuid: str | None
    last_inbound: float = 0.0


class WhatsAppSandbox:
    """The Cloud API and Meta's webhook deliveries, in memory.

    Test knobs: `throttle(times, code)` (the next sends fail with 130429 or 131056),
    `window_errors` ("status": 131047 in a failed status, "sync": a Graph error at once),
    `shuffle_statuses`, `duplicate_statuses`, `auto_statuses` (on: sent and delivered follow
    each message), `templates`, `clock` (unix seconds; tests move it to close windows).
    """

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
        self._clients: dict[str, _Client] = {}
        self._bookings = bookings
        self._ids = itertools.count(1)
        self._session: ClientSession | None = None
        self._webhook_url = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._page_html: str | None = None
        self._closed = False

    # -- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_post("/{version}/{number}/messages", self._messages)
        app.router.add_post("/{version}/{number}/media", self._upload)
        app.router.add_get("/{version}/{number}", self._number)
        app.router.add_get("/_media/{id}", self._media_download)
        app.router.add_get("/", self._page)
        app.router.add_get("/_sandbox/messages", self._page_messages)
        app.router.add_post("/_sandbox/say", self._page_act)
        app.router.add_post("/_sandbox/tap", self._page_act)
        app.router.add_get("/_sandbox/bookings", self._page_bookings)
        app.on_cleanup.append(self._on_cleanup)
        if self._page_html is None:
            self._page_html = (STATIC_DIR / "whatsapp.html").read_text(encoding="utf-8")
        return app

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        return await serve(self.app(), host, port)

    async def close(self) -> None:
        # Nothing more goes out: a call still arriving must not open a session nobody closes.
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close()

    # -- test helpers ---------------------------------------------------------------------

    def throttle(self, times: int = 1, code: int = 130429) -> None:
        """The next `times` sends fail with a rate-limit error (130429 or 131056)."""
        self._throttle += [code] * times

    def sent_to(self, to: str) -> list[Sent]:
        return [message for message in self.sent if message.to == to]

    async def settle(self) -> None:
        """Wait until every status webhook in flight is delivered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- subscription ---------------------------------------------------------------------

    async def subscribe(self, url: str, verify_token: str) -> None:
        """Register the callback URL as Meta does: a GET with a challenge it must echo."""
        challenge = secrets.token_hex(8)
        query = {"hub.mode": "subscribe", "hub.verify_token": verify_token}
        async with self._http().get(url, params=query | {"hub.challenge": challenge}) as answer:
            text = await answer.text()
            if answer.status != 200 or text != challenge:
                raise RuntimeError(f"callback verification failed: HTTP {answer.status}")
        self._webhook_url = url

    # -- the Graph API --------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            raise GraphError(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        if request.match_info["number"] != self.phone_number_id:
            raise GraphError(
                100, "Unsupported post request. Object does not exist", details="unknown number"
            )

    async def _messages(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
            try:
                body = await request.json()
            except ValueError:
                raise _invalid("the body is not JSON") from None
            if not isinstance(body, dict):
                raise _invalid("the body is not a JSON object")
            if body.get("status") == "read":
                return web.json_response(self._read(body))
            return web.json_response(await self._send(body))
        except GraphError as exc:
            self.errors.append((exc.code, exc.details))
            log.info("sandbox refused a request: %s %s", exc.code, exc.details)
            return exc.response()

    def _read(self, body: JSON) -> JSON:
        unknown = set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}
        if body.get("messaging_product") != "whatsapp" or unknown:
            raise _invalid(f"unexpected read receipt fields {sorted(unknown)}")
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id.startswith("wamid."):
            raise _invalid("message_id must be the wamid of a message the client sent")
        typing = body.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            raise _invalid("typing_indicator.type must be text")
        self.reads.append(message_id)
        return {"success": True}

    async def _send(self, body: JSON) -> JSON:
        address = body.get("to") or body.get("recipient")
        if not isinstance(address, str) or not address:
            raise _invalid("to (or recipient, for a business-scoped id) is required")
        if self._spec is not None:
            checked = {k: v for k, v in body.items() if k != "recipient"} | {"to": address}
            problems = self._spec.problems(checked, {"$ref": "Message"}, _META_READING)
            if problems:
                raise _invalid("; ".join(p.describe("message") for p in problems[:5]))
        if body.get("messaging_product") != "whatsapp":
            raise _invalid("messaging_product must be whatsapp")
        kind = body.get("type")
        _check_limits(body)
        if kind == "template":
            self._check_template(body["template"])
        elif kind in ("document", "image", "audio", "video"):
            media = body[kind]
            if "id" in media and media["id"] not in self.media:
                raise GraphError(131053, "Media upload error", details="unknown media id")
            uploaded = self.media.get(str(media.get("id")))
            takes = MESSAGE_MEDIA.get(kind)
            if uploaded is not None and takes is not None and uploaded[1] not in takes:
                raise _invalid(f"a {kind} message does not take {uploaded[1]} media")
        if self._throttle:
            code = self._throttle.pop(0)
            raise GraphError(code, "Rate limit hit", details=f"sandbox throttle {code}")
        client = self._client_for(address)
        wamid = f"wamid.{secrets.token_urlsafe(24)}"
        in_window = client is not None and self.clock() - client.last_inbound < WINDOW_SECONDS
        if kind != "template" and not in_window:
            details = "Message failed to send because more than 24 hours have passed"
            if self.window_errors == "sync":
                raise GraphError(131047, "Re-engagement message", details=details)
            self._statuses(wamid, address, [("failed", 131047, details)])
            return _accepted(address, wamid)
        self.sent.append(Sent(wamid, address, copy.deepcopy(body), time.monotonic()))
        self.history.append((client.key if client else address, "business", _for_page(body)))
        if self.auto_statuses:
            self._statuses(wamid, address, [("sent", 0, ""), ("delivered", 0, "")])
        return _accepted(address, wamid)

    def _check_template(self, template: JSON) -> None:
        name = str(template.get("name", ""))
        language = str((template.get("language") or {}).get("code", ""))
        wanted = self.templates.get((name, language))
        if wanted is None:
            raise GraphError(
                132001,
                "Template name does not exist in the translation",
                details=f"template name ({name}) does not exist in {language}",
            )
        given = sum(
            len(component.get("parameters", []))
            for component in template.get("components", [])
            if component.get("type") == "body"
        )
        if given != wanted:
            raise GraphError(
                132000,
                "Number of parameters does not match the expected number of params",
                details=f"body: number of localizable_params ({given}) does not match the "
                f"expected number of params ({wanted})",
            )

    async def _number(self, request: web.Request) -> web.Response:
        """The business number's profile (what `frontdesk check` reads), or a client's media
        (`GET /{media_id}`: where to download it)."""
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            return GraphError(190, "Invalid OAuth access token", status=401).response()
        media_id = request.match_info["number"]
        if media_id in self.client_media:
            _name, mime_type, data = self.client_media[media_id]
            base = f"{request.scheme}://{request.host}"
            return web.json_response(
                {
                    "url": f"{base}/_media/{media_id}",
                    "mime_type": mime_type,
                    "file_size": len(data),
                    "id": media_id,
                    "messaging_product": "whatsapp",
                }
            )
        if media_id != self.phone_number_id:
            return _invalid(f"object {media_id} does not exist").response()
        return web.json_response(
            {
                "display_phone_number": f"+{DISPLAY_NUMBER}",
                "verified_name": "Frontdesk Demo Salon",
                "id": self.phone_number_id,
            }
        )

    async def _media_download(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.access_token}".encode()):
            return web.Response(status=401)
        found = self.client_media.get(request.match_info["id"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[2], content_type=found[1])

    async def client_sends_file(
        self, key: str, kind: str, data: bytes, mime_type: str, caption: str = ""
    ) -> JSON:
        """The client sends a photo, a voice message or a document: kept for download."""
        media_id = str(next(self._ids) + 800_000_000)
        self.client_media[media_id] = (kind, mime_type, data)
        content: JSON = {"id": media_id, "mime_type": mime_type}
        if caption:
            content["caption"] = caption
        return await self.client_sends(key, kind, content)

    async def _upload(self, request: web.Request) -> web.Response:
        try:
            self._authorize(request)
            form = await request.post()
            file = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not isinstance(file, web.FileField):
                raise _invalid("messaging_product=whatsapp and a file are required")
            # `type` is required: "Type of media file being uploaded" (Meta, "Upload media").
            if not isinstance(form.get("type"), str) or not form.get("type"):
                raise _invalid("type is required: the uploaded file's MIME type")
            if file.content_type not in MEDIA_TYPES:
                raise GraphError(
                    131053,
                    "Media upload error",
                    details=f"Unsupported file type: {file.content_type}",
                )
            data = file.file.read()
            limit = MEDIA_LIMITS.get(
                file.content_type, MEDIA_LIMITS[file.content_type.split("/")[0]]
            )
            if len(data) > limit:
                raise GraphError(
                    131053, "Media upload error", details=f"file is over {limit // 1024} KB"
                )
            media_id = str(next(self._ids) + 900_000_000)
            self.media[media_id] = (file.filename, file.content_type, data)
            return web.json_response({"id": media_id})
        except GraphError as exc:
            self.errors.append((exc.code, exc.details))
            return exc.response()

    def _client_for(self, address: str) -> _Client | None:
        return next(
            (c for c in self._clients.values() if address in (c.wa_id, c.bsuid)),
            None,
        )

    # -- the client's side: notifications to the webhook ----------------------------------

    def client(
        self, wa_id: str | None = "79161234567", *, name: str = "Anna", bsuid: str | None = None
    ) -> str:
        """Make (or find) a client; returns their key, the address the gateway uses."""
        key = wa_id or bsuid
        if key is None:
            raise ValueError("a client needs a phone number or a business-scoped id")
        if key not in self._clients:
            self._clients[key] = _Client(key, name, wa_id, bsuid)
        return key

    def _message(self, key: str, kind: str, content: JSON, context: str | None = None) -> JSON:
        client = self._clients[key]
        message: JSON = {
            "id": f"wamid.{secrets.token_urlsafe(24)}",
            "timestamp": str(int(self.clock())),
            "type": kind,
            kind: content,
        }
        if client.wa_id:
            message["from"] = client.wa_id
        if client.bsuid:
            message["from_user_id"] = client.bsuid
        if context:
            message["context"] = {"from": DISPLAY_NUMBER, "id": context}
        return message

    async def client_says(self, key: str, text: str) -> JSON:
        return await self.deliver(key, [self._message(key, "text", {"body": text})])

    async def client_sends(self, key: str, kind: str, content: JSON) -> JSON:
        """Any other kind of message: image, location, contacts, reaction, ..."""
        return await self.deliver(key, [self._message(key, kind, content)])

    async def client_taps(self, key: str, choice: str) -> JSON:
        """The client taps the button or list row `choice` of the latest message offering it."""
        for sent in reversed(self.sent_to(key)):
            found = _option(sent.body, choice)
            if found is None:
                continue
            kind, title, description = found
            if kind == "quick_reply":
                content = {"payload": choice, "text": title}
                return await self.deliver(key, [self._message(key, "button", content, sent.wamid)])
            reply = {"id": choice, "title": title} | (
                {"description": description} if description else {}
            )
            interactive = {"type": kind, kind: reply}
            return await self.deliver(
                key, [self._message(key, "interactive", interactive, sent.wamid)]
            )
        raise LookupError(f"no message to {key} offers {choice!r}")

    def options(self, key: str) -> list[tuple[str, str]]:
        """The (id, title) pairs the latest interactive message to the client offers."""
        for sent in reversed(self.sent_to(key)):
            found = _options(sent.body)
            if found:
                return found
        return []

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
        task = asyncio.create_task(self._post_statuses(statuses))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
                try:
                    async with self._http().post(
                        self._webhook_url, data=raw, headers=headers
                    ) as answer:
                        await answer.read()
                        status = answer.status
                except (ClientError, TimeoutError):
                    status = 0
                self.deliveries.append((what, status))
                if status == 200:
                    break
        return status

    def _http(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=30))
        return self._session

    # -- the chat page --------------------------------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        return page(self._page_html or "")

    async def _page_messages(self, request: web.Request) -> web.Response:
        key = request.query.get("client", "")
        after = int(request.query.get("after", "0") or 0)
        messages = [
            {"seq": index + 1, "from": who, "body": body}
            for index, (client, who, body) in enumerate(self.history)
            if client == key and index >= after
        ]
        return web.json_response({"messages": messages, "next": len(self.history)})

    async def _page_act(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            number = str(body.get("wa_id") or "").strip().lstrip("+")
            if not number.isdigit():
                raise ValueError("wa_id must be a phone number")
            key = self.client(number, name=str(body.get("name") or "Anna")[:64])
            if request.path.endswith("/say"):
                text = str(body.get("text") or "").strip()
                if not text:
                    raise ValueError("an empty message cannot be sent")
                await self.client_says(key, text[:4096])
            else:
                await self.client_taps(key, str(body["id"]))
        except RuntimeError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except (LookupError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"ok": True})

    async def _page_bookings(self, _request: web.Request) -> web.Response:
        return web.json_response(self._bookings() if self._bookings is not None else None)


def _accepted(address: str, wamid: str) -> JSON:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": address, "wa_id": address}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }


def _check_limits(body: JSON) -> None:
    """What Meta refuses whether or not the spec file is at hand."""
    kind = body.get("type")
    media = body.get(kind) if kind in ("image", "document", "video", "audio", "sticker") else None
    if isinstance(media, dict) and "caption" in media:
        # Captions: "Do not use with audio or sticker media" (Meta, "Media messages"); at most
        # 1024 characters.
        if kind in ("audio", "sticker"):
            raise _invalid(f"a {kind} message takes no caption")
        if len(str(media["caption"])) > 1024:
            raise _invalid("caption must be at most 1024 characters")
    if kind == "text":
        text = (body.get("text") or {}).get("body", "")
        if not text or len(text) > 4096:
            raise _invalid("text.body must be 1 to 4096 characters")
    if kind != "interactive":
        return
    interactive = body.get("interactive") or {}
    text = (interactive.get("body") or {}).get("text", "")
    if not text or len(text) > 1024:
        raise _invalid("interactive.body.text must be 1 to 1024 characters")
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        titles = [b.get("reply", {}).get("title", "") for b in buttons]
        ids = [b.get("reply", {}).get("id", "") for b in buttons]
        if not 1 <= len(buttons) <= 3:
            raise GraphError(131009, "Parameter value is not valid", details="1 to 3 buttons")
        if any(not t or len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
            raise GraphError(
                131009, "Parameter value is not valid", details="button titles: unique, 1-20"
            )
        if any(not i or len(i) > 256 for i in ids) or len(set(ids)) != len(ids):
            raise _invalid("button ids: unique, 1 to 256 characters")
    elif interactive.get("type") == "list":
        label = action.get("button", "")
        rows = [row for section in action.get("sections") or [] for row in section.get("rows", [])]
        if not label or len(label) > 20:
            raise _invalid("action.button must be 1 to 20 characters")
        if not 1 <= len(rows) <= 10:
            raise GraphError(131009, "Parameter value is not valid", details="1 to 10 rows")
        for row in rows:
            if not row.get("title") or len(row["title"]) > 24:
                raise _invalid("row titles must be 1 to 24 characters")
            if len(row.get("description", "")) > 72:
                raise _invalid("row descriptions must be at most 72 characters")
            if not row.get("id") or len(row["id"]) > 200:
                raise _invalid("row ids must be 1 to 200 characters")
        if len({row["id"] for row in rows}) != len(rows):
            raise _invalid("row ids must be unique")


def _options(body: JSON) -> list[tuple[str, str]]:
    interactive = body.get("interactive") or {}
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
    if interactive.get("type") == "list":
        return [
            (row["id"], row["title"])
            for section in action.get("sections", [])
            for row in section.get("rows", [])
        ]
    return []


def _option(body: JSON, choice: str) -> tuple[str, str, str] | None:
    interactive = body.get("interactive") or {}
    kind = {"button": "button_reply", "list": "list_reply"}.get(interactive.get("type", ""))
    if kind is not None:
        action = interactive.get("action") or {}
        rows = [row for s in action.get("sections", []) for row in s.get("rows", [])]
        for option in [b["reply"] for b in action.get("buttons", [])] + rows:
            if option["id"] == choice:
                return kind, option["title"], option.get("description", "")
    if body.get("type") == "template":
        for payload, label in _template_buttons(body["template"]):
            if choice == payload:
                return "quick_reply", label, ""
    return None


def _template_buttons(template: JSON) -> list[tuple[str, str]]:
    """(payload, label) of a template's quick-reply buttons as the client sees them."""
    language = template["language"]["code"]
    if template.get("name") not in NOTICE_TEXT:
        button = TEMPLATE_BUTTON.get(language, "Continue")
        return [(button, button)]
    labels = NOTICE_BUTTONS.get(language, NOTICE_BUTTONS["en"])
    found = []
    for component in template.get("components", []):
        if component.get("type") == "button" and component.get("sub_type") == "quick_reply":
            index = int(component.get("index", 0))
            payload = (component.get("parameters") or [{}])[0].get("payload", "")
            if index < len(labels):
                found.append((str(payload), labels[index]))
    return found


def _what(payload: JSON) -> str:
    value = payload["entry"][0]["changes"][0]["value"]
    if "statuses" in value:
        return "status:" + ",".join(s["status"] for s in value["statuses"])
    return "messages:" + ",".join(m["type"] for m in value["messages"])


def _for_page(body: JSON) -> JSON:
    """A sent message as the chat page shows it; templates with their registered text."""
    if body.get("type") != "template":
        return body
    template = body["template"]
    language = template["language"]["code"]
    values = [
        parameter.get("text", "")
        for component in template.get("components", [])
        if component.get("type") == "body"
        for parameter in component.get("parameters", [])
    ]
    texts = NOTICE_TEXT.get(template.get("name", ""), TEMPLATE_TEXT)
    text = texts.get(language, texts["en"]).format(*values, "")
    buttons = [{"id": payload, "title": label} for payload, label in _template_buttons(template)]
    return {"type": "template", "text": text, "buttons": buttons}
