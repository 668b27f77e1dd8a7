"""Logs never carry secrets or whole phone numbers, whichever logger wrote them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import ClientConnectionResetError, ClientSession, web

from gateway.app import create_app
from gateway.logs import (
    ClientGone,
    JsonFormatter,
    Repeats,
    Scrubber,
    TextFormatter,
    configure,
    flush_summaries,
    mask_chat,
)
from tests.conftest import SECRET as WEBHOOK_SECRET
from tests.conftest import make_settings

TOKEN = "123456:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
SECRET = "test-webhook-secret_1"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """`configure` rewires the root logger: put it back as it was."""
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("aiohttp.access", "aiogram.event")]
    handlers, levels = root.handlers[:], [logger.level for logger in [root, *noisy]]
    yield root
    root.handlers[:] = handlers
    for logger, level in zip([root, *noisy], levels, strict=True):
        logger.setLevel(level)


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("frontdesk.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_configured_secrets_are_removed() -> None:
    scrub = Scrubber([SECRET, "cal_live_abcdef"])
    line = scrub(f"header={SECRET} key=cal_live_abcdef and {SECRET} again")
    assert line == "header=*** key=*** and *** again"


def test_a_longer_secret_containing_a_shorter_one_is_removed_whole() -> None:
    scrub = Scrubber(["abcd", "abcdefgh-long"])
    assert scrub("x abcdefgh-long y abcd") == "x *** y ***"


def test_tiny_or_empty_secrets_do_not_blank_the_log() -> None:
    scrub = Scrubber(["", "a", "ok"])
    assert scrub("a normal ok line") == "a normal ok line"


def test_a_bot_token_in_a_url_is_removed_even_if_not_configured() -> None:
    url = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    line = Scrubber()(f"POST {url} failed")
    assert line == "POST https://api.telegram.org/bot***/sendMessage failed"
    assert "AAHfiqks" not in line


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+7 912 345-67-89", "+7********89"),
        ("+79123456789", "+7********89"),
        ("+44 7700 900123", "+4*********23"),
        ("+1 (555) 010-9999", "+1********99"),
    ],
)
def test_phones_keep_only_the_country_code_and_last_two_digits(phone: str, masked: str) -> None:
    line = Scrubber()(f"client {phone} asked for a person")
    assert line == f"client {masked} asked for a person"


@pytest.mark.parametrize(
    "line",
    [
        "chat id 123456789 update 987654321",
        "chat_id=-1001234567890",
        "at 2025-03-01T12:00:00.000+00:00 took 12.5 ms",
    ],
)
def test_plain_ids_and_timestamps_are_left_alone(line: str) -> None:
    assert Scrubber()(line) == line


def test_json_lines_are_valid_json_with_the_essentials() -> None:
    formatter = JsonFormatter(Scrubber([SECRET]))
    entry = record("sent %s to %d", "sendMessage", 123456789)
    entry.event_id = "tg:42"
    data = json.loads(formatter.format(entry))
    assert data["level"] == "warning"
    assert data["logger"] == "frontdesk.test"
    assert data["msg"] == "sent sendMessage to 123456789"
    assert data["event_id"] == "tg:42"
    assert data["ts"].endswith("+00:00")
    assert "exc" not in data


def test_json_exception_text_is_scrubbed() -> None:
    formatter = JsonFormatter(Scrubber([SECRET]))
    try:
        raise ConnectionError(f"https://api.telegram.org/bot{TOKEN}/getMe secret={SECRET}")
    except ConnectionError as exc:
        entry = record("call failed for %s", "+7 912 345-67-89", exc=exc)
    line = formatter.format(entry)
    data = json.loads(line)
    assert "ConnectionError" in data["exc"]
    assert "bot***/getMe" in data["exc"]
    assert data["msg"] == "call failed for +7********89"
    for leak in (TOKEN, SECRET, "AAHfiqks", "912 345"):
        assert leak not in line


def test_text_lines_are_scrubbed_too() -> None:
    formatter = TextFormatter(Scrubber([SECRET]))
    line = formatter.format(record("secret %s phone %s", SECRET, "+79123456789"))
    assert line.endswith("WARNING frontdesk.test: secret *** phone +7********89")


@pytest.mark.usefixtures("root_logger")
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_installs_one_scrubbing_handler(fmt: str) -> None:
    root = logging.getLogger()
    root.addHandler(logging.NullHandler())
    first = io.StringIO()
    configure(fmt, "DEBUG", [SECRET], stream=first)
    stream = io.StringIO()
    handler = configure(fmt, "INFO", [SECRET], stream=stream)
    assert root.handlers == [handler]
    assert root.level == logging.INFO

    logging.getLogger("aiohttp.client").info("token %s", SECRET)
    logging.getLogger("frontdesk").debug("not at INFO")
    output = stream.getvalue()
    print(output)
    assert output.count("\n") == 1
    assert "token ***" in output
    assert SECRET not in output
    assert first.getvalue() == ""
    if fmt == "json":
        assert json.loads(output)["logger"] == "aiohttp.client"


@pytest.mark.usefixtures("root_logger")
def test_per_webhook_lines_only_show_when_debugging() -> None:
    quiet = io.StringIO()
    configure("text", "INFO", stream=quiet)
    logging.getLogger("aiohttp.access").info("POST /webhooks/telegram 200")
    logging.getLogger("aiogram.event").info("Update id=1 is handled")
    logging.getLogger("frontdesk.worker").info("worker started")
    assert quiet.getvalue().splitlines()[0].endswith("frontdesk.worker: worker started")
    assert len(quiet.getvalue().splitlines()) == 1

    debugging = io.StringIO()
    configure("text", "DEBUG", stream=debugging)
    logging.getLogger("aiohttp.access").info("POST /webhooks/telegram 200")
    assert "POST /webhooks/telegram 200" in debugging.getvalue()


def test_whatsapp_numbers_are_masked_in_conversations_and_chats() -> None:
    line = Scrubber()("handling failed conversation=wa:79161234567 chat tg:123456789")
    assert "79161234567" not in line
    assert "wa:7********67" in line
    assert "tg:123456789" in line
    assert mask_chat("whatsapp", "79161234567") == "7********67"
    assert mask_chat("whatsapp", "US.13491208655302741918") == "US.13491208655302741918"
    assert mask_chat("telegram", "123456789") == "123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repeats(caplog: pytest.LogCaptureFixture, clock: Clock) -> Iterator[Repeats]:
    """The filter on pytest's capturing handler (which outlives the test: taken off after)."""
    caplog.set_level(logging.DEBUG)
    repeats = Repeats(caplog.handler.handle, clock=clock)
    caplog.handler.addFilter(repeats)
    yield repeats
    caplog.handler.removeFilter(repeats)


