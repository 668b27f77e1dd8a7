"""The waitlist's state in Redis, per salon: the bot's `Waitlist` port, and what the offers'
matcher (waitlist_offers.py) needs.

- a wait (`wl:wait:<id>`): whose (the conversation), the service, master, days and part of the
  day, its place in the queue and whether a time is offered to it now; the queue (`wl:queue`)
  orders every wait by its place (first come, first served); a client's waits
  (`wl:client:<conv>`);
- an offer (`wl:offer:<id>`): a freed time held for one wait, its Cal.com reservation, until
  when, and its state: held → booking (the client tapped "Book it") → booked, or declined /
  ended (the hold is over, passed on);
- locks that make the rules hold across processes: a freed time is offered to one client at a
  time (`wl:slot:<event type>:<start>`), a client has one offer at a time
  (`wl:offering:<conv>`), a wait is never offered the same time twice (`wl:passed:<wait>`);
- the durable timer (`wl:due`: offers by when their hold ends, survives a restart) and the
  freed times still to offer (`wl:freed`).

Every transition that decides who gets a time is one Lua script over one salon's `wl:` keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from redis.asyncio import Redis

from bot.events import ClientRef
from bot.flows.waitlist import MAX_WAITS
from bot.ports import HeldTime, Wait, WaitlistFull
from gateway.pipeline.conversation import key_of
from gateway.pipeline.keys import Keys
from gateway.pipeline.lua import Lua

# Offers, locks and their records outlive any hold by far; a wait lives to its last day.
OFFER_TTL = 2 * 24 * 3600
# A time being booked ("Book it" tapped) stays the client's this long after its hold, so that
# a slow booking is not passed on under it.
GRACE_MS = 60_000

# KEYS: client's waits, the counter, wait, queue. ARGV: the most waits a client may keep, wait
# id, how long the wait's record is kept (seconds), then its fields. The client's set lives 35 days
# (longer than any wait: the booking's 14 days ahead and a week's range).
_JOIN = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], 'seq', seq, 'status', 'waiting', unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 3024000)
return 1
"""

# KEYS: client's waits, wait, queue, passed. ARGV: wait id, conversation.
_LEAVE = """
if redis.call('HGET', KEYS[2], 'conv') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""

# KEYS: slot lock, wait, offer, due, client's offering, passed.
# ARGV: offer id, slot, due (ms), ttl, then the offer's fields.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'waiting' then return 0 end
if redis.call('SISMEMBER', KEYS[6], ARGV[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[4])
redis.call('HSET', KEYS[2], 'status', 'offered', 'offer', ARGV[1])
redis.call('SADD', KEYS[6], ARGV[2])
-- The times passed live as long as the wait's record (it has its TTL since it joined).
local life = redis.call('TTL', KEYS[2])
if life > 0 then redis.call('EXPIRE', KEYS[6], life) end
redis.call('HSET', KEYS[3], 'state', 'held', unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 1
"""

# KEYS: offer. ARGV: conversation, now (ms), grace (ms).
# Held for this client and not over: now being booked. Being booked by them already (a second
# tap, a retry): still theirs until the grace after the hold.
_TAKE = """
local o = redis.call('HMGET', KEYS[1], 'state', 'conv', 'until')
if o[2] ~= ARGV[1] then return 0 end
local now, till = tonumber(ARGV[2]), tonumber(o[3])
if o[1] == 'held' and till > now then
  redis.call('HSET', KEYS[1], 'state', 'booking')
  return 1
end
if o[1] == 'booking' and till + tonumber(ARGV[3]) > now then return 1 end
return 0
"""

