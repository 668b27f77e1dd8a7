"""Realistic Telegram webhook bodies, built fast enough not to slow the load generator.

A body is about 365 bytes, like the private-chat text message of the baselines
(docs: dependencies-and-baselines §4): `/start` with its `bot_command` entity, or a plain text.
Every private text message gets exactly one `sendMessage` back from the bot (a greeting, or
the answer to the request: the bench's gateway has no calendar, so booking and prices answer
with the salon's contacts), which is what lets the bench count lost replies per chat.
"""

from __future__ import annotations

import itertools
import json
import time

# The bot's identity in the bench; the sandbox accepts any well-formed token.
TOKEN = "123456:bench-sandbox-token-not-secret"  # known to the bench's sandbox only
SECRET = "bench-webhook-secret_0123456789"  # the webhook secret of the bench only
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # a header name
HEADERS = {"Content-Type": "application/json", SECRET_HEADER: SECRET}

# %-formatting of bytes is the cheapest way to get a unique body per request (~1 µs).
_TEMPLATE = (
    b'{"update_id":%d,"message":{"message_id":%d,'
    b'"from":{"id":%d,"is_bot":false,"first_name":"Anna","last_name":"Ivanova",'
    b'"username":"anna_iv","language_code":"en"},'
    b'"chat":{"id":%d,"first_name":"Anna","last_name":"Ivanova","username":"anna_iv",'
    b'"type":"private"},"date":%d,"text":%s%s}}'
)
_START = (b'"/start"', b',"entities":[{"offset":0,"length":6,"type":"bot_command"}]')
_TEXTS = tuple(
    (json.dumps(text).encode(), b"")
    for text in (
        "Hi! Do you have a free slot for a haircut tomorrow at five?",
        "How much is a gel manicure, and how long does it take?",
    )
)
# One in three messages is /start; the others are plain texts, each a request the bot
# understands (a booking, a price question): one reply each.
_MIX = (_START, *_TEXTS)


class Updates:
    """Unique updates spread round-robin over `chats` chat ids starting at `first_chat`.

    `chats=None` gives every update its own new chat (used to match a reply to its update).
    """

    def __init__(self, first_chat: int, chats: int | None, first_update_id: int) -> None:
        self.first_chat = first_chat
        self.chats = chats
        self._update_ids = itertools.count(first_update_id)
        self._serial = itertools.count()
        self._message_ids: dict[int, int] = {}
        self._date = int(time.time())

    def next(self) -> tuple[int, bytes]:
        """(chat id, body) of the next update."""
        serial = next(self._serial)
        if self.chats is None:
            chat, rounds = self.first_chat + serial, 0
        else:
            chat, rounds = self.first_chat + serial % self.chats, serial // self.chats
        message_id = self._message_ids.get(chat, 0) + 1
        self._message_ids[chat] = message_id
        text, entities = _START if rounds == 0 else _MIX[rounds % len(_MIX)]
        body = _TEMPLATE % (
            next(self._update_ids),
            message_id,
            chat,
            chat,
            self._date,
            text,
            entities,
        )
        return chat, body
