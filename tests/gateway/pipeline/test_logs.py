"""Logs and printed lines never carry secrets, whole phone numbers, client ids or names,
whichever logger (or warning, or command) wrote them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import ClientConnectionResetError, ClientSession, web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_log import AccessLogger

from gateway.app import create_app
from gateway.pipeline.logs import (
    ClientGone,
    JsonFormatter,
    MaskedAccessLogger,
    Repeats,
    ScrubbedStream,
    Scrubber,
    TextFormatter,
    configure,
    flush_summaries,
    mask_chat,
    scrubbed_output,
)
from tests.conftest import SECRET as WEBHOOK_SECRET
from tests.conftest import make_settings
from tests.support.clock import Clock

TOKEN = "123456:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
SECRET = "test-webhook-secret_1"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """`configure` rewires the root logger: put it back as it was."""
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("aiohttp.access", "aiogram.event")]
    handlers, levels = root.handlers[:], [logger.level for logger in [root, *noisy]]
    yield root
    logging.captureWarnings(False)
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
        # Without '+': as WhatsApp's errors name a recipient, or as a client types it.
        ("447700900777", "4*********77"),
        ("79161234567", "7********67"),
        ("8 (912) 345-67-89", "8********89"),
        ("7-912-345-67-89", "7********89"),
        ("(555) 010-9999", "5*******99"),
        ("+354 412 3456", "+3*******56"),
    ],
)
def test_phones_keep_only_the_country_code_and_last_two_digits(phone: str, masked: str) -> None:
    line = Scrubber()(f"client {phone} asked for a person")
    assert line == f"client {masked} asked for a person"


def test_a_recipient_named_by_whatsapp_is_masked() -> None:
    line = Scrubber()("(#131026) Message undeliverable: Recipient 447700900777 is not a user")
    assert "447700900777" not in line
    assert "Recipient 4*********77 is not a user" in line


@pytest.mark.parametrize(
    "line",
    [
        "chat id 123456789 update 987654321",
        "at 2025-03-01T12:00:00.000+00:00 took 12.5 ms",
        "due 2026-06-02 07:00:00+00:00 slot b:t:0700",
        # Queue entry ids and epoch seconds / milliseconds: an operator matches them up.
        "entry 1733570000000-0 received 1733570000123 at 1733570000",
        "from 127.0.0.1:8080 in 12.25 ms, 2,500 RUB, 9 attempts",
        "request 550e8400-e29b-41d4-a716-446655440000",
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


def test_client_ids_are_masked_alike_in_conversations_and_chats() -> None:
    """A Telegram chat id names one person on every bot, as a WhatsApp id (their number)
    does: both keep their first digit and last two wherever they are labelled as a client's."""
    line = Scrubber()("handling failed conversation=wa:79161234567 chat tg:123456789")
    assert line == "handling failed conversation=wa:7********67 chat tg:1******89"
    assert Scrubber()("chat_id=-1001234567890") == "chat_id=-1**********90"
    assert Scrubber()("'chat_id': 123456789") == "'chat_id': 1******89"
    assert mask_chat("whatsapp", "79161234567") == "7********67"
    assert mask_chat("whatsapp", "US.13491208655302741918") == "US.13491208655302741918"
    assert mask_chat("telegram", "123456789") == "1******89"
    assert mask_chat("telegram", "-1001234567890") == "-1**********90"
    assert mask_chat("telegram", "77") == "77"


RAW_UPDATE = (
    '{"update_id":90001,"future_kind_of_update":{"message_id":5,"date":1733570000,'
    '"from":{"id":123456789,"is_bot":false,"first_name":"Anna","last_name":"Ivanova",'
    '"username":"anna_iv"},"chat":{"id":123456789,"type":"private"},'
    '"contact":{"phone_number":"79161234567","first_name":"Anna"},"text":"call me"}}'
)


def test_a_raw_payload_loses_names_texts_and_ids_but_keeps_its_shape() -> None:
    line = Scrubber()(f"Update: {RAW_UPDATE}")
    for leak in ("Anna", "Ivanova", "anna_iv", "79161234567", "123456789", "call me"):
        assert leak not in line
    assert '"first_name":"***"' in line
    assert '"chat":{"id":1******89' in line
    assert '"update_id":90001' in line
    assert '"date":1733570000' in line
    # A dict's repr and a model's repr alike.
    assert (
        Scrubber()("{'name': 'Maria', 'wa_id': '79161234567'}")
        == "{'name': '***', 'wa_id': '7********67'}"
    )
    assert Scrubber()("User(id=5, first_name='Anna')") == "User(id=5, first_name='***')"


def test_a_whatsapp_message_id_keeps_only_its_tail() -> None:
    """A wamid is base64 with the client's number near its start: in Meta's own webhook
    samples, wamid.HBgLNjAxNzM1MjYyMzMV... belongs to wa_id 60173526233."""
    line = Scrubber()("status for wamid.HBgLNjAxNzM1MjYyMzMVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQA ok")
    assert line == "status for wamid.***ODYxQTM3RUQA ok"
    assert "NjAxNzM1MjYyMzM" not in line
    assert Scrubber()("wamid.short") == "wamid.short"