# KEYS: offer, due. ARGV: conversation, offer id, now (ms).
# Held for the client, or being booked by them and then given up (they chose another time).
_DECLINE = """
local o = redis.call('HMGET', KEYS[1], 'state', 'conv')
if (o[1] ~= 'held' and o[1] ~= 'booking') or o[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'declined')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

# KEYS: offer, due, slot lock, client's offering, wait. ARGV: offer id, now (ms), grace (ms),
# force ("1": end it whatever its state, but booked).
# Ends an offer whose hold is over (or that was declined): the time and the client are free
# again, the wait waits on. Returns the state it ended from, or false.
_END = """
local o = redis.call('HMGET', KEYS[1], 'state', 'until')
local state, till, now = o[1], tonumber(o[2] or '0'), tonumber(ARGV[2])
if not state or state == 'booked' or state == 'ended' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
if ARGV[4] ~= '1' then
  if state == 'held' and till > now then return false end
  if state == 'booking' and till + tonumber(ARGV[3]) > now then
    redis.call('ZADD', KEYS[2], till + tonumber(ARGV[3]), ARGV[1])
    return false
  end
end
redis.call('HSET', KEYS[1], 'state', 'ended')
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
if redis.call('HGET', KEYS[5], 'offer') == ARGV[1] then
  redis.call('HSET', KEYS[5], 'status', 'waiting', 'offer', '')
end
return state
"""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def slot_id(event_type_id: int, start: datetime) -> str:
    """A freed time: one event type's start (UTC)."""
    return f"{event_type_id}:{start.astimezone(UTC):%Y%m%d%H%M}"


def parse_slot(value: str) -> tuple[int, datetime] | None:
    event_type, _, stamp = value.partition(":")
    try:
        return int(event_type), datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Waiting:
    """A wait as the matcher reads it."""

    wait: Wait
    conversation: str
    status: str  # waiting | offered
    seq: int  # its place in the queue


@dataclass(frozen=True, slots=True)
class Offered:
    """An offer as the matcher and the handler read it."""

    held: HeldTime
    conversation: str
    state: str  # held | booking | declined | booked | ended
    slot: str


