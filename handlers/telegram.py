"""Telegram: the webhook's edge rules, aiogram routers that turn updates into the bot's events,
and the worker's handler that runs the bot's turn on them. The rendering of the bot's replies
as Telegram messages is the channel's (handlers/channels/telegram.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message, Update, User
from pydantic import ValidationError

from bot.conversation import FrontDesk
from bot.events import Channel, ClientRef, Inbound, Kind
from bot.flows.menu import HOME
from bot.flows.turn import Turn
from gateway.analytics.facts import Recorder
from gateway.pipeline import (
    MAX_BODY,
    Entry,
    Event,
    Identities,
    Malformed,
    Outcome,
    SessionStore,
    Unreadable,
    entry_object,
    load_object,
    whole_number,
)
from handlers.channels import TELEGRAM, Rendered
from handlers.channels.telegram import render
from handlers.mirror import Mirror
from handlers.telegram_plain import plain_event
from handlers.turns import TurnRunner

SOURCE = "telegram"
CHANNEL = TELEGRAM
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# The update types the routers below handle; `webhooks set` registers exactly these.
ALLOWED_UPDATES = ("message", "callback_query")


class TelegramWebhook:
    """Edge rules for `POST /webhooks/telegram`."""

    name = SOURCE
    signed_body = False  # the secret-token header authenticates before the body is read
    max_body = MAX_BODY

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes: encoded back as
        # they came, they simply do not match.
        given = headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self._secret)

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        return True  # the secret header, checked before the body was read, is the proof

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        # orjson (through webhook_json): a third of the stdlib's time on an update (1.7 µs
        # against 5.2), on the edge's hot path.
        update = load_object(raw)
        update_id = whole_number(update.get("update_id"))
        if update_id is None:
            raise Malformed("no integer update_id")
        if not handled_kind(update):
            # Telegram sends only the types `webhooks set` subscribed to, but a webhook set by
            # hand (or a newer Bot API) may send others: acknowledged and ignored, never
            # queued, so aiogram never sees an update type it does not know.
            return []
        return [Event(SOURCE, str(update_id), conversation_of(update), raw)]


def handled_kind(update: dict[str, Any]) -> bool:
    """Whether the update is of a type the routers below handle."""
    return any(isinstance(update.get(kind), dict) for kind in ALLOWED_UPDATES)


def conversation_of(update: dict[str, Any]) -> str:
    """The chat an update belongs to: its events are handled one at a time, in order."""
    for kind, value in update.items():
        if not isinstance(value, dict) or kind == "update_id":
            continue
        chat = value.get("chat")
        if kind == "callback_query" and isinstance(value.get("message"), dict):
            chat = value["message"].get("chat")
        # Chat and user ids are Integers (Bot API, "Chat" and "User"): anything else is not
        # used as a key.
        chat_id = whole_number(chat.get("id")) if isinstance(chat, dict) else None
        if chat_id is not None:
            return CHANNEL.key(str(chat_id))
        sender = value.get("from")
        sender_id = whole_number(sender.get("id")) if isinstance(sender, dict) else None
        if sender_id is not None:
            return CHANNEL.key(str(sender_id))
    return CHANNEL.key(f"update:{update.get('update_id')}")


@dataclass(frozen=True, slots=True)
class TelegramEvent:
    inbound: Inbound
    callback_query_id: str | None = None


async def _in_private_chat(message: Message) -> bool:
    # A private chat's messages have a sender ("from" is empty only for messages sent to
    # channels, Bot API "Message"): one without is not a client's and is ignored.
    return message.chat.type == "private" and message.from_user is not None


async def _tapped_in_private_chat(query: CallbackQuery) -> bool:
    return query.message is not None and query.message.chat.type == "private"


async def _shares_own_contact(message: Message) -> bool:
    # Someone else's contact card is not the client's phone: it is answered as not understood.
    contact = message.contact
    sender = message.from_user
    return contact is not None and sender is not None and contact.user_id == sender.id


def build_router(salon_id: str) -> Router:
    """Private chats only: a salon's bot added to a group stays quiet there."""
    router = Router(name="frontdesk")
    # Filters are coroutines on purpose: aiogram runs a plain callable (a magic filter such as
    # F.chat.type == "private" included) in a worker thread, a thread hop on every update.
    router.message.filter(_in_private_chat)
    router.callback_query.filter(_tapped_in_private_chat)

    def client(user: User, chat_id: int) -> ClientRef:
        return ClientRef(salon_id, Channel.TELEGRAM, str(user.id), str(chat_id))

    def inbound(message: Message, kind: Kind, **fields: str) -> TelegramEvent:
        user = message.from_user
        assert user is not None  # private chats always have a sender
        return TelegramEvent(
            Inbound(
                client=client(user, message.chat.id),
                kind=kind,
                event_id=f"{message.chat.id}:{message.message_id}",
                name=user.full_name,
                language=user.language_code,
                **fields,
            )
        )

    @router.message(CommandStart())
    async def start(message: Message) -> TelegramEvent:
        return inbound(message, Kind.START)

    @router.message(Command("menu"))
    async def show_menu(message: Message) -> TelegramEvent:
        return inbound(message, Kind.CHOICE, choice=HOME)

    @router.message(_shares_own_contact)
    async def shared_contact(message: Message) -> TelegramEvent:
        assert message.contact is not None
        return inbound(message, Kind.CONTACT, phone=message.contact.phone_number)

    @router.message()
    async def text(message: Message) -> TelegramEvent:
        # Photos, stickers and the like carry no text: the bot answers them as not understood.
        return inbound(message, Kind.TEXT, text=message.text or message.caption or "")

    @router.callback_query()
    async def tap(query: CallbackQuery) -> TelegramEvent | None:
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return TelegramEvent(
            Inbound(
                client=client(query.from_user, chat_id),
                kind=Kind.CHOICE,
                event_id=f"cb:{query.id}",
                choice=query.data or "",
                name=query.from_user.full_name,
                language=query.from_user.language_code,
                label=_label(query),
            ),
            callback_query_id=query.id,
        )

    return router


