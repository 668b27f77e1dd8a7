"""Workers and the outbox: order per chat, retries, RetryAfter, dead letters and their replay."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.i18n import Catalogs
from bot.salon import Salon
from bot.session import Session
from gateway.pipeline.dlq import DeadLetters
from gateway.pipeline.inbox import Event
from tests.conftest import GatewayFactory, Sandbox, eventually
from tests.gateway.pipeline.test_edge import update

INPUTS = ["/start", "hello?", "📍 Address & hours", "🌐 Language", "📅 Book", "what?", "Русский"]


async def expected_texts(inputs: list[str]) -> list[str]:
    """What the bot must answer, in order: the pure flow applied to the same inputs."""
    desk = FrontDesk(
        Salon(
            "x",
            "Studio Nord",
            "Europe/Moscow",
            "Tverskaya 1, Moscow",
            "+7 495 123-45-67",
            "Mon–Sun 10:00–21:00",
        ),
        Catalogs(default_locale="en"),
        idle=timedelta(days=1),
    )
    session, texts = Session(), []
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    client = ClientRef("x", Channel.TELEGRAM, "31", "31")
    for n, text in enumerate(inputs):
        kind = Kind.START if text == "/start" else Kind.TEXT
        turn = await desk.handle(
            session, Inbound(client, kind, str(n), text=text, name="Anna", language="en"), now
        )
        session = turn.session
        texts += [reply.text for reply in turn.replies]
    return texts


async def test_a_burst_of_50_updates_from_one_chat_is_answered_in_order(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    gateway = await start_gateway()
    rng = random.Random(7)
    inputs = ["/start", *(rng.choice(INPUTS) for _ in range(49))]
    # Telegram delivers one chat's updates one after another; the workers are still busy with
    # the first ones while the rest arrive.
    for n, text in enumerate(inputs):
        assert (await gateway.post_update(update(1000 + n, chat_id=31, text=text)))[0] == 200
    await eventually(lambda: len(sandbox.telegram.messages_for(31)) >= 50, timeout=20)
    got = [m["text"] for m in sandbox.telegram.messages_for(31)]
    assert got == await expected_texts(inputs)


async def test_tapped_buttons_are_acknowledged_and_answered(
    gateway: object, sandbox: Sandbox
) -> None:
    tg = sandbox.telegram
    await tg.client_says(41, "/start")
    menu = (await eventually(lambda: tg.messages_for(41)))[0]
    await tg.client_taps(41, menu["message_id"], "m:info")
    messages = await eventually(lambda: tg.messages_for(41)[1:])
    assert "📍 Tverskaya 1, Moscow" in messages[0]["text"]
    assert "🕘 Mon–Sun 10:00–21:00" in messages[0]["text"]
    answered = [c for c in tg.sent if c.method == "answerCallbackQuery"]
    assert len(answered) == 1


async def test_language_choice_is_remembered(gateway: object, sandbox: Sandbox) -> None:
    tg = sandbox.telegram
    await tg.client_says(42, "/start", language_code="en")
    menu = (await eventually(lambda: tg.messages_for(42)))[0]
    await tg.client_taps(42, menu["message_id"], "m:lang")
    prompt = (await eventually(lambda: tg.messages_for(42)[1:]))[0]
    assert prompt["text"] == "Choose your language:"
    await tg.client_taps(42, prompt["message_id"], "lang:ru")
    done = (await eventually(lambda: tg.messages_for(42)[2:]))[0]
    assert done["text"].startswith("Готово")
    await tg.client_says(42, "/start", language_code="en")
    again = (await eventually(lambda: tg.messages_for(42)[3:]))[0]
    assert again["text"].startswith("Здравствуйте, Anna!")


async def test_retry_after_is_honoured(gateway: object, sandbox: Sandbox) -> None:
    tg = sandbox.telegram
    tg.fail_next("sendMessage", error_code=429, description="Too Many Requests", retry_after=1)
    started = asyncio.get_running_loop().time()
    await tg.client_says(43, "/start")
    await eventually(lambda: tg.messages_for(43), timeout=10)
    assert asyncio.get_running_loop().time() - started >= 1.0
    assert len(tg.messages_for(43)) == 1


async def test_transient_failures_are_retried_then_delivered_in_order(
    gateway: object, sandbox: Sandbox
) -> None:
    tg = sandbox.telegram
    tg.fail_next("sendMessage", error_code=502, description="Bad Gateway", times=2)
    await tg.client_says(44, "/start")
    await tg.client_says(44, "📍 Address & hours")
    messages = await eventually(lambda: len(tg.messages_for(44)) == 2 and tg.messages_for(44))
    assert messages[0]["text"].startswith("Hello, Anna!")
    assert "Tverskaya" in messages[1]["text"]


async def test_failures_past_the_schedule_are_dead_lettered_and_can_be_replayed(
    gateway: object, sandbox: Sandbox, redis: Redis, salon_id: str
) -> None:
    tg = sandbox.telegram
    # Schedule in tests: 3 retries; the 4th failure is final.
    tg.fail_next("sendMessage", error_code=500, description="Internal Server Error", times=4)
    await tg.client_says(45, "/start")
    letters = DeadLetters(redis, salon_id, 4)
    dead = await eventually(letters.newest, timeout=10)
    assert dead[0].kind == "outbound"
    assert "Internal Server Error" in dead[0].error
    assert tg.messages_for(45) == []

    replayed, missing = await letters.replay([dead[0].id])
    assert (replayed, missing) == ([dead[0].id], [])
    await eventually(lambda: tg.messages_for(45), timeout=10)
    assert await letters.newest() == []


async def test_a_client_who_blocked_the_bot_is_dead_lettered_at_once(
    gateway: object, sandbox: Sandbox, redis: Redis, salon_id: str
) -> None:
    tg = sandbox.telegram
    tg.fail_next(
        "sendMessage", error_code=403, description="Forbidden: bot was blocked by the user"
    )
    await tg.client_says(46, "/start")
    dead = await eventually(DeadLetters(redis, salon_id, 4).newest, timeout=5)
    assert dead[0].attempts == 0
    assert "blocked" in dead[0].error
    # The next message to the same chat is not held up by it.
    await tg.client_says(46, "📍 Address & hours")
    await eventually(lambda: tg.messages_for(46), timeout=5)


async def test_an_entry_that_keeps_failing_is_dead_lettered_with_its_error(
    start_gateway: GatewayFactory, sandbox: Sandbox, redis: Redis, salon_id: str
) -> None:
    gateway = await start_gateway(max_attempts=2)
    # A WhatsApp message queued before WhatsApp was switched off: no handler takes it, a
    # failure that may end (it is retried, then kept to be replayed), unlike an entry that can
    # never be read (dropped: tests/test_flow_telegram_malformed.py).
    body = b'{"kind":"message","message":{"id":"wamid.77","type":"text"}}'
    assert await gateway.runtime.inbox.put(Event("whatsapp", "m:wamid.77", "wa:47", body))
    letters = DeadLetters(redis, salon_id, 4)
    dead = await eventually(letters.newest, timeout=10)
    assert dead[0].kind == "inbound"
    assert dead[0].attempts == 2
    assert "LookupError" in dead[0].error
    assert dead[0].describe() == "whatsapp event m:wamid.77 of wa:47"