class WaitlistStore:
    def __init__(self, redis: Redis, keys: Keys, zone: str, max_waits: int = MAX_WAITS) -> None:
        self.redis = redis
        self.keys = keys
        self.zone = zone
        self.max_waits = max_waits
        # Set when there is something for the matcher to do now (in this process).
        self.wake = asyncio.Event()
        self._join = Lua(redis, _JOIN)
        self._leave = Lua(redis, _LEAVE)
        self._claim = Lua(redis, _CLAIM)
        self._take = Lua(redis, _TAKE)
        self._decline = Lua(redis, _DECLINE)
        self._end = Lua(redis, _END)

    @staticmethod
    def conversation(client: ClientRef) -> str:
        return key_of(client.channel.value, client.chat_id)

    # --- the bot's port -----------------------------------------------------------------------

    async def join(self, client: ClientRef, wait: Wait, now: datetime) -> Wait:
        conv = self.conversation(client)
        # Kept to the day after its last: the matcher ends it (and counts it) before then.
        gone = datetime.combine(wait.last + timedelta(days=2), datetime.min.time(), UTC)
        fields = {
            "id": wait.id,
            "conv": conv,
            "service": wait.service_key,
            "master": "" if wait.master_id is None else str(wait.master_id),
            "first": wait.first.isoformat(),
            "last": wait.last.isoformat(),
            "part": wait.part,
            "joined": now.isoformat(),
        }
        keys = self.keys
        joined = await self._join(
            [
                keys.waitlist_client(conv),
                keys.waitlist_seq,
                keys.waitlist_wait(wait.id),
                keys.waitlist_queue,
            ],
            [self.max_waits, wait.id, max(60, int((gone - now).total_seconds())), *_pairs(fields)],
        )
        if not joined:
            raise WaitlistFull(conv)
        return wait

    async def waits(self, client: ClientRef) -> list[Wait]:
        ids = await self.redis.smembers(self.keys.waitlist_client(self.conversation(client)))  # type: ignore[misc]
        found = [w for w in await self._read([_text(i) for i in ids]) if w is not None]
        return [w.wait for w in sorted(found, key=lambda w: w.seq)]

    async def leave(self, client: ClientRef, wait_id: str) -> bool:
        return await self._remove(self.conversation(client), wait_id)

    async def take(self, client: ClientRef, offer_id: str, now: datetime) -> HeldTime | None:
        conv = self.conversation(client)
        taken = await self._take([self.keys.waitlist_offer(offer_id)], [conv, _ms(now), GRACE_MS])
        if not taken:
            return None
        offered = await self.offer(offer_id)
        return offered.held if offered is not None else None

    async def booked(self, client: ClientRef, offer_id: str | None, service_key: str) -> None:
        await self.booked_by(self.conversation(client), offer_id, service_key)

    async def booked_by(self, conv: str, offer_id: str | None, service_key: str) -> None:
        """The client of `conv` booked the service: their waits for it end (and the offer)."""
        keys = self.keys
        offered = await self.offer(offer_id) if offer_id else None
        ids = await self.redis.smembers(keys.waitlist_client(conv))  # type: ignore[misc]
        waits = await self._read([_text(i) for i in ids])
        pipe = self.redis.pipeline(transaction=True)
        if offered is not None and offered.conversation == conv:
            pipe.hset(keys.waitlist_offer(offered.held.id), "state", "booked")
            pipe.zrem(keys.waitlist_due, offered.held.id)
            pipe.delete(keys.waitlist_slot(offered.slot), keys.waitlist_offering(conv))
        for found in waits:
            if found is not None and found.wait.service_key == service_key:
                wait_id = found.wait.id
                pipe.delete(keys.waitlist_wait(wait_id), keys.waitlist_passed(wait_id))
                pipe.zrem(keys.waitlist_queue, wait_id)
                pipe.srem(keys.waitlist_client(conv), wait_id)
        await pipe.execute()

    async def decline(self, client: ClientRef, offer_id: str) -> bool:
        keys = self.keys
        declined = await self._decline(
            [keys.waitlist_offer(offer_id), keys.waitlist_due],
            [self.conversation(client), offer_id, 0],
        )
        if declined:
            self.wake.set()  # passed on at once, not when the hold would have ended
        return bool(declined)

    # --- the matcher's --------------------------------------------------------------------

    async def freed(self, slot: str, at: datetime) -> None:
        """A time that may be free now, to offer from `at` on."""
        await self.redis.zadd(self.keys.waitlist_freed, {slot: _ms(at)})
        self.wake.set()

    async def freed_by(self, now: datetime) -> list[str]:
        """The freed times due to be looked at, each taken by one process only."""
        key = self.keys.waitlist_freed
        found = await self.redis.zrangebyscore(key, "-inf", _ms(now))
        taken = []
        for raw in found:
            if await self.redis.zrem(key, raw):
                taken.append(_text(raw))
        return taken

    async def queue(self) -> list[Waiting]:
        """Every wait, first come first."""
        ids = await self.redis.zrange(self.keys.waitlist_queue, 0, -1)
        found = await self._read([_text(i) for i in ids])
        gone = [_text(i) for i, w in zip(ids, found, strict=True) if w is None]
        if gone:  # expired under us: out of the queue
            await self.redis.zrem(self.keys.waitlist_queue, *gone)
        return [w for w in found if w is not None]

    async def claim(
        self, waiting: Waiting, slot: str, offer_id: str, held: HeldTime, hold_until: datetime
    ) -> bool:
        """Offer `slot` to this wait, if neither the time nor the client has an offer now and
        the wait was never offered this time (one atomic step)."""
        keys, conv = self.keys, waiting.conversation
        fields = {
            "id": offer_id,
            "wait": waiting.wait.id,
            "conv": conv,
            "slot": slot,
            "service": held.service_key,
            "master": "" if held.master_id is None else str(held.master_id),
            "start": str(_ms(held.start)),
            "until": str(_ms(hold_until)),
            "reservation": "",
        }
        claimed = await self._claim(
            [
                keys.waitlist_slot(slot),
                keys.waitlist_wait(waiting.wait.id),
                keys.waitlist_offer(offer_id),
                keys.waitlist_due,
                keys.waitlist_offering(conv),
                keys.waitlist_passed(waiting.wait.id),
            ],
            [offer_id, slot, _ms(hold_until), OFFER_TTL, *_pairs(fields)],
        )
        return bool(claimed)

    async def held(self, offer_id: str, reservation: str | None, until: datetime) -> None:
        """The calendar holds the time: its reservation, and when the hold ends."""
        pipe = self.redis.pipeline(transaction=True)
        offer = self.keys.waitlist_offer(offer_id)
        pipe.hset(offer, mapping={"reservation": reservation or "", "until": str(_ms(until))})
        pipe.zadd(self.keys.waitlist_due, {offer_id: _ms(until)}, xx=True)
        await pipe.execute()

    async def due(self, now: datetime) -> list[str]:
        found = await self.redis.zrangebyscore(self.keys.waitlist_due, "-inf", _ms(now))
        return [_text(raw) for raw in found]

    async def end(self, offer_id: str, now: datetime, *, force: bool = False) -> str | None:
        """End an offer whose hold is over or that was declined (or, `force`, one that could not
        be held): returns the state it ended from, None when it goes on."""
        offered = await self.offer(offer_id)
        keys = self.keys
        conv = offered.conversation if offered else ""
        slot = offered.slot if offered else ""
        wait = offered.held.wait_id if offered else ""
        ended = await self._end(
            [
                keys.waitlist_offer(offer_id),
                keys.waitlist_due,
                keys.waitlist_slot(slot),
                keys.waitlist_offering(conv),
                keys.waitlist_wait(wait),
            ],
            [offer_id, _ms(now), GRACE_MS, "1" if force else "0"],
        )
        return _text(ended) if ended else None

    async def offer(self, offer_id: str) -> Offered | None:
        raw = await self.redis.hgetall(self.keys.waitlist_offer(offer_id))  # type: ignore[misc]
        if not raw:
            return None
        found = {_text(k): _text(v) for k, v in raw.items()}
        held = HeldTime(
            id=found["id"],
            wait_id=found["wait"],
            service_key=found["service"],
            master_id=int(found["master"]) if found.get("master") else None,
            start=_moment(found["start"]),
            until=_moment(found["until"]),
            reservation=found.get("reservation") or None,
        )
        return Offered(held, found["conv"], found["state"], found["slot"])

    async def expire(self, today: date) -> list[Waiting]:
        """Waits whose last day is over (and that have no offer out): out of the queue."""
        ended = []
        for waiting in await self.queue():
            over = waiting.wait.last < today and waiting.status == "waiting"
            if over and await self._remove(waiting.conversation, waiting.wait.id):
                ended.append(waiting)
        return ended

    # --- helpers --------------------------------------------------------------------------

    async def _remove(self, conv: str, wait_id: str) -> bool:
        keys = self.keys
        removed = await self._leave(
            [
                keys.waitlist_client(conv),
                keys.waitlist_wait(wait_id),
                keys.waitlist_queue,
                keys.waitlist_passed(wait_id),
            ],
            [wait_id, conv],
        )
        return bool(removed)

    async def _read(self, ids: list[str]) -> list[Waiting | None]:
        pipe = self.redis.pipeline(transaction=False)
        for wait_id in ids:
            pipe.hgetall(self.keys.waitlist_wait(wait_id))
        found: list[Waiting | None] = []
        records = await pipe.execute() if ids else []
        for raw in records:
            record = {_text(k): _text(v) for k, v in raw.items()}
            found.append(_waiting(record) if record.get("id") else None)
        return found


def _waiting(record: dict[str, str]) -> Waiting:
    wait = Wait(
        id=record["id"],
        service_key=record["service"],
        master_id=int(record["master"]) if record.get("master") else None,
        first=date.fromisoformat(record["first"]),
        last=date.fromisoformat(record["last"]),
        part=record.get("part") or "any",
    )
    return Waiting(wait, record["conv"], record.get("status", "waiting"), int(record["seq"]))


def _pairs(fields: dict[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
