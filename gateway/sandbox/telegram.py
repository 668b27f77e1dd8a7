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
import contextlib
import copy
import html
import itertools
import json
import logging
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from gateway.sandbox.pages import page, serve
from gateway.sandbox.spec import BOT_API_PATH, Reading, Spec, bot_api_schema, load_spec

log = logging.getLogger(__name__)

JSON = dict[str, Any]
BOT_USERNAME = "frontdesk_sandbox_bot"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
STATIC_DIR = Path(__file__).parent / "static"
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)

# Bot API 10.1 (telegram-bot-api.json): sendPhoto "The photo must be at most 10 MB in size";
# sendDocument "Bots can currently send files of any type of up to 50 MB in size".
PHOTO_MAX = 10 * 1024 * 1024
UPLOAD_MAX = 50 * 1024 * 1024
# What an uploaded photo must be for Telegram to process it (it re-encodes photos): JPEG, PNG,
# WebP or GIF by their magic bytes; anything else fails with "Bad Request: IMAGE_PROCESS_FAILED"
# (as reported in TelegramBot/Api#302, pengrad/java-telegram-bot-api#337). The wording for a
# photo over 10 MB is not documented; the sandbox's is its own.
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")

_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]+$")
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?")
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)[^<>]*>")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_HTML_TAGS = _words(
    "b strong i em u ins s strike del span a code pre blockquote tg-spoiler tg-emoji"
)
_BUTTON_ACTIONS = _words(
    "url callback_data web_app login_url switch_inline_query switch_inline_query_current_chat "
    "switch_inline_query_chosen_chat copy_text callback_game pay"
)
_CHAT_ACTIONS = _words(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document "
    "choose_sticker find_location record_video_note upload_video_note"
)
# How form values are decoded when no spec file is at hand (other fields stay strings).
_FALLBACK_TYPES: dict[str, list[str]] = {
    "chat_id": ["Integer", "String"],
    "reply_markup": ["InlineKeyboardMarkup", "ReplyKeyboardMarkup", "ReplyKeyboardRemove"],
    "entities": ["Array of MessageEntity"],
    "allowed_updates": ["Array of String"],
    **{name: ["Integer"] for name in ("message_id", "cache_time", "max_connections")},
    **{name: ["Boolean"] for name in ("drop_pending_updates", "show_alert", "protect_content")},
    "disable_notification": ["Boolean"],
}
# Settings calls a bot makes at startup: accepted, recorded and answered `true`.
_ACCEPTED = ("setMyCommands", "deleteMyCommands", "setMyDescription", "setMyShortDescription")


