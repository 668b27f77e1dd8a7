"""No log record, warning or printed line carries a secret, a client's phone number or name;
what is kept of a client in Redis goes when its time is up.

A realistic run through the real gateway with every library logging at DEBUG and warnings on:
a Telegram client books with a shared contact, a WhatsApp client writes and a message to them
fails, and a Telegram update of a type aiogram does not know arrives (aiogram warns with the
raw update). Everything written anywhere is then searched for what must not be there.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from gateway.pipeline.logs import configure
from gateway.sandbox.whatsapp import WhatsAppSandbox
from gateway.settings import SettingsError, load
from tests.conftest import SECRET, TOKEN, GatewayFactory, Sandbox, eventually
from tests.test_flow_booking import KEY, Chat, Salon
from tests.test_flow_booking import salon as salon  # the fixture, shared
from tests.test_flow_whatsapp import (
    APP_SECRET,
    VERIFY_TOKEN,
    WA_TOKEN,
    Phone,
    queue_text,
    start_whatsapp,
)
from tests.test_flow_whatsapp import wa as wa  # the fixture, shared

TG_CHAT = 5550001234
TG_NAME = "Zinaida"
TG_PHONE = "447700900777"
WA_NUMBER = "79031234567"
WA_NAME = "Yevdokia"


def _to_stderr(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@pytest.fixture
def everything_logged() -> Iterator[io.StringIO]:
    """The root logger as `serve` sets it up, at DEBUG, with Python warnings shown (not turned
    into errors) and captured into logging; put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("aiohttp.access", "aiogram.event")}
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # As a plain interpreter shows a warning (pytest records them instead): on stderr.
        warnings.showwarning = _to_stderr
        configure("text", "DEBUG", [TOKEN, SECRET, KEY, WA_TOKEN, APP_SECRET, VERIFY_TOKEN], stream)
        yield stream
        logging.captureWarnings(False)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


async def inbound_left(redis: Redis, gateway: object) -> int:
    keys = gateway.runtime.keys  # type: ignore[attr-defined]
    return sum([await redis.xlen(keys.inbound(shard)) for shard in range(keys.shards)])


async def test_no_output_carries_a_secret_a_phone_or_a_name(
    start_gateway: GatewayFactory,
    sandbox: Sandbox,
    salon: Salon,
    wa: WhatsAppSandbox,
    redis: Redis,
    everything_logged: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = await start_whatsapp(start_gateway, salon, wa)

    # Telegram: a booking, the phone given by sharing the contact card.
    chat = Chat(sandbox.telegram, TG_CHAT)
    await sandbox.telegram.client_says(TG_CHAT, "/start", first_name=TG_NAME)
    await eventually(lambda: chat.messages, timeout=10)
    await chat.tap("m:book")
    await chat.tap("b:s:womens-haircut")
    await chat.tap("b:m:", prefix=True)
    await chat.tap("b:d:", prefix=True)
    await chat.tap("b:t:", prefix=True)
    summary = await chat.share_phone(TG_PHONE)
    assert f"🙂 {TG_NAME}" in summary[-1]["text"]
    done = await chat.tap("b:ok:", prefix=True)
    assert done[-1]["text"].startswith("✅ You are booked!")
    [booking] = salon.made_in_chat()
    assert booking["attendees"][0]["phoneNumber"] == f"+{TG_PHONE}"

    # WhatsApp: a client writes; a message to them later fails (the window closed on
    # WhatsApp's clock), which is logged with WhatsApp's error.
    phone = Phone(wa, WA_NUMBER, name=WA_NAME)
    await phone.say("Hello, I am Yevdokia, my number is +7 903 123-45-67")
    wa._clients[phone.key].last_inbound -= 25 * 3600
    await queue_text(gateway, WA_NUMBER, "See you at 10:30")
    await eventually(lambda: "131047" in everything_logged.getvalue(), timeout=10)

    # Telegram: an update of a type aiogram does not know, with the client's name and number.
    unknown = {
        "update_id": 777001,
        "future_kind_of_update": {
            "from": {"id": TG_CHAT, "is_bot": False, "first_name": TG_NAME},
            "chat": {"id": TG_CHAT, "type": "private"},
            "contact": {"phone_number": TG_PHONE, "first_name": TG_NAME},
        },
    }
    status, _ = await gateway.post_update(unknown)
    assert status < 500

    async def settled() -> bool:
        return await inbound_left(redis, gateway) == 0

    # Every entry is handled (or refused, or given up on): the queue keeps none of it.
    await eventually(settled, timeout=20, interval=0.1)

    captured = capsys.readouterr()
    output = everything_logged.getvalue() + captured.out + captured.err
    assert "DEBUG" in output  # the libraries' own chatter is there, scrubbed
    assert "sendMessage" in output
    for leak in (
        TOKEN,
        TOKEN.split(":", 1)[1],
        SECRET,
        KEY,
        WA_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        TG_PHONE,
        f"+{TG_PHONE}",
        "7700 900777",
        WA_NUMBER,
        "903 123-45-67",
        TG_NAME,
        WA_NAME,
        str(TG_CHAT),
    ):
        assert leak not in output, leak


async def test_a_clients_session_is_kept_for_session_retention_days(
    start_gateway: GatewayFactory, sandbox: Sandbox, redis: Redis
) -> None:
    gateway = await start_gateway(session_retention_days=3)
    chat = Chat(sandbox.telegram, TG_CHAT)
    await sandbox.telegram.client_says(TG_CHAT, "/start", first_name=TG_NAME)
    await eventually(lambda: chat.messages, timeout=10)
    key = gateway.runtime.keys.session("telegram", str(TG_CHAT))
    ttl = await redis.ttl(key)
    assert 3 * 24 * 3600 - 60 < ttl <= 3 * 24 * 3600


def test_session_retention_days_is_at_least_one() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SESSION_RETENTION_DAYS", "0")
        with pytest.raises(SettingsError) as error:
            load()
    assert any(p.startswith("SESSION_RETENTION_DAYS") for p in error.value.problems)
