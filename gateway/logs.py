"""Structured logs: JSON under `serve`, readable text under `demo`; secrets never, phones masked.

Scrubbing happens on the final formatted line, so it also covers third-party loggers (aiohttp's
access log, aiogram, redis-py) and exception tracebacks. The Telegram bot token is the classic
leak: it sits inside every Bot API URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from aiohttp import ClientConnectionResetError

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


# A client that went away mid-request: aiohttp sets ConnectionResetError("Connection lost") on the
# request being read (aiohttp 3.14 web_protocol.py, RequestHandler.connection_lost), a write to
# the closed transport raises ClientConnectionResetError (http_writer.py, base_protocol.py), and
# an aborted handler is cancelled. Nothing on our side went wrong.
_CLIENT_GONE = (
    ConnectionResetError,
    BrokenPipeError,
    ClientConnectionResetError,
    asyncio.CancelledError,
)


class ClientGone(logging.Filter):
    """aiohttp's records about a client that disconnected ("Error handling request" after an
    aborted upload, "Unhandled exception" on a reset) become DEBUG lines: dropped unless
    debugging, never an error with a stack trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not record.name.startswith("aiohttp"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, _CLIENT_GONE):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class Repeats(logging.Filter):
    """At most one line per source (logger and message template) per minute, from INFO up;
    the rest are counted and summed up in one line once that minute is over (with the next line
    logged, or by `flush_summaries`): "… and 57 more like this in the last minute". A flood of
    forged requests or failing calls then costs two lines a minute, not one each (the metrics
    count every one)."""

    # Past this many sources in one minute (templates built with f-strings), start afresh.
    MAX_SOURCES = 10_000

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.emit = emit
        self.window = window
        self.clock = clock
        # Source -> (when its minute started, the last record held back, how many were).
        self._windows: dict[tuple[str, str], tuple[float, logging.LogRecord | None, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeats_summary", False):
            return True
        now = self.clock()
        self.flush(now)
        if record.levelno < logging.INFO:
            return True
        source = (record.name, str(record.msg))
        if source in self._windows:
            started, _, held = self._windows[source]
            self._windows[source] = (started, record, held + 1)
            return False
        if len(self._windows) >= self.MAX_SOURCES:
            self._windows.clear()
        self._windows[source] = (now, None, 0)
        return True

    def flush(self, now: float | None = None) -> None:
        """Sum up every source whose minute is over (and forget those that had no repeats)."""
        now = self.clock() if now is None else now
        for source, (started, last, held) in list(self._windows.items()):
            if now - started < self.window:
                continue
            # pop, not del: a thread logging at the same moment may have flushed it already.
            flushed = self._windows.pop(source, None) is None
            if not flushed and last is not None:
                self.emit(self._summary(last, held))

    @staticmethod
    def _summary(last: logging.LogRecord, held: int) -> logging.LogRecord:
        return logging.makeLogRecord(
            {
                "name": last.name,
                "levelno": last.levelno,
                "levelname": last.levelname,
                "msg": "… and %d more like this in the last minute (the last: %s)",
                "args": (held, last.getMessage()),
                "created": time.time(),
                "repeats_summary": True,
            }
        )


def flush_summaries() -> None:
    """Write the summaries of minutes that are over, even if nothing was logged since (the
    app calls this every few seconds)."""
    for handler in logging.getLogger().handlers:
        for repeats in handler.filters:
            if isinstance(repeats, Repeats):
                repeats.flush()


def configure(
    fmt: str, level: str, secrets: Iterable[str] = (), stream: object = None
) -> logging.Handler:
    scrub = Scrubber(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    handler.addFilter(ClientGone())
    handler.addFilter(Repeats(handler.handle))
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
