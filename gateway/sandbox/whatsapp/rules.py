"""What Meta enforces with or without the spec file, its error answers, and the records of
what the business sent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.sandbox.spec import Reading

JSON = dict[str, Any]
SIGNATURE_HEADER = "X-Hub-Signature-256"
STATIC_DIR = Path(__file__).parent.parent / "static"
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
    ("frontdesk_waitlist_offer", "ru"): 3,
    ("frontdesk_waitlist_offer", "en"): 3,
    # Staff's proposal, one per number of times: who, the service, the times, until when.
    ("frontdesk_proposal_1", "ru"): 4,
    ("frontdesk_proposal_1", "en"): 4,
    ("frontdesk_proposal_2", "ru"): 5,
    ("frontdesk_proposal_2", "en"): 5,
    ("frontdesk_proposal_3", "ru"): 6,
    ("frontdesk_proposal_3", "en"): 6,
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
    "frontdesk_waitlist_offer": {
        "ru": "Освободилось время: {0}, {1}. Держим его для вас до {2}.",
        "en": "A time has freed up: {0} on {1}. It is held for you until {2}.",
    },
    "frontdesk_proposal_1": {
        "ru": "Время для вас от {0}: {1}, {2}. Держим его для вас до {3}.",
        "en": "A time for you from {0}: {1}, {2}. It is held for you until {3}.",
    },
    "frontdesk_proposal_2": {
        "ru": "Время для вас от {0}: {1}. 1) {2}; 2) {3}. Держим его для вас до {4}: "
        "нажмите номер, чтобы записаться.",
        "en": "Times for you from {0}: {1}. 1) {2}; 2) {3}. They are held for you until {4}: "
        "tap a number to book.",
    },
    "frontdesk_proposal_3": {
        "ru": "Время для вас от {0}: {1}. 1) {2}; 2) {3}; 3) {4}. Держим его для вас до {5}: "
        "нажмите номер, чтобы записаться.",
        "en": "Times for you from {0}: {1}. 1) {2}; 2) {3}; 3) {4}. They are held for you "
        "until {5}: tap a number to book.",
    },
}
NOTICE_BUTTONS = {
    "ru": ("Приду", "Перенести", "Отменить"),
    "en": ("I'll come", "Reschedule", "Cancel"),
}
# Templates with buttons of their own (the waitlist's offer: "Book it", "No thanks"; a
# proposal: one per time).
OWN_BUTTONS: dict[str, dict[str, tuple[str, ...]]] = {
    "frontdesk_waitlist_offer": {
        "ru": ("Записаться", "Нет, спасибо"),
        "en": ("Book it", "No thanks"),
    },
    "frontdesk_proposal_1": {"ru": ("Записаться",), "en": ("Book it",)},
    "frontdesk_proposal_2": {"ru": ("1", "2"), "en": ("1", "2")},
    "frontdesk_proposal_3": {"ru": ("1", "2", "3"), "en": ("1", "2", "3")},
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


# Meta's error codes page (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes;
# ../shared/contracts/chatwoot-whatsapp-telegram.md §2.8): throttling answers HTTP 400 with the
# code in the Graph error envelope, the title as "(#<code>) <title>", the details as below.
THROUGHPUT = 130429
PAIR_RATE = 131056
_RATE_ERRORS = {
    THROUGHPUT: ("Rate limit hit", "Cloud API message throughput has been reached."),
    PAIR_RATE: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone "
        "number to the same phone number in a short period of time.",
    ),
}


def rate_error(code: int) -> GraphError:
    """The Graph error of a throttled send (130429 throughput, 131056 pair rate)."""
    title, details = _RATE_ERRORS[code]
    return GraphError(code, f"(#{code}) {title}", details=details)


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
    buttons = OWN_BUTTONS.get(str(template.get("name")), NOTICE_BUTTONS)
    labels = buttons.get(language, buttons["en"])
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
