"""WhatsApp: the webhook's edge rules, and the worker's handling of each queued message or status.

The edge verifies `X-Hub-Signature-256` (HMAC-SHA256 of the raw bytes with the app secret)
before anything is parsed, then splits a delivery into one queued event per message and per
status: Meta batches several into one POST, and each must be de-duplicated on its own (by
`wamid`, and by status id and status) because Meta delivers at least once, for up to 7 days.

A client is keyed by their WhatsApp id (the phone number WhatsApp gives), or by their
business-scoped id when WhatsApp gives no number (usernames, 2026). Their number, when known,
is stored in E.164 and fills the booking's contact step.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from bot.conversation import FrontDesk
from bot.events import ClientRef, Inbound, Kind
from bot.flows import booking, menu
from bot.flows.turn import Turn
from bot.i18n import Catalogs
from bot.replies import Choice
from bot.session import Owner, Session
from gateway.analytics.facts import Recorder
from gateway.integrations.whatsapp.api import AUTHOR, OUT_OF_WINDOW
from gateway.integrations.whatsapp.state import WINDOW_SECONDS, WhatsAppState
from gateway.pipeline import (
    LARGEST_BODY,
    Author,
    Conversation,
    Entry,
    Event,
    Identities,
    Malformed,
    Metrics,
    Outcome,
    Outgoing,
    SessionStore,
    entry_object,
    event_problem,
    load_object,
)
from handlers.channels import WHATSAPP, Rendered
from handlers.mirror import Mirror
from handlers.turns import TurnRunner
from handlers.whatsapp_payloads import Contact, Error, Message, Metadata, Status
from handlers.whatsapp_render import MORE, SOURCE, list_page, message, render

log = logging.getLogger("frontdesk.whatsapp")
CHANNEL = WHATSAPP

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"^sha256=[0-9a-fA-F]{64}$")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")
# A typed number that picks one of the numbered choices.
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")


def verify_challenge(query: Mapping[str, str], verify_token: str) -> str | None:
    """Meta's subscription handshake: the challenge to echo, or None (answered 403)."""
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        given.encode(), verify_token.encode()
    ):
        return None
    return query.get("hub.challenge", "")


class WhatsAppWebhook:
    """Edge rules for `POST /webhooks/whatsapp`."""

    name = SOURCE
    signed_body = True  # only an HMAC over the body authenticates it
    max_body = LARGEST_BODY

    def __init__(
        self, app_secret: str, phone_number_id: str, metrics: Metrics | None = None
    ) -> None:
        self._secret = app_secret.encode()
        self.phone_number_id = phone_number_id
        self.metrics = metrics

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        # Only the header's shape before the body is read; the HMAC needs the bytes.
        return bool(_SIGNATURE.match(headers.get(SIGNATURE_HEADER, "")))

    def verify(self, headers: Mapping[str, str], raw: bytes) -> bool:
        expected = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
        given = headers.get(SIGNATURE_HEADER, "").removeprefix("sha256=").lower()
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[Event]:
        """One event per message and per status. Only a body that is not a notification at all
        is refused (400); a message, status or change in it that we cannot read is dropped
        with a log line and `frontdesk_events_dropped`, and the rest is queued (200). Meta
        retries a delivery that is not answered 200 (for up to 7 days, with the same batch), so
        one bad message refused would keep its good neighbours out too."""
        data = load_object(raw)
        if data.get("object") != "whatsapp_business_account":
            raise Malformed("not a WhatsApp Business Account notification")
        entries = data.get("entry")
        if not isinstance(entries, list):
            raise Malformed("no entry list")
        events: list[Event] = []
        for entry in entries:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                self._dropped("entry")
                continue
            for change in changes:
                events += self._change(change)
        return events

    def _change(self, change: Any) -> list[Event]:
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            self._dropped("change")
            return []
        if change.get("field") != "messages":
            return []  # account and template updates: nothing for the desk
        value: dict[str, Any] = change["value"]
        metadata = _valid(Metadata, value.get("metadata") or {})
        if metadata is None:
            self._dropped("change")
            return []
        if metadata.phone_number_id and metadata.phone_number_id != self.phone_number_id:
            log.warning("WhatsApp delivery for another number ignored")
            return []
        for error in _each(Error, value.get("errors")):
            log.warning("WhatsApp reported an error: %s %s", error.code, error.details)
        contacts = _each(Contact, value.get("contacts"))
        events = [self._message(item, contacts) for item in _listed(value.get("messages"))]
        events += [self._status(item) for item in _listed(value.get("statuses"))]
        return [event for event in events if event is not None]

    def _message(self, raw_message: Any, contacts: list[Contact]) -> Event | None:
        item = _valid(Message, raw_message)
        if item is None:
            self._dropped("message")
            return None
        contact = _contact_of(item, contacts)
        chat = _chat_of(item, contact)
        if chat is None:
            log.warning("WhatsApp message without a sender ignored")
            return None
        conversation = CHANNEL.key(chat)
        if Conversation.from_key(conversation) is None:
            self._dropped("message")  # a sender id that is neither a number nor a BSUID
            return None
        body = {
            "kind": "message",
            "message": raw_message,
            "contact": contact.model_dump(exclude_none=True) if contact else None,
        }
        return self._event(f"m:{item.id}", conversation, body, "message")

    def _status(self, raw_status: Any) -> Event | None:
        status = _valid(Status, raw_status)
        if status is None:
            self._dropped("status")
            return None
        chat = status.recipient_id or status.recipient_user_id or "unknown"
        body = {"kind": "status", "status": raw_status}
        return self._event(f"s:{status.id}:{status.status}", CHANNEL.key(chat), body, "status")

    def _event(self, event_id: str, conversation: str, body: object, kind: str) -> Event | None:
        try:
            # orjson, as the worker reads it back: a nesting deeper than its limit (254 levels
            # when writing) is refused here, deterministically, rather than failing later.
            dumped = orjson.dumps(body)
        except orjson.JSONEncodeError:
            self._dropped(kind)
            return None
        event = Event(SOURCE, event_id, conversation, dumped)
        if event_problem(event) is not None:
            # An id no Redis key can carry (empty, over-long, not printable): this message or
            # status alone is dropped, as the edge would refuse the whole delivery for it.
            self._dropped(kind)
            return None
        return event

    def _dropped(self, part: str) -> None:
        log.warning("WhatsApp %s that is not what Meta sends dropped; the rest queued", part)
        if self.metrics is not None:
            self.metrics.events_dropped.labels(SOURCE, f"malformed_{part}").inc()


