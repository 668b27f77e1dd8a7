"""The outbox: every message to a client leaves through here, in order per chat.

Messages arrive in the shard's outbound stream in the same atomic step that acknowledged the
event that caused them, so a crash never loses a reply and never makes one twice. The lease
holder of the shard delivers them: per chat in order and paced (Telegram: about 1 message per
second per chat with short bursts, 30 per second per bot), honouring the API's `retry_after`,
retrying failures on the schedule 30 s → 2 min → 5 min, then dead-lettering. A permanent error
(the client blocked the bot, a bad request) is dead-lettered at once. A message its service's
open circuit breaker refused was never tried: it waits for the breaker's next trial and keeps
its attempts, so an outage of any length costs a message nothing but the wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from gateway.pipeline.fair_slots import Slots
from gateway.pipeline.keys import OUTBOUND_GROUP
from gateway.pipeline.logs import mask_chat
from gateway.pipeline.lua import Lua
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox_acks import Acks
from gateway.pipeline.resilience import BreakerOpen, Cadence, Gate, SendWindow
from gateway.pipeline.streams import Author, Outgoing
from gateway.pipeline.tasks import wait_event
from gateway.pipeline.workers import RESCAN_SECONDS, Lease, consumer_name, ensure_group

log = logging.getLogger("frontdesk.outbox")

# A message refused by an open breaker asks again no sooner than this: a half-open breaker lets
# one trial through and refuses the rest "now" (retry_in 0) until the trial has answered.
BREAKER_RECHECK_SECONDS = 1.0

# Plain acknowledgements, one or more (those that came together, outbox_acks.py): KEYS: lease,
# stream, attempts hash. ARGV: owner, group, entry ids.
_ACK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local unpack = unpack or table.unpack
redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3))
redis.call('XDEL', KEYS[2], unpack(ARGV, 3))
redis.call('HDEL', KEYS[3], unpack(ARGV, 3))
return 1
"""

# KEYS: lease, stream, attempts hash. ARGV: owner, group, entry id, then the fields of the
# messages the delivery asked for (8 each, as in workers.py's commit): queued in the same step
# as the acknowledgement, so a page a handoff causes is neither lost nor queued twice.
_DONE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
for a = 4, #ARGV, 8 do
  redis.call('XADD', KEYS[2], '*', 'channel', ARGV[a], 'chat', ARGV[a + 1],
    'method', ARGV[a + 2], 'params', ARGV[a + 3], 'ephemeral', ARGV[a + 4], 'origin', ARGV[a + 5],
    'author', ARGV[a + 6], 'failure', ARGV[a + 7])
end
return 1
"""

# The same for a message dead-lettered (workers.py's BURY, then the follow-ups): KEYS: lease,
# stream, attempts hash, dead letters, analytics stream. ARGV: owner, group, entry id, error,
# attempts, kind, fact, the number of the entry's field values, those name/value pairs, then
# the follow-ups' fields (8 each). A notice that could not reach a client pages the staff in
# the step that buries it.
_BURY_AND_QUEUE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local fields = {'kind', ARGV[6], 'stream', KEYS[2], 'entry', ARGV[3], 'error', ARGV[4],
  'attempts', ARGV[5]}
local last = 8 + tonumber(ARGV[8])
for a = 9, last do fields[#fields + 1] = ARGV[a] end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', unpack(fields))
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 1000000, '*', 'fact', ARGV[7])
end
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
for a = last + 1, #ARGV, 8 do
  redis.call('XADD', KEYS[2], '*', 'channel', ARGV[a], 'chat', ARGV[a + 1],
    'method', ARGV[a + 2], 'params', ARGV[a + 3], 'ephemeral', ARGV[a + 4], 'origin', ARGV[a + 5],
    'author', ARGV[a + 6], 'failure', ARGV[a + 7])
end
return 1
"""


class RetryLater(Exception):
    """The API asked us to slow down (HTTP 429 with retry_after). `sender_wide`: the limit hit
    is the whole sender's (a bot's, a number's throughput), so none of its chats sends until
    then; False: only this chat waits; None: the API does not say which (Telegram's 429), so
    the whole sender waits only if it was sending near its limit (its gate `busy`), else only
    this chat: one chat's burst must not stop every other client's messages."""

    def __init__(self, seconds: float, *, sender_wide: bool | None = False) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds
        self.sender_wide = sender_wide


class PermanentFailure(Exception):
    """Retrying cannot help: the message is dead-lettered at once."""


class Substituted(PermanentFailure):
    """The message could not go as it was (a staff file too big for the channel, or gone), and
    a text saying so was delivered in its place. Whoever wrote it is told why; should it reach
    the outbox, it is dead-lettered, never sent again."""


