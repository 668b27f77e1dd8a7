"""The Bot API's side of the Telegram stand-in: the token, each call's checks (the spec, the
limits, injected failures) and the methods a bot calls, over the chats and messages it keeps."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.sandbox.base import StandIn
from gateway.sandbox.flood import Bucket, Limits, SlidingWindow, whole_seconds
from gateway.sandbox.spec import BOT_API_PATH, Spec, bot_api_schema, load_spec
from gateway.sandbox.telegram.rules import (
    _ACCEPTED,
    _BOT_API_READING,
    _CHAT_ACTIONS,
    _FALLBACK_TYPES,
    _IMAGE_MAGIC,
    _SECRET_TOKEN,
    _TOKEN,
    BOT_USERNAME,
    JSON,
    NOT_MODIFIED,
    PHOTO_MAX,
    QUERY_INVALID,
    UPLOAD_MAX,
    ApiError,
    SentCall,
    Upload,
    _bad,
    _check_markup,
    _inline,
    _now,
    _visible_text,
)


class BotApi(StandIn):
    """The Bot API for one bot token (see `TelegramSandbox` for the attributes tests read)."""

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
        client_language: str = "en",
    ) -> None:
        super().__init__()
        match = _TOKEN.match(token)
        # Other sandboxes' pages, (title, URL), shown beside this one: the demo's WhatsApp,
        # staff, notifications and analytics panes, each one the page can show or hide.
        self._beside = tuple(beside)
        # The demo's salon calendar, listed beside the chat (the Cal.com stand-in's bookings),
        # on the salon's clock (`calendar_zone`, an IANA zone) whatever the browser's zone is.
        self._bookings = bookings
        self._calendar_zone = calendar_zone
        # The language the page's client starts in (its Language switch): a Russian salon's
        # chat opens as a Russian-speaking client's would.
        self._client_language = client_language
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
        # Off unless a test or the broadcast bench turns it on (`enforce_limits`).
        self.limits: Limits | None = None
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

    def enforce_limits(
        self, per_bot: int = 30, per_chat: float = 1.0, chat_burst: int = 3
    ) -> Limits:
        """Refuse messages over the flood limits with Telegram's 429 (see gateway/sandbox/
        flood.py for the model): `per_bot` in any second, `per_chat` a second with bursts of
        `chat_burst`."""
        self.limits = Limits(SlidingWindow(per_bot), Bucket(per_chat, chat_burst))
        return self.limits

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
            self._check_flood(method, params)
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

    def _check_flood(self, method: str, params: JSON) -> None:
        """Messages over the limits get the Bot API's 429: "Too Many Requests: retry after N"
        with `parameters.retry_after` N in whole seconds (the shape in ../shared/contracts/
        chatwoot-whatsapp-telegram.md §3.6-3.7; aiogram's TelegramRetryAfter reads it). The
        FAQ's limits are about messages sent, so only the send methods count."""
        if self.limits is None or not method.startswith("send") or method == "sendChatAction":
            return
        _which, wait = self.limits.wait(str(params.get("chat_id")))
        if wait > 0:
            seconds = whole_seconds(wait)
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)

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
