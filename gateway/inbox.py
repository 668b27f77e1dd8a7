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

from gateway.keys import Keys
from gateway.lua import Lua

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


class InboxUnavailable(Exception):
    """Redis could not take the write: the caller answers 503 so that the provider retries."""


@dataclass(frozen=True, slots=True)
class Event:
    source: str  # "telegram", "whatsapp", ...
    event_id: str  # the provider's own id, used for de-duplication
    conversation: str  # events of one conversation are handled one at a time, in order
    body: bytes  # the raw payload, exactly as received


class Inbox:
    def __init__(self, redis: Redis, keys: Keys, dedup_ttl: int) -> None:
        self._redis = redis
        self._keys = keys
        self._dedup_ttl = dedup_ttl
        self._script = Lua(redis, _INGEST)
        self._pending: list[tuple[Event, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None
        # One event per shard, set when the shard receives entries: in-process workers wake at once.
        self._listeners: list[asyncio.Event] = []

    def listen(self, shard_events: list[asyncio.Event]) -> None:
        self._listeners = shard_events

    async def put(self, event: Event) -> bool:
        """Queue an event. True if queued, False if it was a duplicate; InboxUnavailable if not."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        # Bounded: every batch's write is (a stopping process, a stuck Redis), so no webhook is
        # left hanging; one timer per batch rather than one per request.
        return await future

    async def _flush(self) -> None:
        try:
            await self._flush_all()
        finally:
            # Whatever ended the flushing (a cancelled task at shutdown), nobody waits in vain.
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(InboxUnavailable("not written"))
            self._pending = []

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            keys: list[str] = []
            args: list[str | bytes | int] = [self._dedup_ttl, STREAM_CAP, int(time.time() * 1000)]
            shards: list[int] = []
            for event, _ in batch:
                shard = self._keys.shard_of(event.conversation)
                shards.append(shard)
                keys += [self._keys.dedup(event.source, event.event_id), self._keys.inbound(shard)]
                args += [event.source, event.conversation, event.event_id, event.body]
            try:
                async with asyncio.timeout(PUT_TIMEOUT):
                    results = await self._script(keys=keys, args=args)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(InboxUnavailable(str(exc) or type(exc).__name__))
                if not isinstance(exc, RedisError | OSError | TimeoutError):
                    raise  # cancelled (shutdown) or a bug: the waiting webhooks answer 503
                log.warning("ingest failed for %d events: %s", len(batch), type(exc).__name__)
                continue
            for (_, future), queued, shard in zip(batch, results, shards, strict=True):
                if not future.done():
                    future.set_result(bool(queued))
                if queued and shard < len(self._listeners):
                    self._listeners[shard].set()
