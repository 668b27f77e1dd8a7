"""One client across messengers: the chats that verified the same phone number.

A chat is tied to a number only when the messenger vouches that the number is the client's own:
- Telegram: a shared contact whose `user_id` is the sender's own id (Bot API, "Contact":
  `user_id` is the contact's user identifier in Telegram; a contact card of someone else, or a
  number typed as text, proves nothing and links nothing: handlers/telegram.py
  `_shares_own_contact`);
- WhatsApp: the number every message comes from (`messages[].from`, `contacts[].wa_id`: the
  sender's WhatsApp id, the number WhatsApp registered and verified; contracts/chatwoot-whatsapp-
  telegram.md §2.3). The Cloud API spec warns that "a WhatsApp user's ID and phone number may
  not always match" (whatsapp-cloud.openapi.json, ContactProfile.wa_id; e.g. the older forms
  of Brazilian and Mexican mobile numbers): then the two numbers differ and nothing links,
  which is the safe way to be wrong. A client known only by their business-scoped id (§2.10)
  has no number here and is never linked.

Two chats (of different messengers) that verified one number are one client: My bookings shows
the visits booked from either, notices go to the chat used last (or the one the client chose),
staff see one Chatwoot contact and Novu has one subscriber, named after the chat that verified
the number first (the link's anchor). A client who says "this is not me" leaves the link for
good: their chat is never linked on that number again.

A link holds a phone number: every key here expires `LINK_TTL` after the chat last verified it
(README, "Personal data"), and the number itself never reaches a log line.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.pipeline.conversation import Conversation
from gateway.pipeline.keys import Keys

LINK_TTL = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Linked:
    """A chat's place in a link: the other chats of the client, and the link's anchor."""

    chat: Conversation
    others: tuple[Conversation, ...]  # oldest verification first
    anchor: Conversation  # the chat that verified the number first: names the client
    joined: bool = False  # this verification made the link, or brought this chat into it


@dataclass(frozen=True, slots=True)
class _State:
    verified: dict[str, float]  # conversation key -> when it first verified the number
    used: dict[str, float]  # conversation key -> last used
    refused: frozenset[str]
    chosen: str | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Identities:
    def __init__(self, redis: Redis, keys: Keys, ttl: int = LINK_TTL) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl

    async def verify(self, conv: Conversation, number: str, now: float) -> Linked | None:
        """The messenger vouched that `number` (E.164) is this chat's client's own. Returns the
        link the chat is in now, if any."""
        keys = self.keys
        # Every WhatsApp message comes here: one round trip to read, one to write.
        previous, state = await self._state(number, chat=conv.key)
        if previous is not None and previous != number:
            await self._leave(conv.key, previous)  # the client's number changed
        if conv.key in state.refused:
            return None
        # One chat per messenger and number: a number that moved to another Telegram account
        # (numbers are recycled) belongs to the newest one.
        stale = [key for key in state.verified if key != conv.key and _channel(key) == conv.channel]
        # Verified after every chat already there, even within one tick of the clock: the
        # first chat stays the anchor.
        when = _after(now, state.verified, conv.key)
        pipe = self.redis.pipeline(transaction=True)
        for key in stale:
            pipe.hdel(keys.identity_number(number), key)
            pipe.hdel(keys.identity_used(number), key)
            pipe.delete(keys.identity_chat(key))
        pipe.hsetnx(keys.identity_number(number), conv.key, str(when))
        pipe.hset(keys.identity_used(number), conv.key, str(_after(now, state.used, conv.key)))
        pipe.set(keys.identity_chat(conv.key), number, ex=self.ttl)
        for key in (keys.identity_number(number), keys.identity_used(number)):
            pipe.expire(key, self.ttl)
        results = await pipe.execute()
        first = bool(results[3 * len(stale)])
        verified = {k: v for k, v in state.verified.items() if k not in stale}
        verified.setdefault(conv.key, when)
        return self._linked(conv, verified, state.refused, joined=first)

    async def linked(self, conv: Conversation) -> Linked | None:
        """The link this chat is in, None when it is alone."""
        number = await self.redis.get(self.keys.identity_chat(conv.key))
        if number is None:
            return None
        _, state = await self._state(_text(number))
        return self._linked(conv, state.verified, state.refused)

    def chat_key(self, conv: Conversation) -> str:
        """The key that holds the number a chat verified (read with the session by a turn)."""
        return self.keys.identity_chat(conv.key)

    async def used(self, conv: Conversation, now: float) -> Linked | None:
        """The client wrote in this chat: it is the one used last. Returns its link."""
        return await self.used_with(conv, now, await self.redis.get(self.chat_key(conv)))

    async def used_with(
        self, conv: Conversation, now: float, number: bytes | str | None
    ) -> Linked | None:
        """As `used`, given the value of the chat's `chat_key` read just before."""
        if number is None:
            return None
        number = _text(number)
        _, state = await self._state(number)
        linked = self._linked(conv, state.verified, state.refused)
        if linked is not None:
            at = str(_after(now, state.used, conv.key))
            await self.redis.hset(self.keys.identity_used(number), conv.key, at)  # type: ignore[misc]
        return linked

    async def unlink(self, conv: Conversation) -> tuple[Conversation, ...]:
        """ "This is not me": the chat leaves its link, and is never linked on that number
        again. Returns the chats it was linked with."""
        number = await self.redis.get(self.keys.identity_chat(conv.key))
        if number is None:
            return ()
        number = _text(number)
        _, state = await self._state(number)
        linked = self._linked(conv, state.verified, state.refused)
        refused = self.keys.identity_refused(number)
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(refused, conv.key)
        pipe.expire(refused, self.ttl)
        await pipe.execute()
        await self._leave(conv.key, number)
        if state.chosen == conv.key:
            await self.redis.delete(self.keys.identity_chosen(number))
        return linked.others if linked is not None else ()

    async def choose(self, conv: Conversation) -> bool:
        """The client wants their notices in this chat. False when it is in no link."""
        number = await self.redis.get(self.keys.identity_chat(conv.key))
        if number is None or await self.linked(conv) is None:
            return False
        await self.redis.set(self.keys.identity_chosen(_text(number)), conv.key, ex=self.ttl)
        return True

    async def route(self, conv: Conversation) -> Conversation:
        """Where a notice for this chat's client goes: the chat they chose, else the one they
        used last (this chat itself when it is in no link)."""
        number = await self.redis.get(self.keys.identity_chat(conv.key))
        if number is None:
            return conv
        _, state = await self._state(_text(number))
        linked = self._linked(conv, state.verified, state.refused)
        if linked is None:
            return conv
        chats = {c.key: c for c in (conv, *linked.others)}
        if state.chosen in chats:
            return chats[state.chosen]
        latest = max(chats, key=lambda key: (state.used.get(key, 0.0), key == conv.key))
        return chats[latest]

    async def anchor(self, conv: Conversation) -> Conversation:
        """The chat that names this chat's client (for Novu): the link's anchor, or itself."""
        linked = await self.linked(conv)
        return linked.anchor if linked is not None else conv

    # --- inside --------------------------------------------------------------------------

    async def _state(self, number: str, chat: str = "") -> tuple[str | None, _State]:
        """What is known of a number, and (with `chat`) the number that chat verified."""
        keys = self.keys
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.identity_number(number))
        pipe.hgetall(keys.identity_used(number))
        pipe.smembers(keys.identity_refused(number))
        pipe.get(keys.identity_chosen(number))
        if chat:
            pipe.get(keys.identity_chat(chat))
        verified, used, refused, chosen, *rest = await pipe.execute()
        previous = rest[0] if rest else None
        return _text(previous) if previous is not None else None, _State(
            {_text(k): float(v) for k, v in verified.items()},
            {_text(k): float(v) for k, v in used.items()},
            frozenset(_text(k) for k in refused),
            _text(chosen) if chosen is not None else None,
        )

    async def _leave(self, key: str, number: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.keys.identity_number(number), key)
        pipe.hdel(self.keys.identity_used(number), key)
        pipe.delete(self.keys.identity_chat(key))
        await pipe.execute()

    @staticmethod
    def _linked(
        conv: Conversation,
        verified: dict[str, float],
        refused: frozenset[str],
        *,
        joined: bool = False,
    ) -> Linked | None:
        if conv.key not in verified or conv.key in refused:
            return None
        members = sorted(
            (
                (when, key)
                for key, when in verified.items()
                if key not in refused and Conversation.from_key(key) is not None
            ),
        )
        chats = [c for _, key in members if (c := Conversation.from_key(key)) is not None]
        others = tuple(c for c in chats if c.key != conv.key)
        if not others:
            return None
        return Linked(conv, others, chats[0], joined)


def _after(now: float, times: dict[str, float], key: str) -> float:
    """`now`, or just after the latest of the other chats' times when the clock has not moved
    past it (one tick, or a clock a little behind another process's): order is what counts."""
    return max([now, *(at + 0.001 for other, at in times.items() if other != key)])


def _channel(key: str) -> str | None:
    conv = Conversation.from_key(key)
    return conv.channel if conv is not None else None