@pytest.mark.usefixtures("repeats")
def test_repeated_warnings_are_summed_up_once_a_minute(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    outbox = logging.getLogger("frontdesk.outbox")
    for chat in range(58):
        outbox.warning("sendMessage to chat %s failed", chat)
    outbox.warning("another source: %s", "shown")
    logging.getLogger("frontdesk.edge").warning("sendMessage to chat %s failed", "same text")
    clock.now += 59
    outbox.warning("sendMessage to chat %s failed", 58)  # still the same minute
    assert [r.getMessage() for r in caplog.records] == [
        "sendMessage to chat 0 failed",
        "another source: shown",
        "sendMessage to chat same text failed",
    ]

    clock.now += 2  # the minute is over: the next line logged brings the summary
    logging.getLogger("frontdesk.app").info("worker started")
    assert [r.getMessage() for r in caplog.records[3:]] == [
        "… and 58 more like this in the last minute (the last: sendMessage to chat 58 failed)",
        "worker started",
    ]
    assert (caplog.records[3].name, caplog.records[3].levelname) == ("frontdesk.outbox", "WARNING")
    # A new minute: the source's next line shows again, and no summary for a source that
    # had no repeats.
    outbox.warning("sendMessage to chat %s failed", 59)
    assert caplog.records[-1].getMessage() == "sendMessage to chat 59 failed"
    assert len(caplog.records) == 6


@pytest.mark.usefixtures("repeats")
def test_a_summary_is_written_when_its_minute_is_over_though_nothing_else_is_logged(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    for _ in range(3):
        logging.getLogger("frontdesk.edge").info("telegram webhook refused: bad signature")
    flush_summaries()  # the minute is not over yet
    assert len(caplog.records) == 1
    clock.now += 60
    flush_summaries()
    assert caplog.records[-1].getMessage() == (
        "… and 2 more like this in the last minute (the last: telegram webhook refused: bad "
        "signature)"
    )
    flush_summaries()  # once
    assert len(caplog.records) == 2


@pytest.mark.usefixtures("repeats")
def test_debug_lines_are_never_held_back(caplog: pytest.LogCaptureFixture) -> None:
    for step in range(3):
        logging.getLogger("frontdesk.test").debug("step %d", step)
    assert len(caplog.records) == 3


def test_too_many_sources_in_one_minute_start_afresh(
    caplog: pytest.LogCaptureFixture, repeats: Repeats
) -> None:
    repeats.MAX_SOURCES = 2
    for text in ("a", "b", "c", "a"):
        logging.getLogger("frontdesk.test").warning(text)
    # "c" found the table full and emptied it, so "a" counts as new.
    assert [r.getMessage() for r in caplog.records] == ["a", "b", "c", "a"]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("Connection lost"),
        ClientConnectionResetError("Cannot write to closing transport"),
        asyncio.CancelledError(),
    ],
)
def test_a_client_disconnect_in_aiohttp_is_not_an_error(error: BaseException) -> None:
    line = record("Error handling request from %s", "127.0.0.1", exc=error)
    line.name = "aiohttp.server"
    line.levelno, line.levelname = logging.ERROR, "ERROR"
    gone = ClientGone()
    assert not gone.filter(line)  # dropped below DEBUG
    assert line.levelname == "DEBUG"


