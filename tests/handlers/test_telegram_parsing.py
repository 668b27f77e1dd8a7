"""Telegram at the edge: webhook authentication and parsing, updates to events, replies to calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Update
from multidict import CIMultiDict

from bot.events import Channel, ClientRef, Kind
from gateway.pipeline.edge import Malformed
from gateway.pipeline.inbox import Event
from handlers.telegram import (
    SECRET_HEADER,
    TelegramEvent,
    TelegramWebhook,
    build_router,
    conversation_of,
)

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SECRET = "test-webhook-secret_1"
LOCALES = Path(__file__).resolve().parents[2] / "locales"
ANNA = {"id": 42, "is_bot": False, "first_name": "Anna", "language_code": "ru"}
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Front desk"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Anna"}
GROUP = {"id": -1001234, "type": "group", "title": "Salon regulars"}


def message(
    text: str | None = None, chat: dict[str, Any] = PRIVATE, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"message_id": 7, "date": 1_740_830_400, "chat": chat, "from": ANNA}
    if text is not None:
        body["text"] = text
    return {"update_id": 1001, "message": body | extra}


def callback(data: str, chat: dict[str, Any] = PRIVATE) -> dict[str, Any]:
    shown = {"message_id": 8, "date": 1_740_830_400, "chat": chat, "from": BOT_USER, "text": "…"}
    return {
        "update_id": 1002,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": ANNA,
            "chat_instance": "-539",
            "data": data,
            "message": shown,
        },
    }


# Webhook edge


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({SECRET_HEADER: SECRET}, True),
        ({}, False),
        ({SECRET_HEADER: ""}, False),
        ({SECRET_HEADER: "wrong-secret"}, False),
        ({SECRET_HEADER: SECRET[:-1]}, False),
        ({SECRET_HEADER: SECRET + "x"}, False),
        ({SECRET_HEADER: SECRET.upper()}, False),
        ({SECRET_HEADER: "секрет"}, False),
        ({"Authorization": SECRET}, False),
    ],
)
def test_only_the_exact_secret_authenticates(headers: dict[str, str], accepted: bool) -> None:
    assert TelegramWebhook(SECRET).authenticate(headers) is accepted


def test_the_header_name_is_case_insensitive_as_http_says() -> None:
    headers = CIMultiDict({SECRET_HEADER.lower(): SECRET})
    assert TelegramWebhook(SECRET).authenticate(headers)


def test_parse_gives_one_event_keyed_by_update_id_and_chat() -> None:
    raw = json.dumps(message("hi")).encode()
    assert TelegramWebhook(SECRET).parse({}, raw) == [Event("telegram", "1001", "tg:42", raw)]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe{",
        b"[1, 2]",
        b'"update"',
        b"null",
        b"{}",
        b'{"update_id": true, "message": {}}',
        b'{"update_id": "1001"}',
        b'{"update_id": 1001.0}',
        b'{"update_id": null}',
    ],
)
def test_parse_rejects_what_telegram_does_not_send(raw: bytes) -> None:
    with pytest.raises(Malformed):
        TelegramWebhook(SECRET).parse({}, raw)


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 3, "edited_message": message("hi!")["message"]},
        {"update_id": 4, "message_reaction": {"chat": PRIVATE, "user": ANNA}},
        {"update_id": 5, "brand_new_type": {"chat": PRIVATE}},
        {"update_id": 6, "message": "not an object"},
        {"update_id": 7},
    ],
)
def test_updates_of_types_the_bot_does_not_handle_are_not_queued(update: dict[str, Any]) -> None:
    """`webhooks set` subscribes to message and callback_query only (allowed_updates)."""
    assert TelegramWebhook(SECRET).parse({}, json.dumps(update).encode()) == []


# Conversations


@pytest.mark.parametrize(
    ("update", "conversation"),
    [
        (message("hi"), "tg:42"),
        (message("hi", chat=GROUP), "tg:-1001234"),
        (callback("m:book"), "tg:42"),
        (callback("m:book", chat=GROUP), "tg:-1001234"),
        ({"update_id": 3, "edited_message": message("hi!")["message"]}, "tg:42"),
        (
            {
                "update_id": 4,
                "my_chat_member": {
                    "chat": PRIVATE,
                    "from": ANNA,
                    "date": 1_740_830_400,
                    "old_chat_member": {"status": "member", "user": BOT_USER},
                    "new_chat_member": {"status": "kicked", "user": BOT_USER, "until_date": 0},
                },
            },
            "tg:42",
        ),
        (
            {
                "update_id": 5,
                "callback_query": {"id": "q", "from": ANNA, "inline_message_id": "im"},
            },
            "tg:42",
        ),
        ({"update_id": 6, "inline_query": {"id": "q", "from": ANNA, "query": ""}}, "tg:42"),
        ({"update_id": 7, "poll": {"id": "p", "question": "?", "options": []}}, "tg:update:7"),
        # Chat and user ids are Integers (Bot API): a string or a float is not used as a key.
        ({"update_id": 8, "message": {"chat": {"id": "42x"}, "from": {"id": 4.5}}}, "tg:update:8"),
        ({"update_id": 9, "message": {"chat": {"id": True}, "from": ANNA}}, "tg:42"),
    ],
)
def test_conversation_of(update: dict[str, Any], conversation: str) -> None:
    assert conversation_of(update) == conversation


# aiogram routing


@pytest.fixture
async def dispatch() -> AsyncIterator[Any]:
    bot = Bot(TOKEN)
    dispatcher = Dispatcher()
    dispatcher.include_router(build_router("main"))

    async def feed(update: dict[str, Any]) -> Any:
        parsed = Update.model_validate(update, context={"bot": bot})
        return await dispatcher.feed_update(bot, parsed)

    yield feed
    await bot.session.close()


async def test_start_becomes_a_start_event(dispatch: Any) -> None:
    event = await dispatch(message("/start"))
    assert isinstance(event, TelegramEvent)
    assert event.callback_query_id is None
    inbound = event.inbound
    assert inbound.kind is Kind.START
    assert inbound.client == ClientRef("main", Channel.TELEGRAM, "42", "42")
    assert inbound.client.key == "main:telegram:42"
    assert inbound.event_id == "42:7"
    assert (inbound.name, inbound.language) == ("Anna", "ru")


async def test_start_with_a_deep_link_is_still_start(dispatch: Any) -> None:
    event = await dispatch(message("/start promo-march"))
    assert event.inbound.kind is Kind.START


async def test_text_becomes_a_text_event(dispatch: Any) -> None:
    event = await dispatch(message("Do you do manicure?"))
    assert event.inbound.kind is Kind.TEXT
    assert event.inbound.text == "Do you do manicure?"


async def test_menu_command_is_the_home_choice(dispatch: Any) -> None:
    event = await dispatch(message("/menu"))
    assert (event.inbound.kind, event.inbound.choice) == (Kind.CHOICE, "m:home")


async def test_a_photo_with_a_caption_is_its_caption(dispatch: Any) -> None:
    photo = [{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}]
    event = await dispatch(message(photo=photo, caption="Like this, please"))
    assert (event.inbound.kind, event.inbound.text) == (Kind.TEXT, "Like this, please")
    bare = await dispatch(message(photo=photo))
    assert (bare.inbound.kind, bare.inbound.text) == (Kind.TEXT, "")


async def test_a_tap_becomes_a_choice_with_its_callback_query_id(dispatch: Any) -> None:
    event = await dispatch(callback("m:book"))
    assert event.callback_query_id == "4382bfdwdsb323b2d9"
    inbound = event.inbound
    assert (inbound.kind, inbound.choice) == (Kind.CHOICE, "m:book")
    assert inbound.client.chat_id == "42"
    assert inbound.event_id == "cb:4382bfdwdsb323b2d9"
    assert (inbound.name, inbound.language) == ("Anna", "ru")


@pytest.mark.parametrize(
    "update",
    [message("/start", chat=GROUP), message("hi all", chat=GROUP), callback("m:book", GROUP)],
)
async def test_groups_are_ignored(dispatch: Any, update: dict[str, Any]) -> None:
    assert await dispatch(update) is UNHANDLED


async def test_edits_are_ignored(dispatch: Any) -> None:
    edited = {"update_id": 3, "edited_message": message("hi!")["message"] | {"edit_date": 1}}
    assert await dispatch(edited) is UNHANDLED


async def test_a_tap_carries_the_pressed_buttons_label(dispatch: Any) -> None:
    update = callback("m:info")
    update["callback_query"]["message"]["reply_markup"] = {
        "inline_keyboard": [
            [{"text": "📅 Book", "callback_data": "m:book"}],
            [{"text": "📍 Address & hours", "callback_data": "m:info"}],
        ]
    }
    assert (await dispatch(update)).inbound.label == "📍 Address & hours"
    # No keyboard on the message (or a button no longer there): no label.
    assert (await dispatch(callback("m:info"))).inbound.label == ""
    update["callback_query"]["data"] = "m:gone"
    assert (await dispatch(update)).inbound.label == ""
