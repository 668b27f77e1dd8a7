"""Structured logs: JSON under `serve`, readable text under `demo`; secrets never, phones masked.

Scrubbing happens on the final formatted line, so it also covers third-party loggers (aiohttp's
access log, aiogram, redis-py) and exception tracebacks. The Telegram bot token is the classic
leak: it sits inside every Bot API URL.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

# A bot token anywhere, e.g. in https://api.telegram.org/bot<token>/sendMessage.
_BOT_TOKEN = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")
# Phone numbers written for humans (+7 912 345-67-89, +447700900123): keep the first digit and
# the last two. Plain ids (chat ids, update ids) have no leading '+' and stay.
_PHONE = re.compile(r"\+\d[\d\s().-]{7,18}\d")


# A WhatsApp client's id is their number without '+': masked where it names a conversation.
_WHATSAPP_CHAT = re.compile(r"\bwa:(\d)(\d{4,13})(\d\d)\b")


def mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"+{digits[:1]}{'*' * (len(digits) - 3)}{digits[-2:]}"


def mask_chat(channel: str, chat: str) -> str:
    """A chat id for the logs: WhatsApp's is the client's number and keeps only its first and
    last two digits; Telegram's chat ids are not phone numbers and stay."""
    if channel == "whatsapp" and chat.isdigit() and len(chat) >= 7:
        return f"{chat[:1]}{'*' * (len(chat) - 3)}{chat[-2:]}"
    return chat


CONTEXT_FIELDS = ("source", "event_id", "entry", "conversation")


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _BOT_TOKEN.sub("***", text)
        text = _WHATSAPP_CHAT.sub(lambda m: f"wa:{m[1]}{'*' * len(m[2])}{m[3]}", text)
        return _PHONE.sub(mask_phone, text)


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        # Scrubbed before JSON encoding, so that escaping cannot hide a secret from the scrubber.
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.scrub(record.getMessage()),
        }
        # Ids passed with `extra=`: which webhook, which event, which queue entry.
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):
                data[key] = self.scrub(str(getattr(record, key)))
        if record.exc_info:
            data["exc"] = self.scrub(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [str(getattr(record, key)) for key in CONTEXT_FIELDS if hasattr(record, key)]
        return self.scrub(f"{line} [{' '.join(context)}]" if context else line)


def configure(
    fmt: str, level: str, secrets: Iterable[str] = (), stream: object = None
) -> logging.Handler:
    scrub = Scrubber(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log, aiogram's "Update is handled" and httpx's "HTTP Request" are a line
    # per webhook or call each: kept for debugging, quiet otherwise (the metrics count them).
    for noisy in ("aiohttp.access", "aiogram.event", "httpx"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
        )
    return handler
