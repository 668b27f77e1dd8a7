"""With limits on, the Telegram and WhatsApp stand-ins refuse what goes over the platforms'
send limits with the platforms' own error shapes, and let through what stays within them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from gateway.sandbox.flood import Bucket, Limits, SlidingWindow
from gateway.sandbox.telegram import TelegramSandbox
from gateway.sandbox.whatsapp import WhatsAppSandbox

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
WA_TOKEN = "EAAG-token"
NUMBER = "106540352242922"
JSON = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frozen(limits: Limits, clock: Clock) -> None:
    limits.sender.clock = clock
    limits.chat.clock = clock


def test_a_sliding_window_takes_the_limit_in_any_second_and_no_more() -> None:
    clock = Clock()
    window = SlidingWindow(3, clock=clock)
    for step in (0.0, 0.4, 0.9):
        clock.now = 1000.0 + step
        assert window.due("bot") == 0.0
        window.take("bot")
    clock.now = 1000.95
    assert window.due("bot") == pytest.approx(0.05)
    clock.now = 1001.0  # the first send has left the window
    assert window.due("bot") == 0.0
    window.take("bot")
    clock.now = 1001.3
    assert window.due("bot") == pytest.approx(0.1)  # 0.4's send leaves at 1.4
    assert window.due("another bot") == 0.0


def test_a_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = Bucket(1.0, 3, clock=clock)
    for _ in range(3):
        assert bucket.due("chat") == 0.0
        bucket.take("chat")
    assert bucket.due("chat") == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.due("chat") == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.due("chat") == 0.0


def test_a_refused_send_counts_against_neither_limit() -> None:
    clock = Clock()
    limits = Limits(SlidingWindow(2, clock=clock), Bucket(1.0, 1, clock=clock))
    assert limits.wait("a") == ("", 0.0)
    assert limits.wait("a") == ("chat", pytest.approx(1.0))
    assert limits.wait("b") == ("", 0.0)  # the refused one left room in the window
    assert limits.wait("c")[0] == "sender"
    assert limits.refused == 2


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[TelegramSandbox, str, ClientSession]]:
    sandbox = TelegramSandbox(TOKEN, None)
    server = TestServer(sandbox.app())
    await server.start_server()
    async with ClientSession() as http:
        yield sandbox, str(server.make_url(f"/bot{TOKEN}")), http
    await sandbox.close()
    await server.close()


async def tg_send(http: ClientSession, url: str, chat: int) -> tuple[int, JSON]:
    body = {"chat_id": chat, "text": "Reminder: tomorrow at 10:00"}
    async with http.post(f"{url}/sendMessage", json=body) as answer:
        return answer.status, await answer.json()


async def test_telegram_refuses_the_31st_message_in_a_second_with_its_429(
    telegram: tuple[TelegramSandbox, str, ClientSession],
) -> None:
    sandbox, url, http = telegram
    clock = Clock()
    frozen(sandbox.enforce_limits(), clock)
    for chat in range(30):
        status, answer = await tg_send(http, url, 5000 + chat)
        assert (status, answer["ok"]) == (200, True)
    status, answer = await tg_send(http, url, 6000)
    assert status == 429
    assert answer == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    clock.now += 1.0
    assert (await tg_send(http, url, 6000))[0] == 200
    assert len(sandbox.sent) == 31
    assert sandbox.errors == [("sendMessage", 429, "Too Many Requests: retry after 1")]


async def test_telegram_allows_a_short_burst_per_chat_then_one_a_second(
    telegram: tuple[TelegramSandbox, str, ClientSession],
) -> None:
    sandbox, url, http = telegram
    clock = Clock()
    frozen(sandbox.enforce_limits(per_chat=1.0, chat_burst=3), clock)
    assert [(await tg_send(http, url, 77))[0] for _ in range(4)] == [200, 200, 200, 429]
    clock.now += 0.5
    status, answer = await tg_send(http, url, 77)
    assert (status, answer["parameters"]) == (429, {"retry_after": 1})
    clock.now += 0.5
    assert (await tg_send(http, url, 77))[0] == 200
    # Another chat is not held up by this one, nor is what does not send a message.
    assert (await tg_send(http, url, 78))[0] == 200
    async with http.post(f"{url}/sendChatAction", json={"chat_id": 77, "action": "typing"}) as r:
        assert r.status == 200


async def test_aiogram_reads_the_429_as_retry_after(
    telegram: tuple[TelegramSandbox, str, ClientSession],
) -> None:
    sandbox, url, _http = telegram
    clock = Clock()
    frozen(sandbox.enforce_limits(per_bot=1), clock)
    base = url.removesuffix(f"/bot{TOKEN}") + "/"
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    try:
        await bot.send_message(1, "one")
        with pytest.raises(TelegramRetryAfter) as refused:
            await bot.send_message(2, "two")
        assert refused.value.retry_after == 1
    finally:
        await bot.session.close()


async def test_telegram_without_the_knob_takes_any_rate(
    telegram: tuple[TelegramSandbox, str, ClientSession],
) -> None:
    sandbox, url, http = telegram
    statuses = {(await tg_send(http, url, 9))[0] for _ in range(60)}
    assert statuses == {200}
    assert len(sandbox.sent) == 60


@pytest.fixture
async def whatsapp() -> AsyncIterator[tuple[WhatsAppSandbox, str, ClientSession]]:
    sandbox = WhatsAppSandbox(WA_TOKEN, NUMBER, "app-secret")
    sandbox.auto_statuses = False
    server = TestServer(sandbox.app())
    await server.start_server()
    async with ClientSession() as http:
        yield sandbox, str(server.make_url(f"/v23.0/{NUMBER}/messages")), http
    await sandbox.close()
    await server.close()


async def wa_send(http: ClientSession, url: str, to: str) -> tuple[int, JSON]:
    template = {
        "name": "frontdesk_reminder",
        "language": {"code": "en"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Cut"}, {"type": "text", "text": "10:00"}],
            }
        ],
    }
    body = {"messaging_product": "whatsapp", "to": to, "type": "template", "template": template}
    headers = {"Authorization": f"Bearer {WA_TOKEN}"}
    async with http.post(url, json=body, headers=headers) as answer:
        return answer.status, await answer.json()


def graph_error(answer: JSON) -> JSON:
    error = dict(answer["error"])
    assert isinstance(error.pop("fbtrace_id"), str)
    return error


async def test_whatsapp_refuses_the_81st_message_in_a_second_with_130429(
    whatsapp: tuple[WhatsAppSandbox, str, ClientSession],
) -> None:
    sandbox, url, http = whatsapp
    clock = Clock()
    frozen(sandbox.enforce_limits(), clock)
    for n in range(80):
        assert (await wa_send(http, url, f"7916000{n:04d}"))[0] == 200
    status, answer = await wa_send(http, url, "79169999999")
    assert status == 400
    assert graph_error(answer) == {
        "message": "(#130429) Rate limit hit",
        "type": "OAuthException",
        "code": 130429,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Cloud API message throughput has been reached.",
        },
    }
    clock.now += 1.0
    assert (await wa_send(http, url, "79169999999"))[0] == 200
    assert len(sandbox.sent) == 81


async def test_whatsapp_refuses_a_pair_over_its_burst_with_131056(
    whatsapp: tuple[WhatsAppSandbox, str, ClientSession],
) -> None:
    sandbox, url, http = whatsapp
    clock = Clock()
    frozen(sandbox.enforce_limits(per_number=1000, pair_rate=1 / 6, pair_burst=45), clock)
    for _ in range(45):
        assert (await wa_send(http, url, "79161234567"))[0] == 200
    status, answer = await wa_send(http, url, "79161234567")
    assert status == 400
    error = graph_error(answer)
    assert (error["code"], error["message"]) == (
        131056,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    )
    assert "too many messages sent from this phone number" in error["error_data"]["details"]
    assert (await wa_send(http, url, "79167654321"))[0] == 200  # another client
    clock.now += 6.0  # one message every 6 seconds
    assert (await wa_send(http, url, "79161234567"))[0] == 200
    assert (await wa_send(http, url, "79161234567"))[0] == 400