@pytest.mark.parametrize(
    "line",
    [
        "headers={'Authorization': 'Bearer EAAG1234abcd', 'api_access_token': 'cw-9f8e7d'}",
        'Authorization: Bearer EAAG1234abcd; api_access_token: "cw-9f8e7d"',
        "X-Telegram-Bot-Api-Secret-Token=tg-hook-abc sent",
    ],
)
def test_credential_headers_are_removed_even_if_not_configured(line: str) -> None:
    scrubbed = Scrubber()(line)
    for leak in ("EAAG1234abcd", "cw-9f8e7d", "tg-hook-abc"):
        assert leak not in scrubbed
    assert "***" in scrubbed


@pytest.mark.usefixtures("root_logger")
def test_python_warnings_go_through_the_scrubber() -> None:
    stream = io.StringIO()
    configure("json", "INFO", [SECRET], stream=stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)  # catch_warnings put the default display back
        warnings.warn(f"token {SECRET} for +7 912 345-67-89 {RAW_UPDATE}", UserWarning, 1)
    [line] = stream.getvalue().splitlines()
    data = json.loads(line)
    assert data["logger"] == "py.warnings"
    assert "UserWarning" in data["msg"]
    for leak in (SECRET, "912 345", "Anna", "79161234567", "123456789"):
        assert leak not in line


@pytest.mark.usefixtures("root_logger")
async def test_aiograms_unknown_update_warning_is_scrubbed() -> None:
    """aiogram warns "Detected unknown update type" with the whole update dumped
    (aiogram/dispatcher/dispatcher.py, Dispatcher._listen_update, 3.x): names and numbers."""
    stream = io.StringIO()
    configure("text", "DEBUG", [TOKEN], stream=stream)
    bot = Bot(TOKEN)
    update = Update.model_validate(json.loads(RAW_UPDATE), context={"bot": bot})
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        await Dispatcher().feed_update(bot, update)
    await bot.session.close()
    output = stream.getvalue()
    assert "Detected unknown update type" in output
    for leak in ("Anna", "Ivanova", "anna_iv", "79161234567", "123456789", "call me", TOKEN):
        assert leak not in output


@pytest.mark.usefixtures("root_logger")
def test_a_library_logger_with_its_own_handler_is_routed_through_the_scrubber() -> None:
    own = io.StringIO()
    library = logging.getLogger("some.library")
    library.addHandler(logging.StreamHandler(own))
    library.propagate = False
    stream = io.StringIO()
    configure("text", "INFO", [SECRET], stream=stream)
    library.warning("secret %s", SECRET)
    assert own.getvalue() == ""
    assert "secret ***" in stream.getvalue()
    assert library.propagate


def test_printed_lines_are_scrubbed_whole_even_when_written_in_pieces() -> None:
    raw = io.StringIO()
    stream = ScrubbedStream(raw, Scrubber([SECRET]))
    assert stream.writable()
    stream.write("secret test-webhook")
    stream.write("-secret_1 phone +7 912 ")
    assert raw.getvalue() == ""  # nothing before the line is complete
    stream.write("345-67-89\nnext ")
    assert raw.getvalue() == "secret *** phone +7********89\n"
    stream.write(f"{TOKEN}")
    stream.flush()
    assert raw.getvalue().endswith("next ***")


def test_scrubbed_output_covers_print_and_puts_the_streams_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stdout, stderr = sys.stdout, sys.stderr
    with scrubbed_output(Scrubber([SECRET])):
        print(f"https://api.telegram.org/bot{TOKEN}/getMe")
        print(f"secret {SECRET}, +44 7700 900123", file=sys.stderr)
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    captured = capsys.readouterr()
    assert captured.out == "https://api.telegram.org/bot***/getMe\n"
    assert captured.err == "secret ***, +4*********23\n"


@pytest.mark.usefixtures("root_logger")
def test_configure_under_scrubbed_output_writes_to_the_real_stream() -> None:
    raw = io.StringIO()
    handler = configure("text", "INFO", [SECRET], stream=ScrubbedStream(raw, Scrubber()))
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is raw


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


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


def test_the_access_log_masks_the_query_and_the_referers(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("aiohttp.access.test")
    request = make_mocked_request(
        "GET",
        "/dashboard-app/main/api/slots?key=s3cret-link&day=2026-06-02",
        headers={"Referer": "https://gw.example/dashboard-app/main?key=s3cret-link"},
    )
    with caplog.at_level(logging.INFO, logger=logger.name):
        MaskedAccessLogger(logger, AccessLogger.LOG_FORMAT).log(request, web.Response(), 0.01)
    [line] = [r.getMessage() for r in caplog.records]
    assert "s3cret" not in line
    assert "/dashboard-app/main/api/slots?key=***&day=***" in line
    assert "https://gw.example/dashboard-app/main?key=***" in line
