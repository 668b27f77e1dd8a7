"""The common Telegram updates read straight from their JSON, without aiogram's models.

Nearly every update a salon's bot gets is one of two plain shapes: a client's text message in
their private chat (`/start`, `/menu` or words) or a tap on an inline button under one of the
bot's messages. Building aiogram's pydantic `Update` and feeding it through the dispatcher costs
more than the rest of the turn, so these two shapes are read here, field by field.

The rule that keeps the behaviour the same: an update is read here only when every field it
carries is one this module knows, of exactly the type the Bot API gives it (docs: Bot API
"Update", "Message", "User", "Chat", "MessageEntity", "CallbackQuery",
"InlineKeyboardMarkup", "InlineKeyboardButton"; ../shared/contracts/telegram-bot-api.json), so
aiogram's models would accept it as they are and its routers (handlers/telegram.py) would
choose what is chosen here. Anything else (another field, a group chat, a command with a bot's
@mention, which needs getMe) returns None, and the caller goes the aiogram way as before.
"""

from __future__ import annotations

from typing import Any

from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.menu import HOME

# The fields read or passed over here, per object; an object with any other goes to aiogram.
_USER = frozenset(
    {"id", "is_bot", "first_name", "last_name", "username", "language_code", "is_premium"}
)
_USER_TEXT = ("first_name", "last_name", "username", "language_code")
_CHAT = frozenset({"id", "type", "first_name", "last_name", "username"})
_CHAT_TEXT = ("type", "first_name", "last_name", "username")
_MESSAGE = frozenset({"message_id", "from", "chat", "date", "text", "entities"})
_BOT_MESSAGE = frozenset(
    {"message_id", "from", "chat", "date", "text", "entities", "edit_date", "reply_markup"}
)
_ENTITY = frozenset({"type", "offset", "length"})
_QUERY = frozenset({"id", "from", "message", "chat_instance", "data"})
_BUTTON = frozenset({"text", "callback_data"})
# pydantic reads an integer date as Unix seconds up to 2e10 (beyond: milliseconds).
_LATEST_DATE = 20_000_000_000


def plain_event(update: dict[str, Any], salon_id: str) -> tuple[Inbound, str | None] | None:
    """The client's event and the tap's query id, or None when aiogram is to read the update."""
    if len(update) != 2 or not _is_int(update.get("update_id")):
        return None
    message = update.get("message")
    if message is not None:
        return _message(message, salon_id)
    query = update.get("callback_query")
    if query is not None:
        return _tap(query, salon_id)
    return None


def _message(message: object, salon_id: str) -> tuple[Inbound, str | None] | None:
    if not _shaped(message, _MESSAGE, ("message_id", "from", "chat", "date", "text")):
        return None
    assert isinstance(message, dict)
    user, chat, text = message["from"], message["chat"], message["text"]
    if not (
        _is_int(message["message_id"])
        and _is_date(message["date"])
        and type(text) is str
        and _user(user)
        and _private_chat(chat)
        and _entities(message.get("entities"))
    ):
        return None
    kind, fields = Kind.TEXT, {"text": text}
    # As aiogram's Command filter reads a command: the first word, its prefix, its @mention.
    words = text.split(maxsplit=1)
    if words and words[0].startswith("/"):
        command, _, mention = words[0][1:].partition("@")
        if mention:
            return None  # aiogram compares it with the bot's username (getMe)
        if command == "start":
            kind, fields = Kind.START, {}
        elif command == "menu":
            kind, fields = Kind.CHOICE, {"choice": HOME}
    inbound = Inbound(
        client=ClientRef(salon_id, Channel.TELEGRAM, str(user["id"]), str(chat["id"])),
        kind=kind,
        event_id=f"{chat['id']}:{message['message_id']}",
        name=_full_name(user),
        language=user.get("language_code"),
        **fields,
    )
    return inbound, None


