"""The Telegram Bot API, outbound: the outbox's messages as plain JSON calls, behind a breaker.

aiogram reads the updates (see `handlers/telegram.py`); sending goes straight over aiohttp. The
outbox already holds each call as the Bot API's own JSON, and going through aiogram's method
models would validate it, build a multipart form and parse the returned Message on every send:
most of a reply's CPU cost, for nothing the outbox uses (bench/README.md).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any

import aiohttp
import orjson
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from gateway.integrations.chatwoot.files import (
    FALLBACK,
    FETCH_MARKER,
    MB,
    ChatwootFiles,
    FileRefused,
    fallback_of,
)
from gateway.pipeline.outbox import PermanentFailure, RetryLater, Substituted
from gateway.pipeline.resilience import CircuitBreaker
from gateway.pipeline.streams import Outgoing

log = logging.getLogger("frontdesk.telegram")

# Every call is bounded; Telegram answers in well under a second when healthy.
TIMEOUT_SECONDS = 10.0
# A call's body is JSON encoded here, once (aiohttp's `json=` goes through a payload object and
# the stdlib encoder on every send). The Bot API takes JSON bodies except for uploads
# (core.telegram.org/bots/api-changelog, September 7, 2015: "You can now pass parameters using
# application/json (please note that this doesn't work for file uploads: use multipart/form-data
# to upload files)"); it was sent as JSON before too.
JSON_HEADERS = {"Content-Type": "application/json"}
# The slowest uplink an upload is given time for: 256 KiB/s (about 2 Mbit/s).
UPLOAD_BYTES_PER_SECOND = 256 * 1024

# The calls the outbox makes; anything else is a bug, not something to retry.
METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "answerCallbackQuery",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
# Marks a file in an outbox message's params, kept as base64 in the JSON: it is uploaded as
# multipart/form-data when the message is delivered.
UPLOAD_MARKER = "_upload"
# Bot API 10.1 (telegram-bot-api.json): sendPhoto "The photo must be at most 10 MB in size";
# sendDocument "Bots can currently send files of any type of up to 50 MB in size".
PHOTO_MAX = 10 * MB
DOCUMENT_MAX = 50 * MB
# What Telegram shows as a photo (it recompresses it); any other file goes as a document.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


def make_bot(token: str, api_url: str, timeout: float = TIMEOUT_SECONDS) -> Bot:
    """aiogram's Bot, for reading updates and the operator's commands (getMe, setWebhook)."""
    server = TelegramAPIServer.from_base(api_url)
    return Bot(token, session=AiohttpSession(api=server, timeout=timeout))


class TelegramUnavailable(Exception):
    """Telegram is down, slow or refuses our token: counted by the breaker, retried later."""


def is_failure(exc: BaseException) -> bool:
    """What counts against Telegram's breaker: it being down or slow, not our bad requests."""
    return isinstance(exc, TelegramUnavailable | TimeoutError | aiohttp.ClientError)


