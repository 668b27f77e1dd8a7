"""The Bot API's rules the stand-in enforces with or without the spec file: limits, markup,
HTML, error answers, and the records of what the bot sent and uploaded."""

from __future__ import annotations

import copy
import html
import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.sandbox.spec import Reading

JSON = dict[str, Any]
BOT_USERNAME = "frontdesk_sandbox_bot"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
STATIC_DIR = Path(__file__).parent.parent / "static"
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
