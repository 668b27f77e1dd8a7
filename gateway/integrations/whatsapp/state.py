"""What Frontdesk keeps in Redis about its WhatsApp clients: the 24-hour window, the messages
parked until the window opens again, and what became of the messages it sent.

- **Window.** WhatsApp accepts free-form messages only within 24 hours of the client's last
  message. Each inbound message moves the stored time forward (never back: deliveries can come
  out of order); the key expires a while after the window closes, only to clean up.
- **Parked.** A free-form message that would fall outside the window is never attempted (it
  would fail with 131047). It waits in a per-client list; the client's next message (typically a
  tap on the "a reply is waiting" template) delivers the list first, in order. Checking the
  window and parking are one atomic step, and a worker opens the window before it reads the
  list: so a message is either parked before the client's message is handled (and delivered
  with its answer) or sent normally after, never stranded in between. Parking the same message
  twice (a retried delivery) keeps one copy; the "reply waiting" notice is owed until sent.
- **Sent.** Each accepted message is remembered for a day by its `wamid`, with when it was
  sent: a later `failed` status can then say what failed, and a 131047 can park the very
  message that missed.
- **Status.** The best status a message reached: statuses arrive out of order and a `read`
  is never downgraded to `delivered`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from redis.asyncio import Redis

from gateway.pipeline.keys import Keys
from gateway.pipeline.lua import Lua

WINDOW_SECONDS = 24 * 3600
PARKED_TTL = 30 * 24 * 3600
SENT_TTL = 24 * 3600
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}

# KEYS: window key. ARGV: the message's unix time, seconds to keep the key.
# The stored value is the latest inbound time seen.
_TOUCH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = tonumber(ARGV[1])
if at <= current then return 0 end
redis.call('SET', KEYS[1], at, 'EX', ARGV[2])
return 1
"""

# KEYS: window, parked list, parked digests, notice. ARGV: now (unix), window seconds, the
# message, its digest, ttl. Returns 0 when the window is open (send it), else 1 when the client
# is still owed the "reply waiting" notice, 2 when they have had it.
_PARK = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) - last < tonumber(ARGV[2]) then return 0 end
if redis.call('SADD', KEYS[3], ARGV[4]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
for i = 2, 4 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[5]) end
end
if redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
return 1
"""

# KEYS: window. ARGV: unix time a message was sent. The window is closed only if the client has
# not written since: a late failure must not shut a conversation that is going on.
_CLOSE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""

# KEYS: status key. ARGV: status, rank, ttl. Returns 1 when the status moved forward.
_STATUS = """
local current = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if tonumber(ARGV[2]) <= current then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


class WhatsAppState:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._touch = Lua(redis, _TOUCH)
        self._park = Lua(redis, _PARK)
        self._close = Lua(redis, _CLOSE)
        self._status = Lua(redis, _STATUS)

    def parked_keys(self, chat: str) -> tuple[str, ...]:
        """The list of parked messages, their digests and the notice flag: deleted together
        when the parked messages are delivered."""
        return (
            self.keys.whatsapp_parked(chat),
            self.keys.whatsapp_parked_ids(chat),
            self.keys.whatsapp_notice(chat),
        )

    # --- the 24-hour window ----------------------------------------------------------------

    async def touch(self, chat: str, at: int) -> None:
        """The client wrote at `at` (unix seconds): the window is open until `at` + 24 h."""
        await self._touch(keys=[self.keys.whatsapp_window(chat)], args=[at, 2 * WINDOW_SECONDS])

    async def window_open(self, chat: str, now: int) -> bool:
        """Open with a minute to spare: a message must not reach WhatsApp a moment too late."""
        last = await self.redis.get(self.keys.whatsapp_window(chat))
        return last is not None and now - int(last) < WINDOW_SECONDS - 60

    async def close_window(self, chat: str, sent_at: int) -> bool:
        """WhatsApp refused a message sent at `sent_at` as outside the window: the window is
        closed, unless the client has written since."""
        return bool(await self._close(keys=[self.keys.whatsapp_window(chat)], args=[sent_at]))

    # --- parked messages -------------------------------------------------------------------

    async def park(self, chat: str, message: dict[str, Any], now: int) -> str:
        """Park `message` unless the window is open: "open" (send it now), "owed" (parked, and
        the client is still to be told a reply waits) or "told" (parked, they know)."""
        body = json.dumps(message, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(body.encode()).hexdigest()[:32]
        window, *parked = (self.keys.whatsapp_window(chat), *self.parked_keys(chat))
        result = await self._park(
            keys=[window, *parked], args=[now, WINDOW_SECONDS - 60, body, digest, PARKED_TTL]
        )
        return {0: "open", 1: "owed"}.get(int(result), "told")

    async def told(self, chat: str) -> None:
        """The "reply waiting" notice went out (or cannot): not owed again until delivered."""
        await self.redis.set(self.keys.whatsapp_notice(chat), "1", ex=PARKED_TTL)

    async def parked(self, chat: str) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.keys.whatsapp_parked(chat), 0, -1)  # type: ignore[misc]
        return [json.loads(item) for item in raw]

    # --- sent messages and their statuses --------------------------------------------------

    async def remember(self, wamid: str, chat: str, message: dict[str, Any], at: int) -> None:
        record = {"chat": chat, "message": message, "at": at}
        await self.redis.set(
            self.keys.whatsapp_sent(wamid), json.dumps(record, ensure_ascii=False), ex=SENT_TTL
        )

    async def sent(self, wamid: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.whatsapp_sent(wamid))
        return json.loads(raw) if raw else None

    async def record_status(self, wamid: str, status: str) -> bool:
        """Store the status if it is further along than the one stored; True if it was."""
        rank = STATUS_RANK.get(status, 0)
        if rank == 0:
            return False
        result = await self._status(
            keys=[self.keys.whatsapp_status(wamid)], args=[status, rank, SENT_TTL * 7]
        )
        return bool(result)

    async def status(self, wamid: str) -> str | None:
        value = await self.redis.hget(self.keys.whatsapp_status(wamid), "status")  # type: ignore[misc]
        return value.decode() if value else None
