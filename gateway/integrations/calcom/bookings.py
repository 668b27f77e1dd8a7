"""What Frontdesk knows about the salon's bookings beyond Cal.com: whose they are.

- A client's contact details (phone, email) lead to their conversation (`tg:<chat>`,
  `wa:<number>`), so that a booking made on the salon's page or by staff reaches the client in
  the messenger they use. Learnt from bookings made in the chat and from WhatsApp numbers.
- A booking's record: the conversation it belongs to, its time, where it was made.
- A short-lived mark on a booking the chat itself is moving or cancelling: the webhook that
  follows is then the client's own change (already answered in the chat), not the salon's.
- The reconciliation cursor: the last `updatedAt` seen in Cal.com's booking feed.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis

from gateway.pipeline.conversation import key_of
from gateway.pipeline.keys import Keys

RECORD_TTL = 120 * 24 * 3600
LINK_TTL = 365 * 24 * 3600
# Long enough for Cal.com's webhook to follow the API answer, short enough not to mistake a
# later change by the salon for the client's.
CHANGING_TTL = 15 * 60


def normal_email(email: str) -> str:
    return email.strip().lower()


def normal_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"+{digits}" if digits else ""


class BookingLinks:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    # --- clients by contact details ------------------------------------------------------

    async def link(self, conversation: str, *, phone: str | None, email: str | None) -> None:
        """This client's phone and email lead to `conversation` from now on."""
        pipe = self.redis.pipeline(transaction=False)
        if phone and (number := normal_phone(phone)):
            pipe.set(self.keys.client_by_phone(number), conversation, ex=LINK_TTL)
        if email and "@" in email:
            pipe.set(self.keys.client_by_email(normal_email(email)), conversation, ex=LINK_TTL)
        await pipe.execute()

    async def find(self, *, phone: str | None, email: str | None) -> str | None:
        """The conversation of the client with this phone (first) or email, if known. A
        WhatsApp client is known by the number they write from."""
        if phone and (number := normal_phone(phone)):
            found = await self.redis.get(self.keys.client_by_phone(number))
            if found:
                return str(found.decode())
            if await self.redis.exists(self.keys.session("whatsapp", number[1:])):
                return key_of("whatsapp", number[1:])
        if email and "@" in email:
            found = await self.redis.get(self.keys.client_by_email(normal_email(email)))
            if found:
                return str(found.decode())
        return None

    # --- bookings ------------------------------------------------------------------------

    async def save(self, uid: str, **fields: str) -> None:
        key = self.keys.booking(uid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, RECORD_TTL)
        await pipe.execute()

    async def record(self, uid: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.booking(uid))  # type: ignore[misc]
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def changing(self, uid: str) -> None:
        """The chat is about to move or cancel this booking (called before asking Cal.com)."""
        await self.redis.set(self.keys.booking_changing(uid), "1", ex=CHANGING_TTL)

    async def changed_in_chat(self, uid: str) -> bool:
        return bool(await self.redis.exists(self.keys.booking_changing(uid)))

    # --- reconciliation ------------------------------------------------------------------

    async def cursor(self) -> datetime | None:
        raw = await self.redis.get(self.keys.calcom_cursor)
        return datetime.fromisoformat(raw.decode()) if raw else None

    async def move_cursor(self, moment: datetime) -> None:
        await self.redis.set(self.keys.calcom_cursor, moment.isoformat())