_Part = TypeVar("_Part", bound=BaseModel)


def _valid(model: type[_Part], value: Any) -> _Part | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _each(model: type[_Part], value: Any) -> list[_Part]:
    """The readable items of a list (contacts, errors): an unreadable one is left out."""
    return [item for raw in _listed(value) if (item := _valid(model, raw)) is not None]


def _contact_of(message: Message, contacts: list[Contact]) -> Contact | None:
    for contact in contacts:
        if message.from_ and contact.wa_id == message.from_:
            return contact
        ids = {message.from_user_id, message.user_id} - {None}
        if contact.user_id and contact.user_id in ids:
            return contact
    return contacts[0] if len(contacts) == 1 else None


def _chat_of(message: Message, contact: Contact | None) -> str | None:
    """The client's key and address: their WhatsApp id, else their business-scoped id."""
    wa_id = message.from_ or (contact.wa_id if contact else None)
    bsuid = message.from_user_id or message.user_id or (contact.user_id if contact else None)
    return wa_id or bsuid


def language_of(text: str) -> str | None:
    """WhatsApp tells nothing of the client's language: their own words do."""
    if _CYRILLIC.search(text):
        return "ru"
    if _LATIN.search(text):
        return "en"
    return None


class WhatsAppConversations:
    """The worker's handler for queued WhatsApp messages and statuses."""

    def __init__(
        self,
        desk: FrontDesk,
        catalogs: Catalogs,
        sessions: SessionStore,
        state: WhatsAppState,
        metrics: Metrics,
        clock: Callable[[], datetime],
        mirror: Mirror | None = None,
        recorder: Recorder | None = None,
        identities: Identities | None = None,
    ) -> None:
        self.catalogs = catalogs
        self.state = state
        self.metrics = metrics
        self.turns = TurnRunner(desk, sessions, clock, mirror, recorder, identities)

    async def __call__(self, entry: Entry) -> Outcome:
        body = entry_object(entry.body)
        if body.get("kind") == "status":
            return await self._status(Status.model_validate(body["status"]))
        item = Message.model_validate(body["message"])
        contact = Contact.model_validate(body["contact"]) if body.get("contact") else None
        chat = _chat_of(item, contact)
        assert chat is not None  # the edge queues only messages with a sender
        waiting, clear = await self._waiting(item, chat)
        conv = CHANNEL.conversation(chat)
        client = self.turns.client(conv)
        session = await self.turns.sessions.load(client)
        human = session.owner == Owner.HUMAN
        if human and item.type not in ("reaction", "system", *_WORDS):
            # A person answers this client: the bot stays silent, the message goes to them.
            relayed = await self._relay(conv, item, client, session)
            return Outcome(outgoing=(*waiting, *relayed), clear=clear)
        # Words and taps while a person answers still make a turn: it answers what staff
        # proposed from the help desk (bot/flows/proposal.py), and is otherwise silent and
        # relayed to staff by the mirror, as on Telegram.
        resume = (
            item.type == "button" and item.button is not None and ":" not in item.button.payload
        )
        if item.type in ("reaction", "system") or (resume and waiting and not human):
            # A reaction needs no answer; a tap on "a reply is waiting" is answered by it.
            if item.type == "system":
                system = body["message"].get("system")
                kind = system.get("type") if isinstance(system, dict) else None
                log.info("WhatsApp system message: %s", kind)
            return Outcome(outgoing=waiting, clear=clear)
        text = _text_of(item)
        if session.locale is None and (spoken := language_of(text)):
            # Their first words set the language; "Language" in the menu changes it.
            session = session.model_copy(update={"locale": spoken})
        _ = self.catalogs.get(self.catalogs.resolve(session.locale, None))
        if not human and item.type == "interactive" and _reply_id(item).startswith(MORE):
            # The next page of a long list: the same choices, no turn of the bot.
            start = _reply_id(item).removeprefix(MORE)
            choices = tuple(Choice(o.id, o.label) for o in session.offered)
            if start.isdigit() and int(start) < len(choices):
                page = list_page(_("wa.more.body"), choices, int(start), _)
                more = (*waiting, message(chat, page, _.locale))
                return Outcome(outgoing=more, clear=clear)
        wa_id = item.from_ or (contact.wa_id if contact else None)
        inbound = self._inbound(item, client, contact, session, text, wa_id)
        if inbound is None:
            # A photo, a voice message, a location...: acknowledged politely, menu offered.
            ack = menu.menu(_, _("wa.media.received"))
            rendered = render(chat, (ack,), _, read=item.id)
            receipt, *answer = rendered.outgoing
            relayed = await self._relay(conv, item, client, session, Turn((ack,), session))
            return Outcome(outgoing=(receipt, *waiting, *answer, *relayed), clear=clear)

        def reply(turn: Turn) -> Rendered:
            # Blue ticks first, then what waited for the client, then the answer. Not while a
            # person owns the chat: the ticks would tell the client staff have read it.
            _ = self.catalogs.get(self.catalogs.resolve(turn.session.locale, None))
            return CHANNEL.answer(chat, turn.replies, _, read=None if human else item.id)

        return await self.turns.run(
            conv, inbound, reply, session=session, waiting=waiting, clear=clear
        )

    async def _waiting(
        self, item: Message, chat: str
    ) -> tuple[tuple[Outgoing, ...], tuple[str, ...]]:
        """What was parked for the client while the 24-hour window was closed, and the keys
        the commit clears once it is queued."""
        stamp = int(self.turns.clock().timestamp())
        # Any message from the client, a reaction included, opens the 24-hour window (from when
        # they wrote it, never from the future). The window opens before the parked messages
        # are read: none can be parked after this (see gateway/integrations/whatsapp/state.py).
        at = min(item.sent_at or stamp, stamp)
        await self.state.touch(chat, at)
        opened = stamp - at < WINDOW_SECONDS - 60  # a delivery days late opens nothing
        parked = await self.state.parked(chat) if opened else []
        waiting = tuple(
            Outgoing(
                SOURCE, chat, "messages", params, author=Author(params.get(AUTHOR, Author.BOT))
            )
            for params in parked
        )
        return waiting, (self.state.parked_keys(chat) if parked else ())

    async def _relay(
        self,
        conv: Conversation,
        item: Message,
        client: ClientRef,
        session: Session,
        turn: Turn | None = None,
    ) -> tuple[Outgoing, ...]:
        """A message for staff: text as written, anything else as what it is."""
        if self.turns.mirror is None:
            return ()
        media = item.media
        said = _text_of(item)
        if item.type == "location" and item.location is not None:
            place = item.location
            said = f"📍 {place.name} {place.latitude},{place.longitude}".strip()
        elif media is not None:
            parts = (f"📎 {item.type}", media.caption, media.filename)
            said = " ".join(part for part in parts if part)
        elif not said:
            said = f"📎 {item.type}"
        event = Inbound(client, Kind.TEXT, f"m:{item.id}", text=said)
        file = None
        if media is not None and media.id:
            file = {"id": media.id, "kind": item.type, "filename": media.filename}
        return await self.turns.mirror.for_turn(
            conv, event, session, turn or Turn((), session), said, file
        )

    def _inbound(
        self,
        item: Message,
        client: ClientRef,
        contact: Contact | None,
        session: Session,
        text: str,
        wa_id: str | None,
    ) -> Inbound | None:
        phone = f"+{wa_id}" if wa_id and wa_id.isdigit() else ""

        def event(kind: Kind, **fields: str) -> Inbound:
            name = contact.profile.name if contact else ""
            return Inbound(client, kind, f"m:{item.id}", name=name, phone=phone, **fields)

        if item.type == "interactive":
            choice = _reply_id(item)
            if choice == booking.SHARE_PHONE and phone:
                # "Use my number" on WhatsApp: the number they write from.
                return event(Kind.CONTACT)
            return event(Kind.CHOICE, choice=choice, label=_text_of(item))
        if item.type == "button" and item.button is not None:
            payload = item.button.payload
            if ":" in payload:
                return event(Kind.CHOICE, choice=payload, label=item.button.text)
            return event(Kind.CHOICE, choice=menu.HOME)
        if item.type == "contacts" and session.step == booking.CONTACT_STEP:
            # A contact card sent at the contact step: its number, as if typed.
            shared = _card_phone(item.contacts)
            return event(Kind.TEXT, text=shared) if shared else None
        if item.type == "text":
            number = _NUMBER.match(text)
            # Only while the bot has the chat: a number typed to staff is the client's words
            # (or an answer to staff's proposal, bot/flows/proposal.py), not a row of the
            # bot's last numbered list, which a takeover leaves in the session.
            bots = session.owner != Owner.HUMAN
            if bots and session.numbered and number and 1 <= int(number[1]) <= len(session.offered):
                return event(Kind.CHOICE, choice=session.offered[int(number[1]) - 1].id)
            return event(Kind.TEXT, text=text)
        return None  # media, location, contacts elsewhere, unsupported

    async def _status(self, status: Status) -> Outcome:
        # Recorded whatever came before: the edge lets each (id, status) through once, and a
        # retried entry must come to the same outcome.
        await self.state.record_status(status.id, status.status)
        self.metrics.whatsapp_statuses.labels(status.status).inc()
        if status.status != "failed":
            return Outcome()
        for error in status.errors:
            log.error(
                "WhatsApp could not deliver a message: %s %s",
                error.code,
                error.details,
                extra={"event_id": status.id},
            )
        if not any(error.code == OUT_OF_WINDOW for error in status.errors):
            return Outcome()
        sent = await self.state.sent(status.id)
        params = sent.get("message") if sent else None
        if sent is None or not isinstance(params, dict) or "content" not in params:
            log.error(
                "a message refused as outside the 24-hour window is not known any more",
                extra={"event_id": status.id},
            )
            return Outcome()
        # The window closed before the message reached the client (unless they wrote since):
        # queued again, it is parked for them or, the window open again, simply sent.
        chat = str(sent["chat"])
        await self.state.close_window(chat, int(sent.get("at") or 0))
        author = Author(params.get(AUTHOR, Author.BOT))
        return Outcome(outgoing=(Outgoing(SOURCE, chat, "messages", params, author=author),))


def _reply_id(item: Message) -> str:
    interactive = item.interactive
    if interactive is None:
        return ""
    reply = interactive.button_reply or interactive.list_reply
    return reply.id if reply else ""


# The client's own words or taps: each is a turn, whoever owns the conversation.
_WORDS = ("text", "button", "interactive")


def _text_of(item: Message) -> str:
    if item.text is not None:
        return item.text.body
    if item.button is not None:
        return item.button.text
    interactive = item.interactive
    reply = (interactive.button_reply or interactive.list_reply) if interactive else None
    return reply.title if reply else ""


def _card_phone(cards: list[dict[str, Any]]) -> str:
    for card in cards:
        for phone in card.get("phones") or []:
            if isinstance(phone, dict) and (number := phone.get("phone") or phone.get("wa_id")):
                return str(number)
    return ""