def test_other_errors_stay_errors() -> None:
    ours = record("Redis went away", exc=ConnectionResetError("reset"))  # not aiohttp's
    theirs = record("Error handling request", exc=ValueError("a bug"))
    theirs.name = "aiohttp.server"
    quiet = record("Error handling request", exc=ConnectionResetError("reset"))
    quiet.name, quiet.levelno = "aiohttp.server", logging.DEBUG
    for line in (ours, theirs, quiet):
        assert ClientGone().filter(line)
    assert (ours.levelname, theirs.levelname) == ("WARNING", "WARNING")


@pytest.mark.usefixtures("root_logger")
async def test_an_aborted_upload_and_forged_requests_log_no_error_or_stack_trace(
    redis_url: str, salon_id: str
) -> None:
    stream = io.StringIO()
    configure("text", "INFO", stream=stream)
    # Served as `frontdesk serve` serves it (web.run_app: a handler is not cancelled when its
    # client goes, so the read fails with ConnectionResetError and aiohttp logs it).
    runner = web.AppRunner(create_app(make_settings(redis_url, salon_id, run_workers=False)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        # A client that announces 100 kB, sends a little and hangs up.
        _, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Telegram-Bot-Api-Secret-Token: " + WEBHOOK_SECRET.encode() + b"\r\n"
            b"Content-Length: 100000\r\n\r\n" + b'{"update_id": 1, ' + b" " * 4000
        )
        await writer.drain()
        await asyncio.sleep(0.1)  # the gateway is reading the body
        writer.transport.abort()
        async with ClientSession() as http:
            for _ in range(30):
                forged = {"X-Telegram-Bot-Api-Secret-Token": "forged"}
                url = f"http://{host}:{port}/webhooks/telegram"
                async with http.post(url, data=b"{}", headers=forged) as response:
                    assert response.status == 401
        await asyncio.sleep(0.3)  # the aborted request is done with
    finally:
        await runner.cleanup()
    output = stream.getvalue()
    assert "ERROR" not in output
    assert "WARNING" not in output
    assert "Traceback" not in output
    # Thirty forged requests: one INFO line, the rest held back for the minute's summary.
    assert output.count("webhook refused") == 1
    assert "INFO    frontdesk.edge: telegram webhook refused" in output
