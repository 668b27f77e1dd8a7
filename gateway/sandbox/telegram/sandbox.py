"""A faithful local stand-in of the Telegram Bot API: an aiohttp application with in-memory state.

Towards the bot it answers like api.telegram.org: the same URLs (`/bot<token>/<method>`), the
`{"ok": ...}` envelope, error codes and wordings, and the limits that matter (text length,
callback data bytes, callback queries answered once, webhook secret format). Given the vendor
spec (`telegram-bot-api.json`) it also checks every call field by field. Towards the webhook it
acts as Telegram: a client's message or tap becomes a real-shaped Update POSTed with the secret
header, and redelivered on a non-2xx answer.

Deliberate simplifications: private chats only, and any chat id may be messaged; HTML is
stripped (no entities are built) and MarkdownV2 is not parsed; the webhook URL may be plain
http on any port; an update still undelivered after the redeliveries is dropped and counted in
`pending_update_count`. Every Bot API URL carries the token, so serve it without an access
log (`serve` does).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import secrets

from aiohttp import web

from gateway.sandbox.pages import page
from gateway.sandbox.telegram.methods import BotApi
from gateway.sandbox.telegram.rules import (
    _COMMAND,
    JSON,
    SECRET_HEADER,
    STATIC_DIR,
    UPLOAD_MAX,
    _now,
    _utf16_len,
)

log = logging.getLogger(__name__)


class TelegramSandbox(BotApi):
    """The Bot API for one bot token, plus the Telegram side that delivers updates to its webhook.

    Attributes for tests: `sent` (accepted calls), `errors` ((method, error_code, description) of
    every error answer), `deliveries` ((update_id, HTTP status, 0 if unreachable) per webhook
    attempt), `files` (uploads by file_id), `delay`, `redelivery_attempts`, `redelivery_backoff`,
    and `enforce_limits(...)` (429 over the flood limits, gateway/sandbox/flood.py; off by default).
    """

    # -- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        # Room for the largest upload the Bot API takes (sendDocument's 50 MB) and its form.
        app = web.Application(client_max_size=UPLOAD_MAX + 1024 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_post("/_sandbox/say", self._page_act)
        app.router.add_post("/_sandbox/tap", self._page_act)
        app.router.add_get("/_sandbox/messages", self._page_messages)
        app.router.add_get("/_sandbox/state", self._page_state)
        app.router.add_post("/_sandbox/contact", self._page_act)
        app.router.add_get("/_sandbox/files/{file_id}", self._page_file)
        app.router.add_get("/_sandbox/bookings", self._page_bookings)
        for verb in ("GET", "POST"):
            app.router.add_route(verb, "/bot{token}/{method}", self._api)
        app.on_cleanup.append(self._on_cleanup)
        if self._page_html is None:
            self._page_html = (STATIC_DIR / "chat.html").read_text(encoding="utf-8")
        return app

    # -- the client's side: updates to the webhook ----------------------------------------

    async def client_says(
        self,
        chat_id: int,
        text: str,
        *,
        first_name: str = "Anna",
        language_code: str = "en",
        username: str | None = None,
    ) -> JSON:
        """The client writes `text`; the Update is delivered to the webhook and returned."""
        message = self._said(chat_id, text, first_name, language_code, username)
        return await self._deliver(chat_id, {"message": message})

    def says_update(self, chat_id: int, text: str, *, language_code: str = "en") -> JSON:
        """The Update of the client writing `text`, not delivered: for a caller that queues
        updates itself (the handling bench); the stand-in still knows the client."""
        message = self._said(chat_id, text, "Anna", language_code, None)
        return {"update_id": next(self._update_ids), "message": message}

    def taps_update(self, chat_id: int, message_id: int, data: str) -> JSON:
        """The Update of the client tapping a button, not delivered (see `says_update`); its
        query may be answered once, as a delivered one."""
        query = self._tapped(chat_id, message_id, data)
        return {"update_id": next(self._update_ids), "callback_query": query}

    def _said(
        self,
        chat_id: int,
        text: str,
        first_name: str,
        language_code: str,
        username: str | None,
    ) -> JSON:
        if not text:
            raise ValueError("a Telegram client cannot send an empty message")
        user = {"id": chat_id, "is_bot": False, "first_name": first_name}
        user |= {"language_code": language_code} | ({"username": username} if username else {})
        self._clients[chat_id] = user
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": dict(user),
            "chat": self._chat(chat_id),
            "date": _now(),
            "text": text,
        }
        if command := _COMMAND.match(text):
            length = _utf16_len(command.group())
            message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        return message

    async def client_shares_contact(self, chat_id: int, phone_number: str) -> JSON:
        """The client taps a `request_contact` keyboard button: Telegram sends their own
        contact card (their account's phone number) as a message."""
        if not phone_number.strip():
            raise ValueError("a shared contact needs a phone number")
        default = {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "en"}
        user = self._clients.get(chat_id, default)
        contact: JSON = {
            "phone_number": phone_number.strip(),
            "first_name": user["first_name"],
            "user_id": chat_id,
        }
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": dict(user),
            "chat": self._chat(chat_id),
            "date": _now(),
            "contact": contact,
        }
        return await self._deliver(chat_id, {"message": message})

    async def client_sends_contact_card(
        self, chat_id: int, phone_number: str, user_id: int | None = None
    ) -> JSON:
        """The client sends a contact from their address book (the attachment menu): someone
        else's card. Its `user_id` is that person's Telegram id, when they have one (Bot API,
        "Contact"), never the sender's."""
        if user_id == chat_id:
            raise ValueError("the client's own contact is client_shares_contact")
        default = {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "en"}
        user = self._clients.get(chat_id, default)
        contact: JSON = {"phone_number": phone_number.strip(), "first_name": "Someone"}
        if user_id is not None:
            contact["user_id"] = user_id
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": dict(user),
            "chat": self._chat(chat_id),
            "date": _now(),
            "contact": contact,
        }
        return await self._deliver(chat_id, {"message": message})

    async def client_taps(self, chat_id: int, message_id: int, data: str) -> JSON:
        """The client taps the inline button carrying `data` under one of the bot's messages."""
        query = self._tapped(chat_id, message_id, data)
        return await self._deliver(chat_id, {"callback_query": query})

    def _tapped(self, chat_id: int, message_id: int, data: str) -> JSON:
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise LookupError(f"the bot sent no message {message_id} to chat {chat_id}")
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        if data not in (button.get("callback_data") for row in rows for button in row):
            raise ValueError(f"message {message_id} has no button with callback data {data!r}")
        default = {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "en"}
        user = self._clients.get(chat_id, default)
        query_id = str(secrets.randbits(63))
        self._queries[query_id] = chat_id
        instance = self._chat_instances.setdefault(chat_id, str(secrets.randbits(63)))
        query: JSON = {
            "id": query_id,
            "from": dict(user),
            "message": copy.deepcopy(message),
            "chat_instance": instance,
            "data": data,
        }
        return query

    async def _deliver(self, chat_id: int, payload: JSON) -> JSON:
        if not self._webhook_url:
            raise RuntimeError(
                "no webhook is set: the bot must call setWebhook before a client can write to it"
            )
        update: JSON = {"update_id": next(self._update_ids), **payload}
        kind = next(iter(payload))
        if self._allowed_updates and kind not in self._allowed_updates:
            log.warning(
                "sandbox: update %d dropped: %s not in allowed_updates", update["update_id"], kind
            )
            return update
        async with self._chat_locks[chat_id]:  # like Telegram: one chat's updates in order
            url, secret = self._webhook_url, self._webhook_secret
            headers = {SECRET_HEADER: secret} if secret else {}
            error = ""
            for attempt in range(1 + max(0, self.redelivery_attempts)):
                if attempt:
                    await asyncio.sleep(self.redelivery_backoff)
                status, error = await self._post_update(url, update, headers)
                self.deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    return update
            self._pending += 1
            self._last_error = (_now(), error)
            log.warning("sandbox: update %d undelivered: %s", update["update_id"], error)
        return update

    async def _post_update(
        self, url: str, update: JSON, headers: dict[str, str]
    ) -> tuple[int, str]:
        """POST the Update; the status (0: no answer) and getWebhookInfo's error for it."""
        body = json.dumps(update).encode()  # as aiohttp's json= would send it
        headers = {"Content-Type": "application/json", **headers}
        answer = await self._post(url, body, headers, answer_within=self.webhook_timeout)
        if not answer.status:
            return 0, f"Connection failed: {answer.reason}"
        return answer.status, f"Wrong response from the webhook: {answer.status} {answer.reason}"

    # -- the chat page and its JSON endpoints ---------------------------------------------

    async def _page(self, _request: web.Request) -> web.Response:
        return page(self._page_html or "", frames=tuple(url for _title, url in self._beside))

    async def _page_act(self, request: web.Request) -> web.Response:
        """POST /_sandbox/say {chat_id, text, first_name, language_code} or /_sandbox/tap
        {chat_id, message_id, data}: the client writes or taps, as in a Telegram app."""
        try:
            body = await request.json()
            chat_id = int(body["chat_id"])
            if request.path.endswith("/contact"):
                update = await self.client_shares_contact(chat_id, str(body["phone_number"]))
            elif request.path.endswith("/say"):
                name = str(body.get("first_name") or "Anna")[:64]
                language = str(body.get("language_code") or "en")[:8]
                update = await self.client_says(
                    chat_id, str(body["text"]), first_name=name, language_code=language
                )
            else:
                update = await self.client_taps(chat_id, int(body["message_id"]), str(body["data"]))
        except RuntimeError as exc:
            return _page_error(409, str(exc))
        except (LookupError, TypeError, ValueError) as exc:
            return _page_error(400, f"{type(exc).__name__}: {exc}")
        statuses = [status for uid, status in self.deliveries if uid == update["update_id"]]
        status = statuses[-1] if statuses else None
        delivered = status is not None and 200 <= status < 300
        return web.json_response({"update": update, "delivered": delivered, "status": status})

    async def _page_messages(self, request: web.Request) -> web.Response:
        try:
            chat_id = int(request.query["chat_id"])
            after = int(request.query.get("after", "0"))
        except (KeyError, ValueError):
            return _page_error(400, "chat_id and after must be integers")
        messages = [
            {**copy.deepcopy(message), "seq": self._seqs[key]}
            for key, message in self._messages.items()
            if key[0] == chat_id and self._seqs[key] > after
        ]
        toasts = [toast for toast in self._toasts.get(chat_id, []) if toast["seq"] > after]
        keyboard = self.reply_keyboard(chat_id)
        return web.json_response({"messages": messages, "toasts": toasts, "keyboard": keyboard})

    async def _page_file(self, request: web.Request) -> web.Response:
        """A file the bot sent (the page's download link)."""
        upload = self.files.get(request.match_info["file_id"])
        if upload is None:
            return _page_error(404, "no such file")
        name = re.sub(r"[^\w .-]", "_", upload.filename or "file")
        return web.Response(
            body=upload.data,
            content_type=upload.content_type or "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def _page_bookings(self, _request: web.Request) -> web.Response:
        return web.json_response(self._bookings() if self._bookings is not None else None)

    async def _page_state(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "webhook_set": bool(self._webhook_url),
                "beside": [url for _title, url in self._beside],
                "panes": [{"title": title, "url": url} for title, url in self._beside],
                "calendar_zone": self._calendar_zone,
                "client_language": self._client_language,
                "pending_update_count": self._pending,
                "last_error_message": self._last_error[1] if self._last_error else None,
                "counts": {"sent": len(self.sent), "errors": len(self.errors)}
                | {"deliveries": len(self.deliveries), "chats": len(self._last_message_id)},
            }
        )


def _page_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
