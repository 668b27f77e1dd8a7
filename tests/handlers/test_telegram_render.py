"""Telegram as a channel: the bot's replies as Bot API calls, staff's words and files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows import menu
from bot.i18n import Catalogs
from bot.replies import Choice, Reply
from bot.salon import Salon
from bot.session import Session
from handlers.channels.telegram import render

LOCALES = Path(__file__).resolve().parents[2] / "locales"


def test_a_tap_is_acknowledged_first_and_ephemerally() -> None:
    reply = Reply("Hello", (Choice("m:book", "📅 Book"),))
    first, second = render("42", (reply,), "cbq-1")
    assert (first.method, first.params, first.ephemeral) == (
        "answerCallbackQuery",
        {"callback_query_id": "cbq-1"},
        True,
    )
    assert (first.channel, first.chat) == ("telegram", "42")
    assert second.method == "sendMessage"
    assert not second.ephemeral


def test_replies_become_messages_with_keyboards_in_rows_of_columns() -> None:
    choices = tuple(Choice(f"c{i}", f"Label {i}") for i in range(5))
    sent = render("42", (Reply("Pick one", choices, columns=2), Reply("No buttons")), None)
    assert [o.method for o in sent] == ["sendMessage", "sendMessage"]
    keyboard = sent[0].params["reply_markup"]["inline_keyboard"]
    assert [[button["callback_data"] for button in row] for row in keyboard] == [
        ["c0", "c1"],
        ["c2", "c3"],
        ["c4"],
    ]
    assert keyboard[0][0] == {"text": "Label 0", "callback_data": "c0"}
    assert sent[0].params["chat_id"] == 42
    assert sent[0].params["text"] == "Pick one"
    assert sent[1].params == {"chat_id": 42, "text": "No buttons"}


def test_a_column_hint_of_zero_still_renders_one_button_per_row() -> None:
    choices = (Choice("a", "A"), Choice("b", "B"))
    [sent] = render("-1001234", (Reply("x", choices, columns=0),), None)
    assert sent.params["chat_id"] == -1001234
    assert sent.params["reply_markup"]["inline_keyboard"] == [
        [{"text": "A", "callback_data": "a"}],
        [{"text": "B", "callback_data": "b"}],
    ]


async def test_every_menu_choice_fits_in_callback_data() -> None:
    catalogs = Catalogs(LOCALES)
    desk = FrontDesk(Salon("main", "Studio Nord", "UTC"), catalogs, idle=timedelta(hours=1))
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    client = ClientRef("main", Channel.TELEGRAM, "42", "42")
    replies: list[Reply] = []
    for locale in catalogs.locales:
        translate = catalogs.get(locale)
        replies += [menu.menu(translate, "x"), menu.languages(translate, catalogs.locales)]
    for choice in [*[c.id for c in replies[0].choices], menu.HOME]:
        event = Inbound(client, Kind.CHOICE, "e", choice=choice)
        replies += (await desk.handle(Session(), event, now)).replies
    sent = render("42", tuple(replies), None)
    data = [
        button["callback_data"]
        for call in sent
        for row in call.params["reply_markup"]["inline_keyboard"]
        for button in row
    ]
    assert len(data) > 20
    assert all(0 < len(value.encode()) <= 64 for value in data)
