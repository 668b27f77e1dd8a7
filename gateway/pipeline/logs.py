"""Structured logs: JSON under `serve`, readable text under `demo`; secrets never, clients masked.

Scrubbing happens on the final formatted line, so it also covers third-party loggers (aiohttp's
access log, aiogram, redis-py, httpx, asyncpg), Python warnings (captured into logging) and
exception tracebacks. The Telegram bot token is the classic leak: it sits inside every Bot API
URL. The CLI's own printing goes through the same scrubber (`scrubbed_output`).

What is masked, the same way everywhere (README, "Personal data"):
- configured secrets, bot tokens in URLs, `Authorization` and `api_access_token` header values;
- phone numbers in any common form, with or without "+": first digit and last two kept;
- client identifiers where they are labelled as such: a conversation (`tg:…`, `wa:…`), a chat or
  user id (`chat_id=…`, `"chat": {"id": …}`, `"from": {"id": …}`): a Telegram chat id names one
  person on every bot, so it is masked like a WhatsApp number;
- WhatsApp message ids (`wamid.…`, which encode the client's number): only their tail stays;
- names, texts and contact details in raw payloads (`"first_name": "…"`, `'text': '…'`,
  `phone_number='…'`), as aiogram prints an update it does not know.
Plain ids stay readable for operators: queue entry ids, update and message ids, timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

from aiohttp import ClientConnectionResetError
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from multidict import CIMultiDict
from yarl import URL

# A bot token anywhere, e.g. in https://api.telegram.org/bot<token>/sendMessage. The id part is
# up to 20 digits; the secret part is what BotFather issues (settings accepts 20+ characters).
_BOT_TOKEN = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{20,}")
# The value of a credential header, however it is printed (a header line, a dict's repr, JSON).
_CREDENTIAL = re.compile(
    r"(?i)((?:authorization|api_access_token|x-api-key|x-hub-signature-256|"
    r"x-telegram-bot-api-secret-token)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|apikey\s+)?[^\s\"',}]+"
)
# What must stay readable, tried before a phone at each position: queue entry ids
# (<ms>-<seq>), dates and times, epoch seconds and milliseconds (10 and 13 digits starting
# with 1: no phone number has that shape, +1 numbers have 11 digits).
_KEEP = (
    r"(?P<keep>\b\d{13}-\d+\b"
    r"|\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|(?<![\w.+-])1(?:\d{9}|\d{12})(?![\w-]))"
)
# A phone number: 7-15 digits after a '+', 10-15 without, in groups separated by spaces,
# dashes, dots or parentheses ("+7 912 345-67-89", "447700900777", "(555) 010-9999 1").
_PHONE_FORM = (
    r"(?P<phone>(?<![\w.+-])(?:\+[ (]{0,2}\d(?:[ ().-]{0,2}\d){6,14}"
    r"|\(?\d(?:[ ().-]{0,2}\d){9,14})(?!\w))"
)
_PHONE = re.compile(f"{_KEEP}|{_PHONE_FORM}")
# A client identifier where it is labelled as one: a conversation id, or a chat / user id.
_LABELLED_ID = re.compile(
    r"(?P<label>\b(?:tg|wa):|\b(?:chat_id|user_id|wa_id|from_id)[\"']?\s*[:=]\s*[\"']?"
    r"|[\"'](?:chat|from|user|sender_chat)[\"']\s*:\s*\{\s*[\"']id[\"']\s*:\s*)"
    r"(?P<sign>-?)(?P<id>\d{5,20})\b"
)
# A WhatsApp message id carries the client's number, base64-encoded near its start (as seen in
# Meta's webhooks: "wamid.HBgLNjAxNzM1MjYyMzMV…" is "\x1c\x18\x0b60173526233\x15…" for wa_id
# 60173526233): only its tail, which tells messages apart, stays.
_WAMID = re.compile(r"\bwamid\.[A-Za-z0-9_=+/-]*?([A-Za-z0-9_=+/-]{12})(?![A-Za-z0-9_=+/-])")
# Personal fields of a payload printed raw (JSON, a dict's repr, a model's repr): the value goes.
_PERSONAL_FIELD = re.compile(
    r"(?P<key>[\"']?\b(?:first_name|last_name|username|full_name|display_name|formatted_name"
    r"|name|email|phone_number|phone|vcard|text|caption|body|address)[\"']?\s*[:=]\s*)"
    r"(?P<quote>[\"'])(?:\\.|(?!(?P=quote)).)*(?P=quote)"
)


def _mask_digits(digits: str) -> str:
    # Only ever given five digits or more: two shown at the end, one at the start.
    return f"{digits[:1]}{'*' * (len(digits) - 3)}{digits[-2:]}"


def mask_phone(match: re.Match[str]) -> str:
    if match.group("keep"):
        return match.group("keep")
    text = match.group("phone")
    digits = re.sub(r"\D", "", text)
    return f"{'+' if text.startswith('+') else ''}{_mask_digits(digits)}"


def _mask_labelled(match: re.Match[str]) -> str:
    return f"{match['label']}{match['sign']}{_mask_digits(match['id'])}"


def mask_chat(channel: str, chat: str) -> str:
    """A chat id for the logs: a WhatsApp id is the client's number, a Telegram chat id names
    one person on every bot; both keep only their first and last two digits. Ids that are not
    numbers (WhatsApp's business-scoped user ids) stay."""
    digits = chat.removeprefix("-")
    if digits.isdigit() and len(digits) >= 5:
        return f"{chat[: len(chat) - len(digits)]}{_mask_digits(digits)}"
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
        text = _CREDENTIAL.sub(r"\1***", text)
        text = _PERSONAL_FIELD.sub(r"\g<key>\g<quote>***\g<quote>", text)
        text = _LABELLED_ID.sub(_mask_labelled, text)
        text = _WAMID.sub(r"wamid.***\1", text)
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


class ScrubbedStream(io.TextIOBase):
    """A text stream that scrubs what it passes on, a line at a time (a secret or a number
    printed in pieces is whole by the end of its line)."""

    def __init__(self, raw: TextIO, scrub: Scrubber) -> None:
        super().__init__()
        self.raw = raw
        self.scrub = scrub
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self.raw.write(self.scrub(complete + newline))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.raw.write(self.scrub(self._pending))
            self._pending = ""
        self.raw.flush()


@contextlib.contextmanager
def scrubbed_output(scrub: Scrubber) -> Iterator[None]:
    """Everything printed to stdout and stderr meanwhile goes through `scrub`: the CLI's one
    writer, whichever command (or library) prints."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(stdout, scrub), ScrubbedStream(stderr, scrub)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = stdout, stderr


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
    fmt: str, level: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    scrub = Scrubber(secrets)
    target = stream or sys.stderr
    if isinstance(target, ScrubbedStream):
        # The formatter scrubs each line already: once is enough.
        target = target.raw
    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    handler.addFilter(ClientGone())
    handler.addFilter(Repeats(handler.handle))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # A library logger with a handler of its own would write past the scrubber: its records go
    # to the root's handler instead.
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.handlers:
            for own in list(logger.handlers):
                logger.removeHandler(own)
            logger.propagate = True
    # Python warnings (aiogram's "Detected unknown update type" carries the raw update) are
    # log records of "py.warnings" from now on, scrubbed like any other. Off then on: on alone
    # does nothing if an earlier `configure` captured them and the display was changed since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    # aiohttp's access log, aiogram's "Update is handled" and httpx's "HTTP Request" are a line
    # per webhook or call each: kept for debugging, quiet otherwise (the metrics count them).
    for noisy in ("aiohttp.access", "aiogram.event", "httpx"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
        )
    return handler


class MaskedAccessLogger(AccessLogger):
    """aiohttp's access log with every query value masked, in the request line and the Referer
    (the Dashboard App's URL carries its link key as `?key=`; its page's calls send that URL
    as their Referer)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        referer = request.headers.get("Referer", "")
        if request.query_string or "?" in referer:
            headers = CIMultiDict(request.headers)
            if "?" in referer:
                headers["Referer"] = _masked(URL(referer))
            masked = request.rel_url.with_query({k: "***" for k in request.rel_url.query})
            request = request.clone(rel_url=masked, headers=headers)
        super().log(request, response, time)


def _masked(url: URL) -> str:
    return str(url.with_query({k: "***" for k in url.query}))