class Delivery(Protocol):
    """A channel's sender. Raises RetryLater, PermanentFailure, or anything else (transient).
    What it returns (if anything) are further messages the delivery caused, queued in the same
    step that records it as sent (the staff page a handoff causes)."""

    async def deliver(self, message: Outgoing) -> Sequence[Outgoing] | None: ...


@dataclass(frozen=True, slots=True)
class Pacing:
    rate_per_chat: float
    burst_per_chat: int
    rate_global: float


# A service without per-chat limits (Chatwoot, Novu): only its global rate applies.
UNPACED_CHAT = (1000.0, 1000)


def pace(
    rate_global: float,
    rate_per_chat: float = UNPACED_CHAT[0],
    burst_per_chat: int = UNPACED_CHAT[1],
) -> tuple[Pacing, Gate]:
    """A service's pacing per chat and the gate for the whole sender (one bot, one number, one
    service account): its limit's count of sends in any second."""
    return (Pacing(rate_per_chat, burst_per_chat, rate_global), SendWindow(rate_global))


class _Place:
    """A send's place in its chat's cadence and its sender's gate, given back once: when the
    platform has answered, or when the message turned out not to go."""

    __slots__ = ("_cadence", "_gate")

    def __init__(self, paced: tuple[Cadence, Gate] | None) -> None:
        self._cadence: Cadence | None = paced[0] if paced is not None else None
        self._gate: Gate | None = paced[1] if paced is not None else None

    def paused(self) -> bool:
        """Whether the sender was told to wait (a 429 for all its chats) since the place was
        taken, and still is."""
        return self._gate is not None and self._gate.paused()

    def release(self) -> None:
        if self._cadence is not None and self._gate is not None:
            self._cadence.done()
            self._gate.done()
            self._cadence = self._gate = None


@dataclass
class _Queued:
    entry_id: str
    message: Outgoing
    attempts: int = 0
    # Delivered but not yet recorded (Redis failed in between): record it, never send it again.
    delivered: bool = False
    # What the delivery caused, queued when it is recorded.
    caused: tuple[Outgoing, ...] = ()


