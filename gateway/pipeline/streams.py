"""What travels through the Redis streams: inbound entries, their outcome, outgoing messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued webhook, as the worker sees it."""

    id: str  # the stream entry id
    source: str
    conversation: str
    event_id: str
    received_ms: int
    body: bytes

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[bytes, bytes]) -> Entry:
        return cls(
            id=entry_id,
            source=fields[b"src"].decode(),
            conversation=fields[b"conv"].decode(),
            event_id=fields[b"id"].decode(),
            received_ms=int(fields.get(b"at", b"0")),
            body=fields[b"body"],
        )


class Author(StrEnum):
    """Who speaks in an outgoing message. The value is what the outbox stream's `author` field
    holds (and WhatsApp's parked messages): entries queued before this enum read the same."""

    BOT = "bot"  # the bot's answer: held back while a person owns the conversation
    HANDOFF = "handoff"  # the bot's words as it hands over: they go, though a person owns it
    STAFF = "staff"  # an agent's reply, relayed from the help desk
    HELP_DESK = "desk"  # the mirror of the conversation to the help desk (Chatwoot)
    NOTICE = "notice"  # the salon's notice (a confirmation, a reminder): not in the conversation


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One call to a messenger's API, queued in the outbox and delivered in order per chat."""

    channel: str
    chat: str
    method: str
    params: dict[str, Any]
    # Bound to the tap being answered (Telegram's answerCallbackQuery): pointless to retry late,
    # and it does not count against the chat's message rate.
    ephemeral: bool = False
    # Who speaks: only the bot's own answers are held back while a person owns the conversation.
    author: Author = Author.BOT
    # An analytics fact (JSON, with its id) to record should the message fail for good: a
    # notice that never reached the client counts as a failed notification.
    failure: str = ""

    def to_fields(self, origin: str) -> list[str]:
        return [
            self.channel,
            self.chat,
            self.method,
            _params(self.params),
            "1" if self.ephemeral else "0",
            origin,
            self.author,
            self.failure,
        ]

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Outgoing:
        return cls(
            channel=fields[b"channel"].decode(),
            chat=fields[b"chat"].decode(),
            method=fields[b"method"].decode(),
            params=json.loads(fields[b"params"]),
            ephemeral=fields.get(b"ephemeral") == b"1",
            author=Author(fields.get(b"author", b"bot").decode()),
            failure=fields.get(b"failure", b"").decode(),
        )


def _params(params: dict[str, Any]) -> str:
    """The call's parameters as compact JSON (UTF-8 text kept as it is). orjson writes the
    common case at a fraction of the stdlib's cost, on every outgoing message; what it refuses
    (a key that is not a string, an integer beyond 64 bits, a lone surrogate) the stdlib
    writes as it always did."""
    try:
        return orjson.dumps(params).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


class Unreadable(Exception):
    """A queued entry that can never be handled, however often it is tried (its payload does
    not have the provider's shape): the worker acknowledges it and counts it as dropped instead
    of retrying it into the dead letters. A bug or a transient failure is any other exception.
    """


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one entry produced; committed atomically with the entry's acknowledgement."""

    outgoing: tuple[Outgoing, ...] = ()
    session_key: str | None = None
    session: str | None = None  # serialised
    session_ttl: int = 0
    # Keys whose content the outgoing messages took (WhatsApp's parked messages): deleted in
    # the same commit, so that they are sent once.
    clear: tuple[str, ...] = ()
    # What happened, for the salon's analytics (gateway/analytics/facts.py): queued in the same
    # commit, so that each is recorded once, whatever retries the handling took.
    facts: tuple[dict[str, Any], ...] = ()