def _tap(query: object, salon_id: str) -> tuple[Inbound, str | None] | None:
    required = ("id", "from", "message", "chat_instance", "data")
    if not _shaped(query, _QUERY, required):
        return None
    assert isinstance(query, dict)
    user, message, data = query["from"], query["message"], query["data"]
    if not (
        type(query["id"]) is str
        and type(query["chat_instance"]) is str
        and type(data) is str
        and _user(user)
        and _bot_message(message)
    ):
        return None
    chat = message["chat"]
    inbound = Inbound(
        client=ClientRef(salon_id, Channel.TELEGRAM, str(user["id"]), str(chat["id"])),
        kind=Kind.CHOICE,
        event_id=f"cb:{query['id']}",
        choice=data,
        name=_full_name(user),
        language=user.get("language_code"),
        label=_label(message.get("reply_markup"), data),
    )
    return inbound, query["id"]


def _bot_message(message: object) -> bool:
    # A message dated 0 is an InaccessibleMessage (Bot API "MaybeInaccessibleMessage").
    if not _shaped(message, _BOT_MESSAGE, ("message_id", "from", "chat", "date")):
        return False
    assert isinstance(message, dict)
    return (
        _is_int(message["message_id"])
        and _is_date(message["date"])
        and message["date"] > 0
        and _user(message["from"])
        and _private_chat(message["chat"])
        and type(message.get("text", "")) is str
        and ("edit_date" not in message or _is_date(message["edit_date"]))
        and _entities(message.get("entities"))
        and _keyboard(message.get("reply_markup"))
    )


def _label(markup: dict[str, Any] | None, data: str) -> str:
    """The text of the tapped button, as handlers.telegram._label finds it."""
    if markup is None:
        return ""
    for row in markup["inline_keyboard"]:
        for button in row:
            if button.get("callback_data") == data:
                return str(button["text"])
    return ""


def _keyboard(markup: object) -> bool:
    if markup is None:
        return True
    if not (isinstance(markup, dict) and markup.keys() == {"inline_keyboard"}):
        return False
    rows = markup["inline_keyboard"]
    if type(rows) is not list:
        return False
    # Plain loops and one comparison of the keys per button (exactly `text` and
    # `callback_data`, what `_shaped` asks of it): a screen of times has some twenty buttons,
    # and generators cost about a µs each.
    for row in rows:
        if type(row) is not list:
            return False
        for button in row:
            if not (
                isinstance(button, dict)
                and button.keys() == _BUTTON
                and type(button["text"]) is str
                and type(button["callback_data"]) is str
            ):
                return False
    return True


def _user(user: object) -> bool:
    if not _shaped(user, _USER, ("id", "is_bot", "first_name")):
        return False
    assert isinstance(user, dict)
    return (
        _is_int(user["id"])
        and type(user["is_bot"]) is bool
        and _texts(user, _USER_TEXT)
        and type(user.get("is_premium", True)) is bool
    )


def _private_chat(chat: object) -> bool:
    # aiogram's routers here answer private chats only (handlers.telegram._in_private_chat).
    if not _shaped(chat, _CHAT, ("id", "type")):
        return False
    assert isinstance(chat, dict)
    return _is_int(chat["id"]) and chat["type"] == "private" and _texts(chat, _CHAT_TEXT)


def _entities(entities: object) -> bool:
    if entities is None:
        return True
    return type(entities) is list and all(
        _shaped(entity, _ENTITY, ("type", "offset", "length"))
        and type(entity["type"]) is str
        and _is_int(entity["offset"])
        and _is_int(entity["length"])
        for entity in entities
    )


def _shaped(value: object, known: frozenset[str], required: tuple[str, ...]) -> bool:
    """A JSON object with every required field and no field outside `known`."""
    # Set comparisons of the keys, in C: this runs for every object of every update.
    return isinstance(value, dict) and known.issuperset(value) and value.keys() >= set(required)


def _texts(value: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Each of these optional fields, when given, is a string."""
    # A loop, not all() over a generator: half the cost, on every user and chat of an update.
    for name in names:  # noqa: SIM110
        if type(value.get(name, "")) is not str:
            return False
    return True


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool, not a float or a numeric string


def _is_date(value: object) -> bool:
    return type(value) is int and 0 <= value <= _LATEST_DATE


def _full_name(user: dict[str, Any]) -> str:
    # aiogram's User.full_name: the first name, and the last name after a space if any.
    last = user.get("last_name")
    return f"{user['first_name']} {last}" if last else str(user["first_name"])
