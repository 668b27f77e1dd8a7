"""Plain Telegram updates read without aiogram: the very event aiogram's routers make, or None
(then aiogram reads the update, as before)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.events import Kind
from handlers.telegram import TelegramEvent, build_router
from handlers.telegram_plain import plain_event
from tests.handlers.test_fuzz_parsing import FUZZ
from tests.support.fuzz import mutated

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SALON = "s1"
ANNA = {
    "id": 42,
    "is_bot": False,
    "first_name": "Anna",
    "last_name": "Ivanova",
    "username": "anna_iv",
    "language_code": "ru",
}
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Front desk", "username": "desk_bot"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Anna", "username": "anna_iv"}
JSON = dict[str, Any]
Route = Callable[[JSON], Awaitable[TelegramEvent | None]]


def said(text: str, **extra: Any) -> JSON:
    body = {"message_id": 7, "date": 1_790_000_000, "chat": PRIVATE, "from": ANNA, "text": text}
    if text.startswith("/"):
        body["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return {"update_id": 1001, "message": body | extra}


def tapped(data: str, **extra: Any) -> JSON:
    shown = {
        "message_id": 8,
        "date": 1_790_000_000,
        "chat": PRIVATE,
        "from": BOT_USER,
        "text": "Choose a day:",
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Tue 2", "callback_data": "b:d:20260602"}],
                [{"text": "‹ Back", "callback_data": "b:back"}],
            ]
        },
    }
    query = {"id": "4382bf", "from": ANNA, "chat_instance": "-539", "data": data, "message": shown}
    return {"update_id": 1002, "callback_query": query | extra}


@pytest.fixture
async def routed() -> AsyncIterator[Route]:
    """What aiogram's models and the routers make of an update (no network: no @mention)."""
    bot = Bot(TOKEN)
    dispatcher = Dispatcher(disable_fsm=True)
    dispatcher.include_router(build_router(SALON))

    async def route(data: JSON) -> TelegramEvent | None:
        update = Update.model_validate(data, context={"bot": bot})
        result = await dispatcher.feed_update(bot, update)
        return result if isinstance(result, TelegramEvent) else None

    yield route
    await bot.session.close()


def plain(data: JSON) -> TelegramEvent | None:
    found = plain_event(json.loads(json.dumps(data)), SALON)
    return None if found is None else TelegramEvent(*found)


@pytest.mark.parametrize(
    "update",
    [
        said("/start"),
        said("/start campaign-42"),
        said("/menu"),
        said("/menu now please"),
        said("/Start"),  # aiogram's commands are case-sensitive: words
        said("/startx"),
        said("/"),
        said("   "),
        said(""),
        said("Можно записаться на стрижку завтра в пять? 💇"),
        said("hi", **{"from": {"id": 42, "is_bot": False, "first_name": "Anna"}}),
        tapped("b:d:20260602"),
        tapped("b:back"),
        tapped("b:t:202606020700"),  # a button no longer on the message: no label
    ],
    ids=lambda update: json.dumps(update, ensure_ascii=False)[-60:],
)
async def test_a_plain_update_gives_the_event_aiogram_gives(routed: Route, update: JSON) -> None:
    found = plain(update)
    assert found is not None
    assert found == await routed(update)


async def test_the_events_say_what_the_client_did() -> None:
    start = plain(said("/start"))
    assert start is not None
    assert start.inbound.kind is Kind.START
    assert (start.inbound.name, start.inbound.language) == ("Anna Ivanova", "ru")
    assert (start.inbound.event_id, start.callback_query_id) == ("42:7", None)
    tap = plain(tapped("b:d:20260602"))
    assert tap is not None
    assert tap.callback_query_id == "4382bf"
    assert (tap.inbound.kind, tap.inbound.choice, tap.inbound.label) == (
        Kind.CHOICE,
        "b:d:20260602",
        "Tue 2",
    )


@pytest.mark.parametrize(
    "update",
    [
        said("/start@desk_bot"),  # aiogram checks the mention against getMe
        said("hi", chat={"id": -100, "type": "group", "title": "Regulars"}),
        said("hi", caption="a photo"),
        said("hi", reply_to_message={"message_id": 1, "date": 1, "chat": PRIVATE}),
        said("hi", message_id="7"),  # pydantic would coerce it: aiogram decides
        said("hi", message_id=True),
        said("hi", date=0.5),
        said("hi", **{"from": ANNA | {"id": "42"}}),
        said("hi", **{"from": ANNA | {"is_bot": "false"}}),
        said("hi", entities=[{"offset": 0, "length": 2, "type": "url", "url": "x"}]),
        {"update_id": 1, "edited_message": said("hi")["message"]},
        {"update_id": 1, "message": said("hi")["message"], "callback_query": {}},
        {"update_id": 1, "message": {**said("hi")["message"], "contact": {"phone_number": "1"}}},
        tapped("b:back", message={**tapped("x")["callback_query"]["message"], "date": 0}),
        tapped("b:back", game_short_name="g"),
        tapped("b:back", inline_message_id="abc"),
        {"update_id": 1, "callback_query": {"id": "1", "from": ANNA, "chat_instance": "1"}},
    ],
)
def test_anything_else_is_left_to_aiogram(update: JSON) -> None:
    assert plain(update) is None


@FUZZ
@given(data=st.data())
async def test_what_is_read_plainly_aiogram_reads_the_same(
    routed: Route, data: st.DataObject
) -> None:
    """Mutated plain updates: whenever one is read here, aiogram reads it too (no validation
    error it would have raised is skipped) into the same event."""
    template = data.draw(st.sampled_from([said("/start"), said("hello"), tapped("b:back")]))
    try:
        update = orjson.loads(data.draw(mutated(template)))
    except orjson.JSONDecodeError:
        return  # refused at the edge (400): never queued
    if not isinstance(update, dict):
        return
    found = plain_event(update, SALON)
    if found is None:
        return
    try:
        expected = await routed(update)
    except ValidationError as exc:  # pragma: no cover - the failure this test looks for
        raise AssertionError(f"read plainly, refused by aiogram: {exc}") from None
    assert TelegramEvent(*found) == expected