class OutboxSender:
    """Delivers one shard's outbound stream while this process holds the shard's lease."""

    def __init__(
        self,
        redis: Redis,
        lease: Lease,
        deliveries: dict[str, Delivery],
        pacing: dict[str, Pacing],
        global_buckets: Mapping[str, Gate],
        metrics: Metrics,
        *,
        schedule: Sequence[float],
        wake: asyncio.Event,
        slots: Slots,
        batch: int = 100,
        held: Callable[[Outgoing], Awaitable[bool]] | None = None,
        rescan: float = RESCAN_SECONDS,
        buried: Callable[[Outgoing, str], Sequence[Outgoing]] | None = None,
    ) -> None:
        self.rescan = rescan
        # What a message dead-lettered causes (given it and its entry id), queued in the same
        # step that buries it: a notice that could not reach a client pages the salon's staff.
        self.buried = buried
        # Whether a bot message must not go out now (a person owns the conversation): asked
        # right before sending, so a reply queued just before a takeover stays unsaid.
        self.held = held
        self.slots = slots
        self.redis = redis
        self.lease = lease
        self.keys = lease.keys
        self.stream = lease.keys.outbound(lease.shard)
        self.attempts_key = lease.keys.send_attempts(lease.shard)
        self.deliveries = deliveries
        self.pacing = pacing
        self.global_buckets = global_buckets
        self.metrics = metrics
        self.schedule = tuple(schedule)
        self.wake = wake
        self.batch = batch
        self._chats: dict[tuple[str, str], deque[_Queued]] = {}
        self._buckets: dict[tuple[str, str], Cadence] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Messages this process holds, and those it finished since the pending list was last
        # read again (that read may have left Redis before they were acknowledged): the
        # re-read skips both.
        self._held: set[str] = set()
        self._finished: set[str] = set()
        self._done = Lua(redis, _DONE)
        self._ack_script = Lua(redis, _ACK)
        self._acks = Acks(self._ack)
        self._dead = Lua(redis, _BURY_AND_QUEUE)
        self.stopping = False
        # Set on a graceful stop: deliver what is already committed, then return.
        self.finishing = False

    async def run(self) -> None:
        await ensure_group(self.redis, self.stream, OUTBOUND_GROUP)
        cursor = "0"
        scanned = time.monotonic()
        while not self.stopping and not self.lease.lost.is_set():
            if cursor == ">" and time.monotonic() - scanned > self.rescan:
                # A message a predecessor read after its lease expired stays pending under this
                # shard's name: read the pending list again now and then (see workers.py).
                cursor, scanned = "0", time.monotonic()
                self._finished.clear()
            reply = await self.redis.xreadgroup(
                OUTBOUND_GROUP,
                consumer_name(self.lease.shard),
                {self.stream: cursor},
                count=self.batch,
            )
            entries = reply[0][1] if reply else []
            if cursor != ">":
                # The pending history, in pages by id; then what is new.
                await self._take(entries, recovered=True)
                cursor = entries[-1][0].decode() if entries else ">"
                continue
            await self._take(entries, recovered=False)
            if self.finishing and not entries:
                if self._tasks:
                    await asyncio.wait(list(self._tasks.values()))
                return
            if len(entries) < self.batch:
                # Woken by a commit in this process; polled for anything else (a replay).
                await wait_event(self.wake, 1.0)
                self.wake.clear()

    async def _take(self, entries: list[tuple[bytes, dict[bytes, bytes]]], recovered: bool) -> None:
        attempts: list[object] = []
        if recovered and entries:
            # Attempts survive a crash, so a recovered message keeps its place in the schedule.
            attempts = await self.redis.hmget(self.attempts_key, [e[0] for e in entries])  # type: ignore[misc]
        for index, (raw_id, fields) in enumerate(entries):
            if raw_id.decode() in self._held or raw_id.decode() in self._finished:
                continue
            self._held.add(raw_id.decode())
            message = Outgoing.from_fields(fields)
            done = int(attempts[index] or 0) if attempts else 0  # type: ignore[call-overload]
            key = (message.channel, message.chat)
            self._chats.setdefault(key, deque()).append(_Queued(raw_id.decode(), message, done))
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._chat(key))

    async def _chat(self, key: tuple[str, str]) -> None:
        queue = self._chats[key]
        try:
            while queue and not self.lease.lost.is_set():
                item = queue[0]
                place = _Place(None if item.message.ephemeral else await self._pace(key, item))
                try:
                    # Bounded like handling: a backlog must not exhaust the Redis connections.
                    async with self.slots:
                        # The place in the sender's window was taken before the slot (a slot
                        # held while pacing waits would stall the chats and salons sharing it), so
                        # a pause may have begun while this one queued for the slot: it goes
                        # back to pacing, which waits the pause out, and sends nothing now.
                        retry_in = 0.0 if place.paused() else await self._send(item, place)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Redis hiccups while recording the outcome: try the same message again
                    # rather than lose the chat's place in the queue.
                    chat = mask_chat(item.message.channel, item.message.chat)
                    log.exception("outbox step failed for chat %s; retrying", chat)
                    retry_in = 1.0
                finally:
                    place.release()
                if retry_in is None:
                    queue.popleft()
                    self._held.discard(item.entry_id)
                    self._finished.add(item.entry_id)
                else:
                    # Wake on a lost lease so that shutdown is not held up.
                    await wait_event(self.lease.lost, retry_in)
        finally:
            # Whatever is left stays pending in Redis for the next lease holder.
            self._held.difference_update(item.entry_id for item in queue)
            del self._tasks[key]
            del self._chats[key]
            if len(self._buckets) > 10_000:
                # A chat whose cadence is back to its full burst is as good as a new one.
                for rested in [k for k, cadence in self._buckets.items() if cadence.rested()]:
                    del self._buckets[rested]

    async def _pace(self, key: tuple[str, str], item: _Queued) -> tuple[Cadence, Gate]:
        """Wait for the chat's turn, then the sender's; both are told when the send is over."""
        message = item.message
        pacing = self.pacing[message.channel]
        cadence = self._buckets.get(key)
        if cadence is None:
            cadence = Cadence(pacing.rate_per_chat, pacing.burst_per_chat)
            self._buckets[key] = cadence
        await cadence.take()
        gate = self.global_buckets[message.channel]
        await gate.take()
        return cadence, gate

    async def _send(self, item: _Queued, place: _Place) -> float | None:
        """Deliver one message: None when it is done with, else seconds until the next try."""
        message = item.message
        delivery = self.deliveries.get(message.channel)
        if delivery is None:
            await self._bury(item, f"no delivery for channel {message.channel!r}")
            return None
        if item.delivered:
            await self._finish(item)
            return None
        # A tap's acknowledgement always goes: the client's spinner must stop.
        bot_message = message.author == Author.BOT and not message.ephemeral
        if self.held is not None and bot_message and await self.held(message):
            self.metrics.outbox.labels(message.channel, "held").inc()
            log.info("a bot message was held back: a person owns the conversation")
            await self._finish(item)
            return None
        try:
            try:
                caused = await delivery.deliver(message)
            finally:
                # Answered: recording it in Redis is no longer the platform's business.
                place.release()
        except RetryLater as exc:
            self.metrics.outbox.labels(message.channel, "throttled").inc()
            gate = self.global_buckets[message.channel]
            if exc.sender_wide or (exc.sender_wide is None and gate.busy()):
                gate.pause(exc.seconds)
            log.info(
                "%s asked to wait %.1fs before %s", message.channel, exc.seconds, message.method
            )
            return exc.seconds
        except BreakerOpen as exc:
            if exc.name != message.channel:
                # Another service's breaker on the way (a staff file fetched from Chatwoot for
                # Telegram): an ordinary failed attempt, so that one service's outage cannot
                # hold this chat's queue for as long as it lasts.
                return await self._retry(item, exc)
            # Not an attempt: nothing was sent. Counting it would dead-letter healthy messages
            # during a long outage and keep them waiting a whole retry step once it is over.
            self.metrics.outbox.labels(message.channel, "deferred").inc()
            log.debug("%s: %s", message.channel, exc)
            return exc.retry_in if exc.retry_in > 0 else BREAKER_RECHECK_SECONDS
        except PermanentFailure as exc:
            self.metrics.outbox.labels(message.channel, "rejected").inc()
            if message.ephemeral:
                # An expired tap acknowledgement is of no use to anyone later.
                log.info("dropped %s: %s", message.method, exc)
                await self._finish(item)
            else:
                await self._bury(item, f"rejected: {exc}")
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._retry(item, exc)
        item.delivered = True
        item.caused = tuple(caused or ())
        self.metrics.outbox.labels(message.channel, "sent").inc()
        await self._finish(item)
        return None

    async def _retry(self, item: _Queued, exc: Exception) -> float | None:
        message = item.message
        error = f"{type(exc).__name__}: {exc}"
        item.attempts += 1
        if message.ephemeral or item.attempts > len(self.schedule):
            self.metrics.outbox.labels(message.channel, "failed").inc()
            if message.ephemeral:
                await self._finish(item)
            else:
                await self._bury(item, error)
            return None
        delay = self.schedule[item.attempts - 1]
        self.metrics.outbox_retries.labels(message.channel).inc()
        log.warning(
            "%s %s to chat %s failed (attempt %d), retrying in %.0fs: %s",
            message.channel,
            message.method,
            mask_chat(message.channel, message.chat),
            item.attempts,
            delay,
            error,
        )
        await self.redis.hset(self.attempts_key, item.entry_id, str(item.attempts))  # type: ignore[misc]
        return delay

    async def _finish(self, item: _Queued) -> None:
        if not item.caused:
            # A plain acknowledgement: written with those that come meanwhile.
            self.lease.fenced(await self._acks.ack(item.entry_id))
            return
        result = await self._done(
            keys=[self.lease.key, self.stream, self.attempts_key],
            args=[self.lease.owner, OUTBOUND_GROUP, item.entry_id, *_fields(item)],
        )
        self.lease.fenced(result)
        self.wake.set()

    async def _ack(self, entry_ids: list[str]) -> object:
        return await self._ack_script(
            keys=[self.lease.key, self.stream, self.attempts_key],
            args=[self.lease.owner, OUTBOUND_GROUP, *entry_ids],
        )

    async def _bury(self, item: _Queued, error: str) -> None:
        message = item.message
        chat = mask_chat(message.channel, message.chat)
        log.error("dead-lettered %s to chat %s: %s", message.method, chat, error)
        fields: dict[str, str | int] = {
            "channel": message.channel,
            "chat": message.chat,
            "method": message.method,
            "params": json.dumps(message.params, ensure_ascii=False),
            "ephemeral": "1" if message.ephemeral else "0",
            "author": message.author,
            "failure": message.failure,
            "failed_at": int(time.time() * 1000),
        }
        # Under the lease and in one step with the acknowledgement: a message is dead-lettered
        # once. A notice's failure fact rides along (named by the notice, so a replayed one that
        # fails again is still counted once), and so does what its burial causes.
        if self.buried is not None:
            item.caused = tuple(self.buried(message, item.entry_id))
        named = [value for pair in fields.items() for value in pair]
        result = await self._dead(
            keys=[
                self.lease.key,
                self.stream,
                self.attempts_key,
                self.keys.dead_letters,
                self.keys.analytics,
            ],
            args=[
                self.lease.owner,
                OUTBOUND_GROUP,
                item.entry_id,
                error[:1000],
                item.attempts,
                "outbound",
                message.failure,
                len(named),
                *named,
                *_fields(item),
            ],
        )
        self.lease.fenced(result)
        if item.caused:
            self.wake.set()

    async def drain(self, deadline: float) -> None:
        self.stopping = True
        self.wake.set()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in list(self._tasks.values()):
            task.cancel()


def _fields(item: _Queued) -> list[str]:
    """The stream fields of what `item` caused, named as coming from it."""
    return [value for caused in item.caused for value in caused.to_fields(item.entry_id)]
