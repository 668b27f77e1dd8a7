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

import secrets

from aiohttp import web

from gateway.sandbox.pages import page, serve
from gateway.sandbox.whatsapp.cloud_api import CloudApi
from gateway.sandbox.whatsapp.rules import (
    DISPLAY_NUMBER,
    JSON,
    STATIC_DIR,
    _Client,
    _option,
    _options,
)


class WhatsAppSandbox(CloudApi):
    """The Cloud API and Meta's webhook deliveries, in memory.

    Test knobs: `throttle(times, code)` (the next sends fail with 130429 or 131056),
    `enforce_limits(...)` (refuse sends over Meta's throughput and pair rate, gateway/sandbox/
    flood.py; off by default),
    `window_errors` ("status": 131047 in a failed status, "sync": a Graph error at once),
    `shuffle_statuses`, `duplicate_statuses`, `auto_statuses` (on: sent and delivered follow
    each message), `templates`, `clock` (unix seconds; tests move it to close windows).
    """

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
