"""Durable ingest: de-duplicate by the provider's id and append to a Redis stream, atomically.

A webhook is acknowledged only once its event is in Redis. To keep that cheap under bursts the
writes of concurrent requests are grouped: while one batch is on its way to Redis the next one
collects, and each batch is a single Lua call (one round trip, atomic per event: the dedup key and
the stream entry are written together or not at all). A naive round trip per request reaches only
about a third of a bare aiohttp handler's throughput on a 2-core machine; grouping is what gets
past that (see `bench/`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.keys import Keys
from gateway.pipeline.lua import Lua

log = logging.getLogger("frontdesk.inbox")

# KEYS: dedup key and stream key per event. ARGV[1]: dedup TTL, ARGV[2]: approximate stream cap,
# ARGV[3]: when the batch was received, then four values per event. Returns 1 (queued) or 0
# (duplicate) per event, in order.
_INGEST = """
local ttl = ARGV[1]
local cap = ARGV[2]
local at = ARGV[3]
local result = {}
local a = 4
for i = 1, #KEYS / 2 do
  if redis.call('SET', KEYS[2 * i - 1], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[2 * i], 'MAXLEN', '~', cap, '*',
      'src', ARGV[a], 'conv', ARGV[a + 1], 'id', ARGV[a + 2], 'at', at, 'body', ARGV[a + 3])
    result[i] = 1
  else
    result[i] = 0
  end
  a = a + 4
end
return result
"""

# A stream is capped far above any sane backlog; the cap only protects Redis' memory.
STREAM_CAP = 1_000_000
MAX_BATCH = 256
# Longer than the Redis client's own socket timeout (5 s), so that one reports first.
PUT_TIMEOUT = 10.0


# Ids end up in Redis keys and stream fields; none a provider sends comes near this.
MAX_ID_LENGTH = 256


class InboxUnavailable(Exception):
    """Redis could not take the write: the caller answers 503 so that the provider retries."""


class Unqueueable(ValueError):
    """This event cannot be written (say, an id that is not valid UTF-8): it fails alone, 400."""


def id_problem(value: str) -> str | None:
    """Why an id cannot go into a Redis key or field, or None if it can.

    Printable, encodable as UTF-8 (a lone surrogate, as a JavaScript client produces when it
    cuts an emoji in half, is not) and at most MAX_ID_LENGTH characters.
    """
    if not value:
        return "empty"
    if len(value) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if not value.isprintable():
        return "not printable"
    return None


def event_problem(event: Event) -> str | None:
    """Why an event cannot be queued (its ids are invalid), or None if it can."""
    for what, value in (
        ("source", event.source),
        ("event id", event.event_id),
        ("conversation id", event.conversation),
    ):
        if (problem := id_problem(value)) is not None:
            return f"{what} {problem}"
    return None


@dataclass(frozen=True, slots=True)
class Event:
    source: str  # "telegram", "whatsapp", ...
    event_id: str  # the provider's own id, used for de-duplication
    conversation: str  # events of one conversation are handled one at a time, in order
    body: bytes  # the raw payload, exactly as received


@dataclass(slots=True)
class _Waiting:
    event: Event
    future: asyncio.Future[bool]
    since: float  # the loop's time when it came


def _fail(waiting: list[_Waiting], why: str) -> None:
    for item in waiting:
        if not item.future.done():
            item.future.set_exception(InboxUnavailable(why))


class Inbox:
    def __init__(self, redis: Redis, keys: Keys, dedup_ttl: int) -> None:
        self._redis = redis
        self._keys = keys
        self._dedup_ttl = dedup_ttl
        self._script = Lua(redis, _INGEST)
        self._pending: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None
        # One event per shard, set when the shard receives entries: in-process workers wake at once.
        self._listeners: list[asyncio.Event] = []

    def listen(self, shard_events: list[asyncio.Event]) -> None:
        self._listeners = shard_events

    async def put(self, event: Event) -> bool:
        """Queue an event. True if queued, False if it was a duplicate; InboxUnavailable if not.

        Bounded without a timer per request: each batch's write has one, and an event still
        waiting PUT_TIMEOUT after it came is answered unavailable before a batch goes out.
        An event whose ids cannot be written raises Unqueueable, and fails alone: the other
        events of its batch are written as usual.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append(_Waiting(event, future, loop.time()))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            too_old = loop.time() - PUT_TIMEOUT
            late = [waiting for waiting in batch if waiting.since < too_old]
            if late:
                _fail(late, "waited too long for Redis")
                batch = [waiting for waiting in batch if waiting.since >= too_old]
            try:
                await self._write(batch)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("ingest failed for %d events: %s", len(batch), type(exc).__name__)
                # Redis is not taking writes: the others are answered now too (503, and the
                # provider delivers again), rather than each in turn after a timeout.
                _fail(batch, str(exc) or type(exc).__name__)
                _fail(self._pending, "Redis is unavailable")
                self._pending = []
            except Exception:
                # A bug: this batch is answered unavailable and the next ones go on. (An event
                # that cannot be written is refused alone, in `_write`.)
                log.exception("ingest failed for %d events", len(batch))
                _fail(batch, "not written")
            except BaseException:
                # Cancelled (shutdown): what waits is answered now, not never.
                _fail(batch, "stopping")
                _fail(self._pending, "stopping")
                self._pending = []
                raise

    async def _write(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        keys: list[str] = []
        args: list[str | bytes | int] = [self._dedup_ttl, STREAM_CAP, int(time.time() * 1000)]
        shards: list[int] = []
        written: list[_Waiting] = []
        for waiting in batch:
            try:
                shard, event_keys, event_args = self._command(waiting.event)
            except Unqueueable as exc:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
                continue
            written.append(waiting)
            shards.append(shard)
            keys += event_keys
            args += event_args
        if not written:
            return
        async with asyncio.timeout(PUT_TIMEOUT):
            results = await self._script(keys=keys, args=args)
        for waiting, queued, shard in zip(written, results, shards, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(bool(queued))
            if queued and shard < len(self._listeners):
                self._listeners[shard].set()

    def _command(self, event: Event) -> tuple[int, list[str], list[str | bytes | int]]:
        """One event's shard, keys and arguments of the ingest call; Unqueueable if its ids
        could not be written (the Redis client would fail the whole call on them)."""
        if (problem := event_problem(event)) is not None:
            raise Unqueueable(problem)
        shard = self._keys.shard_of(event.conversation)
        keys = [self._keys.dedup(event.source, event.event_id), self._keys.inbound(shard)]
        return shard, keys, [event.source, event.conversation, event.event_id, event.body]