@dataclass(frozen=True, slots=True)
class SentCall:
    """A Bot API call the sandbox accepted; `at` is `time.monotonic()`."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class Upload:
    """A file the bot uploaded with multipart/form-data."""

    filename: str
    content_type: str
    data: bytes


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# An InputFile field takes a file posted as multipart/form-data
# (core.telegram.org/bots/api#sending-files).
_BOT_API_READING = Reading(is_file=lambda value: isinstance(value, Upload))


def _visible_text(text: str, parse_mode: Any) -> str:
    """The text a client sees: HTML markup checked and stripped, entities unescaped."""
    if not isinstance(parse_mode, str) or parse_mode.upper() != "HTML":
        return text
    for tag in _HTML_TAG.finditer(text):
        if tag.group(2).lower() not in _HTML_TAGS:
            offset = len(text[: tag.start()].encode())
            raise _bad(
                f'can\'t parse entities: Unsupported start tag "{tag.group(2)}" at byte '
                f"offset {offset}"
            )
    plain = _HTML_TAG.sub("", text)
    if "<" in plain:
        raise _bad("can't parse entities: Can't find end of the tag")
    return html.unescape(plain)


def _check_markup(markup: Any) -> None:
    if isinstance(markup, str):
        raise _bad("can't parse reply keyboard markup JSON object")
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse inline keyboard markup: expected an Array of Array")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad("can't parse inline keyboard button: Text must be a String")
        data = button.get("callback_data")
        if data is not None and not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
            raise _bad("BUTTON_DATA_INVALID")
        if sum(action in button for action in _BUTTON_ACTIONS) != 1:
            raise _bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )


def _inline(markup: Any) -> JSON | None:
    """Telegram echoes only inline keyboards in the Message it returns."""
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return copy.deepcopy(markup)
    return None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _now() -> int:
    return int(time.time())


class TelegramSandbox:
    """The Bot API for one bot token, plus the Telegram side that delivers updates to its webhook.

    Attributes for tests: `sent` (accepted calls), `errors` ((method, error_code, description) of
    every error answer), `deliveries` ((update_id, HTTP status, 0 if unreachable) per webhook
    attempt), `files` (uploads by file_id), `delay`, `redelivery_attempts`, `redelivery_backoff`.
    """

    def __init__(
        self,
        token: str,
        spec_path: Path | None = None,
        *,
        redelivery_attempts: int = 3,
        redelivery_backoff: float = 0.2,
        webhook_timeout: float = 60.0,
        bookings: Callable[[], list[JSON]] | None = None,
        beside: Sequence[tuple[str, str]] = (),
        calendar_zone: str | None = None,
    ) -> None:
        match = _TOKEN.match(token)
        # Other sandboxes' pages, (title, URL), shown beside this one: the demo's WhatsApp,
        # staff, notifications and analytics panes, each one the page can show or hide.
        self._beside = tuple(beside)
        # The demo's salon calendar, listed beside the chat (the Cal.com stand-in's bookings),
        # on the salon's clock (`calendar_zone`, an IANA zone) whatever the browser's zone is.
        self._bookings = bookings
        self._calendar_zone = calendar_zone
        if match is None:
            raise ValueError("not a bot token: expected <digits>:<secret>")
        self._token = token
        self.bot_user: JSON = {
            "id": int(match.group(1)),
            "is_bot": True,
            "first_name": "Frontdesk Sandbox",
            "username": BOT_USERNAME,
        }
        use_spec = spec_path is not None and spec_path.is_file()
        self._spec = load_spec(spec_path) if spec_path is not None and use_spec else Spec({})
        self.validating = use_spec
        self.redelivery_attempts = redelivery_attempts
        self.redelivery_backoff = redelivery_backoff
        self.webhook_timeout = webhook_timeout
        self.delay = 0.0
        self.sent: list[SentCall] = []
        self.errors: list[tuple[str, int, str]] = []
        self.deliveries: list[tuple[int, int]] = []
        self.files: dict[str, Upload] = {}
        self._keyboards: dict[int, JSON] = {}

        self._failures: defaultdict[str, deque[ApiError]] = defaultdict(deque)
        self._update_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._clients: dict[int, JSON] = {}
        self._messages: dict[tuple[int, int], JSON] = {}  # the bot's messages, in sending order
        self._seqs: dict[tuple[int, int], int] = {}
        self._toasts: defaultdict[int, list[JSON]] = defaultdict(list)
        self._chat_instances: dict[int, str] = {}
        self._queries: dict[str, int] = {}  # callback query id -> chat id
        self._answered: set[str] = set()
        self._chat_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._session: ClientSession | None = None
        self._page_html: str | None = None
        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._allowed_updates: list[str] | None = None
        self._max_connections = 40
        self._pending = 0
        self._last_error: tuple[int, str] | None = None

        self._handlers: dict[str, Callable[[JSON], Any]] = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            **dict.fromkeys(_ACCEPTED, lambda _params: True),
        }
        described = (template.removeprefix(BOT_API_PATH) for template in self._spec.paths)
        self._names = {name.lower(): name for name in (*described, *self._handlers)}

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

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
        return await serve(self.app(), host, port)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        await self.close()

    # -- test helpers ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with this error (429 gets a retry_after)."""
        name = self._names.get(method.lower())
        if name is None:
            raise ValueError(f"unknown Bot API method: {method}")
        if error_code == 429 and retry_after is None:
            retry_after = 1
        self._failures[name].extend(
            ApiError(error_code, description, retry_after) for _ in range(times)
        )

    def messages_for(self, chat_id: int) -> list[JSON]:
        """The Messages the bot sent to this chat, in order, as they are after edits."""
        return [copy.deepcopy(m) for (chat, _), m in self._messages.items() if chat == chat_id]

    # -- the Bot API ----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        token = request.match_info["token"].encode()
        if not secrets.compare_digest(token, self._token.encode()):
            return ApiError(401, "Unauthorized").response()
        method = self._names.get(request.match_info["method"].lower())
        if method is None:
            return ApiError(404, "Not Found: method not found").response()
        try:
            if self._failures[method]:
                raise self._failures[method].popleft()
            params = await self._read_params(request, method)
            self._validate(method, params)
            self._check_limits(method, params)
            handler = self._handlers.get(method)
            if handler is None:
                raise ApiError(501, f"Not Implemented: the sandbox does not emulate {method}")
            result = handler(params)
        except ApiError as exc:
            self.errors.append((method, exc.error_code, exc.description))
            return exc.response()
        self.sent.append(SentCall(method, params, time.monotonic()))
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request, method: str) -> JSON:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise _bad("can't parse JSON object")
                raw.update(body)
            else:  # urlencoded or multipart; other content types read as empty
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        uploads[key] = Upload(value.filename, value.content_type, value.file.read())
                    else:
                        raw[key] = value if isinstance(value, str) else bytes(value).decode()
        params: JSON = {}
        for key, value in raw.items():
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in uploads:
                params[key] = uploads.pop(value[9:])
            else:
                params[key] = self._decode(method, key, value) if isinstance(value, str) else value
        for key, upload in uploads.items():  # a file posted under the field's own name
            params.setdefault(key, upload)
        return params

    def _decode(self, method: str, name: str, value: str) -> Any:
        """Form values are strings; a non-String field holds JSON (numbers, booleans, objects)."""
        parsed = [kind for kind in self._field_types(method, name) if kind != {"type": "string"}]
        if not parsed:
            return value
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        fits = any(not self._spec.problems(decoded, kind, _BOT_API_READING) for kind in parsed)
        return decoded if fits else value

    def _field_types(self, method: str, name: str) -> list[JSON]:
        """The schemas a parameter may take, one per Bot API type (without the spec file, the
        fallback's)."""
        params = self._spec.body_schema("POST", BOT_API_PATH + method)
        if params is not None:
            field: JSON | None = params["properties"].get(name)
        else:
            field = bot_api_schema(_FALLBACK_TYPES[name]) if name in _FALLBACK_TYPES else None
        return [] if field is None else list(field.get("anyOf", [field]))

    def _validate(self, method: str, params: JSON) -> None:
        # A method takes its parameters from the query string or the body alike
        # (core.telegram.org/bots/api#making-requests): all of them are the operation's body.
        problems = self._spec.check_body("POST", BOT_API_PATH + method, params, _BOT_API_READING)
        if not problems:
            return
        first, name = problems[0], problems[0].path[0]
        if first.path == (name,) and first.keyword == "additionalProperties":
            raise _bad(f"unknown parameter {name}")
        if first.path == (name,) and first.keyword == "required":
            text = method == "sendMessage" and name == "text"
            raise _bad("message text is empty" if text else f"{name} is required")
        raise _bad(f"can't parse {name}: {first.describe('')}")

    def _check_limits(self, method: str, params: JSON) -> None:
        """The real limits, enforced with or without the spec file."""
        if method in ("sendMessage", "editMessageText"):
            text = params.get("text")
            visible = _visible_text(text, params.get("parse_mode")) if isinstance(text, str) else ""
            if not visible.strip():
                raise _bad("message text is empty")
            if len(visible) > 4096:
                raise _bad("message is too long")
        caption = params.get("caption")
        if (
            isinstance(caption, str)
            and len(_visible_text(caption, params.get("parse_mode"))) > 1024
        ):
            raise _bad("message caption is too long")
        if "reply_markup" in params:
            _check_markup(params["reply_markup"])
        if method == "answerCallbackQuery":
            answer = params.get("text")
            if isinstance(answer, str) and len(answer) > 200:
                raise _bad("MESSAGE_TOO_LONG")
        if method == "setWebhook" and "secret_token" in params:
            secret = params["secret_token"]
            if not isinstance(secret, str) or not _SECRET_TOKEN.match(secret):
                raise _bad("secret token contains unallowed characters")
        if method == "sendChatAction" and params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")

    # -- methods ------------------------------------------------------------------------------

    def _get_me(self, _params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, params: JSON) -> JSON:
        text = _visible_text(params["text"], params.get("parse_mode"))
        return self._new_message(params, {"text": text})

    def _send_photo(self, params: JSON) -> JSON:
        photo = params.get("photo")
        if isinstance(photo, Upload):
            if len(photo.data) > PHOTO_MAX:
                raise _bad("photo is too big")
            webp = photo.data[:4] == b"RIFF" and photo.data[8:12] == b"WEBP"
            if not (photo.data.startswith(_IMAGE_MAGIC) or webp):
                raise _bad("IMAGE_PROCESS_FAILED")
            file_id = "AgAC" + secrets.token_urlsafe(36)
            self.files[file_id] = photo
            size = len(photo.data)
        elif isinstance(photo, str) and photo in self.files:
            file_id, size = photo, len(self.files[photo].data)
        else:  # URLs are not fetched: only uploads and their file_ids work
            raise _bad("wrong file identifier/HTTP URL specified")
        # A PhotoSize per size Telegram keeps; the sandbox keeps the one it was given.
        sizes: list[JSON] = [
            {
                "file_id": file_id,
                "file_unique_id": secrets.token_urlsafe(12),
                "width": 1280,
                "height": 960,
                "file_size": size,
            }
        ]
        content: JSON = {"photo": sizes}
        if caption := params.get("caption"):
            content["caption"] = _visible_text(caption, params.get("parse_mode"))
        return self._new_message(params, content)

    def _send_document(self, params: JSON) -> JSON:
        doc = params.get("document")
        document: JSON = {"file_unique_id": secrets.token_urlsafe(12)}
        if isinstance(doc, Upload):
            if len(doc.data) > UPLOAD_MAX:
                raise ApiError(413, "Request Entity Too Large")
            document["file_id"] = "BQAC" + secrets.token_urlsafe(36)
            self.files[document["file_id"]] = doc
            document.update(file_name=doc.filename, mime_type=doc.content_type)
            document["file_size"] = len(doc.data)
        elif isinstance(doc, str) and doc in self.files:
            known = self.files[doc]
            document.update(file_id=doc, file_name=known.filename, mime_type=known.content_type)
            document["file_size"] = len(known.data)
        else:  # URLs are not fetched: only uploads and their file_ids work
            raise _bad("wrong file identifier/HTTP URL specified")
        content: JSON = {"document": document}
        if caption := params.get("caption"):
            content["caption"] = _visible_text(caption, params.get("parse_mode"))
        return self._new_message(params, content)

    def _edit_message_text(self, params: JSON) -> JSON:
        message = self._edit_target(params)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        text = _visible_text(params["text"], params.get("parse_mode"))
        return self._apply_edit(message, text, _inline(params.get("reply_markup")))

    def _edit_message_reply_markup(self, params: JSON) -> JSON:
        message = self._edit_target(params)
        return self._apply_edit(message, message.get("text"), _inline(params.get("reply_markup")))

    def _answer_callback_query(self, params: JSON) -> bool:
        query_id = params.get("callback_query_id")
        if not isinstance(query_id, str) or query_id not in self._queries.keys() - self._answered:
            raise _bad(QUERY_INVALID)
        self._answered.add(query_id)
        if text := params.get("text"):
            toast = {
                "seq": next(self._seq),
                "text": text,
                "show_alert": bool(params.get("show_alert")),
            }
            self._toasts[self._queries[query_id]].append(toast)
        return True

    def _send_chat_action(self, params: JSON) -> bool:
        self._chat_id(params)
        return True

    def _set_webhook(self, params: JSON) -> bool:
        url = params.get("url")
        if not isinstance(url, str):
            raise _bad("url is required")
        if not url:
            return self._delete_webhook(params)
        self._webhook_url = url
        self._webhook_secret = params.get("secret_token")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):  # omitted: the previous setting is kept
            self._allowed_updates = [str(kind) for kind in allowed]
        connections = params.get("max_connections", 40)
        self._max_connections = connections if isinstance(connections, int) else 40
        if params.get("drop_pending_updates"):
            self._pending = 0
        self._last_error = None
        return True

    def _delete_webhook(self, params: JSON) -> bool:
        self._webhook_url, self._webhook_secret = "", None
        if params.get("drop_pending_updates"):
            self._pending = 0
        return True

    def _get_webhook_info(self, _params: JSON) -> JSON:
        info: JSON = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self._pending,
        }
        if self._webhook_url:
            info["max_connections"] = self._max_connections
        if self._allowed_updates is not None:
            info["allowed_updates"] = list(self._allowed_updates)
        if self._last_error is not None:
            info["last_error_date"], info["last_error_message"] = self._last_error
        return info

    # -- chats and messages ---------------------------------------------------------------

    @staticmethod
    def _chat_id(params: JSON) -> int:
        value = params.get("chat_id")
        if value is None:
            raise _bad("chat_id is required")
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad("chat not found")
        return value

    def _chat(self, chat_id: int) -> JSON:
        client = self._clients.get(chat_id, {})
        names: JSON = {k: client[k] for k in ("first_name", "username") if k in client}
        return {"id": chat_id, "first_name": "Client", **names, "type": "private"}

    def _next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] += 1
        return self._last_message_id[chat_id]

    def _new_message(self, params: JSON, content: JSON) -> JSON:
        chat_id = self._chat_id(params)
        message: JSON = {
            "message_id": self._next_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": self._chat(chat_id),
            "date": _now(),
            **content,
        }
        if markup := _inline(params.get("reply_markup")):
            message["reply_markup"] = markup
        else:
            # A keyboard under the input field is no part of the Message Telegram returns: the
            # chat keeps it until a message removes it.
            self._track_keyboard(chat_id, params.get("reply_markup"))
        key = (chat_id, message["message_id"])
        self._messages[key] = message
        self._seqs[key] = next(self._seq)
        return copy.deepcopy(message)

    def _edit_target(self, params: JSON) -> JSON:
        if "inline_message_id" in params:
            raise _bad("message to edit not found")  # inline messages are not emulated
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _bad("message to edit not found")
        return message

    def _apply_edit(self, message: JSON, text: str | None, markup: JSON | None) -> JSON:
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise _bad(NOT_MODIFIED)
        if text is not None:
            message["text"] = text
        if markup is None:  # like Telegram: an edit without reply_markup removes the keyboard
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = _now()
        self._seqs[(message["chat"]["id"], message["message_id"])] = next(self._seq)
        return copy.deepcopy(message)

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
        return await self._deliver(chat_id, {"message": message})

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

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The keyboard the bot put under the chat's input field, until one removes it."""
        return copy.deepcopy(self._keyboards.get(chat_id))

    def _track_keyboard(self, chat_id: int, markup: Any) -> None:
        if isinstance(markup, str):
            with contextlib.suppress(ValueError):
                markup = json.loads(markup)
        if not isinstance(markup, dict):
            return
        if "keyboard" in markup:
            self._keyboards[chat_id] = markup
        elif markup.get("remove_keyboard"):
            self._keyboards.pop(chat_id, None)

    async def client_taps(self, chat_id: int, message_id: int, data: str) -> JSON:
        """The client taps the inline button carrying `data` under one of the bot's messages."""
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
        return await self._deliver(chat_id, {"callback_query": query})

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
                status, error = await self._post(url, update, headers)
                self.deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    return update
            self._pending += 1
            self._last_error = (_now(), error)
            log.warning("sandbox: update %d undelivered: %s", update["update_id"], error)
        return update

    async def _post(self, url: str, update: JSON, headers: dict[str, str]) -> tuple[int, str]:
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=self.webhook_timeout))
        try:
            async with self._session.post(url, json=update, headers=headers) as response:
                await response.read()
                status = response.status
                return status, f"Wrong response from the webhook: {status} {response.reason}"
        except (ClientError, TimeoutError) as exc:
            return 0, f"Connection failed: {type(exc).__name__}"

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
                "pending_update_count": self._pending,
                "last_error_message": self._last_error[1] if self._last_error else None,
                "counts": {"sent": len(self.sent), "errors": len(self.errors)}
                | {"deliveries": len(self.deliveries), "chats": len(self._last_message_id)},
            }
        )


def _page_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