def _label(query: CallbackQuery) -> str:
    """The text of the button that was pressed, from the message it belongs to."""
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if markup is None or query.data is None:  # (a game's tap carries no data)
        return ""
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return ""


class TelegramConversations:
    """The worker's handler for queued Telegram updates."""

    def __init__(
        self,
        bot: Bot,
        dispatcher: Dispatcher,
        desk: FrontDesk,
        sessions: SessionStore,
        clock: Callable[[], datetime],
        mirror: Mirror | None = None,
        recorder: Recorder | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.bot = bot
        self.dispatcher = dispatcher
        self.salon_id = desk.salon.id
        self.turns = TurnRunner(desk, sessions, clock, mirror, recorder, identities)

    async def __call__(self, entry: Entry) -> Outcome:
        data = entry_object(entry.body)
        if not handled_kind(data):
            return Outcome()  # queued before the edge ignored such updates: nothing to do
        # A client's plain text or tap is read straight from its JSON: the same event the
        # routers above make, at a fraction of the cost (handlers/telegram_plain.py).
        plain = plain_event(data, self.salon_id)
        result = TelegramEvent(*plain) if plain is not None else await self._routed(data)
        if result is None:
            return Outcome()  # an update we do not act on (a group message, an edit, ...)
        chat = result.inbound.client.chat_id

        def answer(turn: Turn) -> Rendered:
            # The tap's acknowledgement goes with the answer (marked as the handoff's too).
            return Rendered(tuple(render(chat, turn.replies, result.callback_query_id)))

        return await self.turns.run(CHANNEL.conversation(chat), result.inbound, answer)

    async def _routed(self, data: dict[str, Any]) -> TelegramEvent | None:
        """Any other update: aiogram's models and the routers above."""
        try:
            update = Update.model_validate(data, context={"bot": self.bot})
        except ValidationError as exc:
            # Authentic but not shaped as the Bot API documents it: it will never validate.
            # (The error's own text quotes the input, names included: only its count is said.)
            raise Unreadable(f"not a Telegram update ({exc.error_count()} problems)") from None
        result = await self.dispatcher.feed_update(self.bot, update)
        return result if isinstance(result, TelegramEvent) else None