class TelegramDelivery:
    def __init__(
        self,
        token: str,
        api_url: str,
        breaker: CircuitBreaker,
        files: ChatwootFiles | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.timeout = timeout
        # The URL holds the token: it is never logged (and the log scrubber would catch it).
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self.breaker = breaker
        # Where staff files are fetched from (Chatwoot), when there is a help desk.
        self.files = files
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # The Bot API keeps no session: a jar would only be searched on every send.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, message: Outgoing) -> None:
        if message.method not in METHODS:
            raise PermanentFailure(f"unsupported method {message.method}")
        if self.files is not None and _to_fetch(message.params) is not None:
            await self._staff_file(message.params)
            return
        await self._send(message.method, message.params)

    async def _staff_file(self, params: dict[str, Any]) -> None:
        """A file staff attached: downloaded now, uploaded as a photo or a document; if it
        cannot go, the client gets the text prepared for that instead."""
        assert self.files is not None
        field, ref = _to_fetch(params) or ("", {})
        try:
            file = await self.files.fetch(ref, DOCUMENT_MAX)
            upload = {
                UPLOAD_MARKER: True,
                "filename": file.name,
                "mime_type": file.mime_type,
                "data": file.data,
            }
            call = {k: v for k, v in params.items() if k not in (field, FALLBACK)}
            if file.mime_type in PHOTO_TYPES and len(file.data) <= PHOTO_MAX:
                try:
                    await self._send("sendPhoto", call | {"photo": upload})
                    return
                except PermanentFailure as exc:
                    # Refused as a photo (its dimensions: "width and height must not exceed
                    # 10000 in total", or an image Telegram cannot process): nothing was
                    # sent, so it may go as a document instead.
                    log.info("a staff photo went as a document: %s", exc)
            try:
                await self._send("sendDocument", call | {"document": upload})
            except PermanentFailure as exc:
                raise FileRefused(f"Telegram refused the file ({exc})") from exc
        except FileRefused as exc:
            log.warning("a staff file could not go to Telegram; a text went instead")
            text = {"chat_id": params["chat_id"], "text": fallback_of(params)[:4096]}
            await self._send("sendMessage", text)
            raise Substituted(f"{exc}; the client got a text saying so") from exc

    async def _send(self, method: str, params: dict[str, Any]) -> None:
        answer = await self.breaker.call(lambda: self._call(method, params))
        if answer.get("ok"):
            return
        code = answer.get("error_code")
        description = str(answer.get("description") or "no description")
        parameters = answer.get("parameters") or {}
        if code == 429:
            # The Bot API does not say which limit a 429 is for: its ResponseParameters carry
            # only `retry_after` and `migrate_to_chat_id` (../shared/contracts/
            # telegram-bot-api.json), and the limits are a chat's ~1 a second and the bot's 30
            # a second (core.telegram.org/bots/faq, "My bot is hitting limits"; contracts
            # chatwoot-whatsapp-telegram.md §3.6). The outbox decides: the whole bot waits when
            # it was sending near its 30 (a bot-level flood), else only this chat does.
            raise RetryLater(float(parameters.get("retry_after") or 1), sender_wide=None)
        # 400 bad request, 403 blocked by the user, 404 no such chat: retrying cannot help.
        raise PermanentFailure(f"{code}: {description}")

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        files = {k: v for k, v in params.items() if isinstance(v, dict) and v.get(UPLOAD_MARKER)}
        body: dict[str, Any]
        if files:
            size = sum(len(f.get("data") or b"") for f in files.values())
            body = {"data": _form(params, files), "timeout": upload_timeout(size, self.timeout)}
        else:
            body = {"data": json_body(params), "headers": JSON_HEADERS}
        async with self._http().post(self._base + method, **body) as response:
            raw = await response.read()
            try:
                answer: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                answer = None
            if not isinstance(answer, dict) or not answer:
                answer = {"ok": False, "description": f"HTTP {response.status}"}
            read: dict[str, Any] = answer
            if response.status >= 500 or response.status == 401:
                # A 401 means the token is wrong or revoked: nothing will get through until the
                # operator fixes it, so it opens the breaker like an outage does.
                raise TelegramUnavailable(f"{response.status}: {read.get('description')}")
            return read


def json_body(params: dict[str, Any]) -> bytes:
    """A call's parameters as compact UTF-8 JSON. orjson writes the common case at a fraction of
    the stdlib's cost; what it refuses (a key that is not a string, an integer beyond 64 bits, a
    lone surrogate) the stdlib writes, as it did before."""
    try:
        return orjson.dumps(params)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(params, ensure_ascii=False).encode()


def upload_timeout(size: int, timeout: float = TIMEOUT_SECONDS) -> aiohttp.ClientTimeout:
    """An upload's time: the call's usual bound plus the file at a slow uplink's pace (a 50 MB
    document may take minutes; cut at the usual bound, it would be sent again and again, and
    each timeout would count against Telegram's breaker)."""
    return aiohttp.ClientTimeout(
        total=timeout + size / UPLOAD_BYTES_PER_SECOND, sock_connect=timeout
    )


def _form(params: dict[str, Any], files: dict[str, dict[str, Any]]) -> aiohttp.FormData:
    # Names as they are ("price list.pdf"), as browsers post them: aiohttp would otherwise
    # percent-encode them, and Telegram shows the name it is given.
    form = aiohttp.FormData(quote_fields=False)
    for name, value in params.items():
        if name in files:
            data = value["data"] if "data" in value else base64.b64decode(value["base64"])
            form.add_field(
                name,
                io.BytesIO(data),  # aiohttp refuses large bytes values; a stream is fine
                filename=str(value["filename"]),
                content_type=str(value["mime_type"]),
            )
        else:
            # Form fields are strings; objects (reply_markup) and numbers go as JSON.
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            form.add_field(name, text)
    return form


def _to_fetch(params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The field holding a staff file still to be fetched, and its reference."""
    for name, value in params.items():
        if isinstance(value, dict) and isinstance(value.get(FETCH_MARKER), dict):
            return name, value[FETCH_MARKER]
    return None
