"""Workers: consume the inbound streams; one conversation at a time, in arrival order.

Conversations are spread over a fixed number of shards (a stream each). A shard is worked by one
process at a time, the holder of its lease in Redis, so the order of a conversation holds across
replicas. Inside a process, different conversations of a shard are handled concurrently and one
conversation's entries strictly one after another.

Each shard has one consumer name in the group (`shard-N`), whoever holds its lease: when a
process dies (kill -9) its lease expires, the next holder reads the shard's pending entries first
and handles them before anything new. Handling commits its outcome (the client's session, the
messages to send and the acknowledgement) in one Lua call that first checks the lease, so a
process that lost its lease cannot commit over its successor.

An entry that fails `max_attempts` times goes to the dead-letter stream with its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.pipeline.fair_slots import Slots
from gateway.pipeline.keys import INBOUND_GROUP, Keys
from gateway.pipeline.lua import Lua
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.streams import Entry, Outcome, Unreadable
from gateway.pipeline.tasks import wait_event

log = logging.getLogger("frontdesk.workers")

Handler = Callable[[Entry], Awaitable[Outcome]]
# How often a shard's pending list is read again for entries nobody is working on.
RESCAN_SECONDS = 5.0
# KEYS: lease, inbound stream, attempts hash, outbound stream, session key ('' for none),
# analytics stream, then keys to delete. ARGV: owner, group, entry id, session, session ttl,
# the number of facts, the facts (JSON), then 8 fields per outgoing message. The analytics
# stream is capped at about a million facts (here and in BURY): facts wait there while
# PostgreSQL is down, and only the oldest go. The handled entry is deleted in the same step as
# its acknowledgement: its body (the client's message, a shared phone number) is kept no longer
# than its effects take to commit, and until then it stays pending for whoever reclaims it.
# XDEL "Removes the specified entries from a stream" whatever consumer groups there are
# (https://redis.io/docs/latest/commands/xdel/); XACK first takes it off the pending list.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('XACK', KEYS[2], ARGV[2], ARGV[3]) == 0 then return -1 end
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[5]) end
for k = 7, #KEYS do redis.call('DEL', KEYS[k]) end
local facts = tonumber(ARGV[6])
for f = 7, 6 + facts do
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', 1000000, '*', 'fact', ARGV[f])
end
for a = 7 + facts, #ARGV, 8 do
  redis.call('XADD', KEYS[4], '*', 'channel', ARGV[a], 'chat', ARGV[a + 1],
    'method', ARGV[a + 2], 'params', ARGV[a + 3], 'ephemeral', ARGV[a + 4], 'origin', ARGV[a + 5],
    'author', ARGV[a + 6], 'failure', ARGV[a + 7])
end
return 1
"""

# Dead-letters an entry (inbound or outbound) under the lease, in one step. KEYS: lease, stream,
# attempts hash, dead letters, analytics stream. ARGV: owner, group, entry id, error, attempts,
# kind, an analytics fact to record ('' for none), then the entry's fields as name/value pairs.
BURY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local fields = {'kind', ARGV[6], 'stream', KEYS[2], 'entry', ARGV[3], 'error', ARGV[4],
  'attempts', ARGV[5]}
for a = 8, #ARGV do fields[#fields + 1] = ARGV[a] end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', unpack(fields))
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 1000000, '*', 'fact', ARGV[7])
end
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[3])
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    pass


def consumer_name(shard: int) -> str:
    return f"shard-{shard}"


_CREATE_GROUP = """
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
return 1
"""


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    # In Lua with pcall: "already exists" (BUSYGROUP) is the usual answer, and an error reply
    # would cost the embedded Redis its connection.
    await Lua(redis, _CREATE_GROUP)(keys=[stream], args=[group])


class Lease:
    """This process's claim on one shard, fenced by a random owner token."""

    def __init__(self, redis: Redis, keys: Keys, shard: int, owner: str) -> None:
        self.redis = redis
        self.keys = keys
        self.shard = shard
        self.owner = owner
        self.key = keys.lease(shard)
        # Lost: someone else may hold the shard now, stop at once. Ending: we are giving it back
        # (shutdown, rebalancing) and still hold it, so in-flight work may finish first.
        self.lost = asyncio.Event()
        self.ending = asyncio.Event()

    @property
    def active(self) -> bool:
        return not (self.lost.is_set() or self.ending.is_set())

    def fenced(self, result: object) -> None:
        if result == 0:
            self.lost.set()
            raise LeaseLost(f"lease on shard {self.shard} lost")


class InboundConsumer:
    """Reads one shard's inbound stream and handles its entries."""

    def __init__(
        self,
        redis: Redis,
        lease: Lease,
        handlers: dict[str, Handler],
        metrics: Metrics,
        *,
        max_attempts: int,
        wake: asyncio.Event,
        sent: asyncio.Event,
        slots: Slots,
        retry_base: float = 0.5,
        batch: int = 64,
        max_buffered: int = 256,
        rescan: float = RESCAN_SECONDS,
        record_facts: bool = False,
    ) -> None:
        self.rescan = rescan
        # Analytics is on (ANALYTICS_DATABASE_URL): facts are queued for its writer.
        self.record_facts = record_facts
        self.slots = slots
        self.redis = redis
        self.lease = lease
        self.keys = lease.keys
        self.stream = lease.keys.inbound(lease.shard)
        self.handlers = handlers
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.wake = wake
        self.outbox_wake = sent
        self.retry_base = retry_base
        self.batch = batch
        self.max_buffered = max_buffered
        self._queues: dict[str, deque[Entry]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Entries this process holds (queued or being handled): a re-read of the pending list
        # skips them.
        self._held: set[str] = set()
        # Finished since the pending list was last read again (see outbox.py): skipped too.
        self._finished: set[str] = set()
        self._buffered = 0
        # Called by every handled entry: the commits of concurrent conversations share a
        # round trip (gateway/pipeline/round_trips.py).
        self._commit = Lua(redis, _COMMIT, batched=True)
        self._measured: dict[tuple[str, str], tuple[Counter, Histogram, Histogram]] = {}
        self._bury = Lua(redis, BURY)
        self.stopping = False

    async def run(self) -> None:
        await ensure_group(self.redis, self.stream, INBOUND_GROUP)
        # First what this shard's consumer already had (a predecessor's unfinished work), then
        # new entries.
        cursor = "0"
        scanned = time.monotonic()
        while not self.stopping and self.lease.active:
            if self._buffered >= self.max_buffered:
                await self._wait(0.05)
                continue
            started = time.monotonic()
            if cursor == ">" and started - scanned > self.rescan:
                # Now and then the pending list again: an entry a predecessor read after its
                # lease had expired (and never handled) is pending under this shard's name
                # but came after our first read of that list.
                cursor, scanned = "0", started
                self._finished.clear()
            history = cursor != ">"
            reply = await self.redis.xreadgroup(
                INBOUND_GROUP,
                consumer_name(self.lease.shard),
                {self.stream: cursor},
                count=self.batch,
                block=None if history else 1000,
            )
            entries = reply[0][1] if reply else []
            if history and not entries:
                cursor = ">"  # the pending history is read: now what is new
                continue
            for entry_id, fields in entries:
                if entry_id.decode() in self._held or entry_id.decode() in self._finished:
                    continue
                entry = Entry.from_fields(entry_id.decode(), fields)
                self._enqueue(entry)
            if history:
                # Pending history is read in pages by id.
                cursor = entries[-1][0].decode()
            elif not entries and time.monotonic() - started < 0.5:
                # A Redis that does not block (the embedded one) gets polled; an in-process
                # ingest wakes us at once.
                await self._wait(0.05)

    async def _wait(self, seconds: float) -> None:
        await wait_event(self.wake, seconds)
        self.wake.clear()

    def _enqueue(self, entry: Entry) -> None:
        queue = self._queues.setdefault(entry.conversation, deque())
        queue.append(entry)
        self._held.add(entry.id)
        self._buffered += 1
        if entry.conversation not in self._tasks:
            task = asyncio.create_task(self._conversation(entry.conversation))
            self._tasks[entry.conversation] = task

    async def _conversation(self, conversation: str) -> None:
        queue = self._queues[conversation]
        try:
            while queue and not self.stopping and not self.lease.lost.is_set():
                entry = queue[0]
                # A slot bounds how many entries this process handles at once, whatever the
                # backlog: without it thousands of conversations would fight over the Redis
                # connections and time out together.
                async with self.slots:
                    retry_in = await self._handle(entry)
                if retry_in is None:
                    queue.popleft()
                    self._held.discard(entry.id)
                    self._finished.add(entry.id)
                    self._buffered -= 1
                else:
                    # Back off, then retry the same entry: the conversation's order is kept.
                    await asyncio.sleep(retry_in)
        finally:
            del self._tasks[conversation]
            if not queue:
                del self._queues[conversation]
            else:
                # Stopped with work left: it stays pending in Redis for the next lease holder.
                self._buffered -= len(queue)
                self._held.difference_update(entry.id for entry in queue)
                del self._queues[conversation]

    async def _handle(self, entry: Entry) -> float | None:
        """Handle one entry: None when it is done with (committed or buried), else the seconds
        to wait before trying it again."""
        handler = self.handlers.get(entry.source)
        started = time.perf_counter()
        try:
            if handler is None:
                raise LookupError(f"no handler for source {entry.source!r}")
            result = "ok"
            try:
                outcome = await handler(entry)
            except Unreadable as exc:
                # Acknowledged with nothing done: another try would fail the same way.
                log.warning(
                    "an entry that cannot be handled is dropped: %s", exc, extra=_context(entry)
                )
                self.metrics.events_dropped.labels(entry.source, "unreadable").inc()
                outcome, result = Outcome(), "dropped"
            if not await self._commit_outcome(entry, outcome):
                self.metrics.handled.labels(entry.source, "duplicate").inc()
                return None
        except LeaseLost:
            log.warning("lease lost; entry left for the next holder", extra=_context(entry))
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.handled.labels(entry.source, "failed").inc()
            return await self._failed(entry, exc)
        handled, handling, waited = self._measures(entry.source, result)
        handled.inc()
        handling.observe(time.perf_counter() - started)
        waited.observe(max(0.0, time.time() - entry.received_ms / 1000))
        return None

    def _measures(self, source: str, result: str) -> tuple[Counter, Histogram, Histogram]:
        """A handled entry's counter and histograms, looked up once per source and result:
        prometheus_client's `labels()` checks and locks on every call (a few µs each, three
        times per entry)."""
        found = self._measured.get((source, result))
        if found is None:
            metrics = self.metrics
            found = self._measured[(source, result)] = (
                metrics.handled.labels(source, result),
                metrics.handling_seconds.labels(source),
                metrics.queue_latency_seconds.labels(source),
            )
        return found

    async def _commit_outcome(self, entry: Entry, outcome: Outcome) -> bool:
        """Commit; False when the entry had been handled already (nothing was committed)."""
        facts = outcome.facts if self.record_facts else ()
        args: list[str | int] = [
            self.lease.owner,
            INBOUND_GROUP,
            entry.id,
            outcome.session or "",
            outcome.session_ttl or 1,
            len(facts),
        ]
        for n, fact in enumerate(facts):
            # Named by the salon and the provider's own event id: a replayed entry records
            # nothing twice, and salons sharing a database never collide. A fact that names
            # itself (a booking change, which more than one path may see) keeps its name.
            fact_id = fact.get("id") or f"{self.keys.salon_id}:{entry.source}:{entry.event_id}:{n}"
            args.append(json.dumps({**fact, "id": fact_id}, separators=(",", ":"), default=str))
        for message in outcome.outgoing:
            args.extend(message.to_fields(entry.id))
        keys = [
            self.lease.key,
            self.stream,
            self.keys.attempts(self.lease.shard),
            self.keys.outbound(self.lease.shard),
            outcome.session_key or "",
            self.keys.analytics,
            *outcome.clear,
        ]
        result = await self._commit(keys=keys, args=args)
        self.lease.fenced(result)
        if result == -1:
            log.info("entry was already handled; nothing committed", extra=_context(entry))
            return False
        if outcome.outgoing:
            self.outbox_wake.set()
        return True

    async def _failed(self, entry: Entry, exc: Exception) -> float | None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        try:
            attempts = int(
                await self.redis.hincrby(self.keys.attempts(self.lease.shard), entry.id)  # type: ignore[misc]
            )
            if attempts >= self.max_attempts:
                log.error(
                    "failed %d times, dead-lettered: %s", attempts, error, extra=_context(entry)
                )
                result = await self._bury(
                    keys=[
                        self.lease.key,
                        self.stream,
                        self.keys.attempts(self.lease.shard),
                        self.keys.dead_letters,
                        self.keys.analytics,
                    ],
                    args=[
                        self.lease.owner,
                        INBOUND_GROUP,
                        entry.id,
                        error,
                        attempts,
                        "inbound",
                        "",
                        "src",
                        entry.source,
                        "conv",
                        entry.conversation,
                        "id",
                        entry.event_id,
                        "at",
                        entry.received_ms,
                        "body",
                        entry.body,
                    ],
                )
                self.lease.fenced(result)
                self.metrics.handled.labels(entry.source, "dead").inc()
                return None
        except LeaseLost:
            return None
        except RedisError:
            attempts = 1
        log.warning(
            "handling failed (attempt %d): %s", attempts, error, exc_info=exc, extra=_context(entry)
        )
        return float(min(30.0, self.retry_base * 2 ** (attempts - 1)))

    async def drain(self, deadline: float) -> None:
        """Stop reading; give in-flight conversations until `deadline` (monotonic)."""
        self.stopping = True
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in self._tasks.values():
            task.cancel()


def _context(entry: Entry) -> dict[str, str]:
    return {
        "source": entry.source,
        "event_id": entry.event_id,
        "entry": entry.id,
        "conversation": entry.conversation,
    }


ShardRunner = Callable[[Lease], Awaitable[None]]


class WorkerPool:
    """Holds leases on a fair share of the shards and runs their consumers.

    Every process heartbeats into a sorted set; each takes at most ceil(shards / live processes)
    shards, so two replicas split the work and a survivor takes over a dead one's shards when
    their leases expire.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        run_shard: ShardRunner,
        *,
        lease_seconds: float,
        shards: Sequence[int] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.run_shard = run_shard
        self.lease_ms = int(lease_seconds * 1000)
        self.shards = list(shards if shards is not None else range(keys.shards))
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.leases: dict[int, Lease] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._renew = Lua(redis, _RENEW)
        self._release = Lua(redis, _RELEASE)
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()

    @property
    def owned(self) -> list[int]:
        return sorted(self.leases)

    async def run(self) -> None:
        interval = self.lease_ms / 3000
        while not self._stop.is_set():
            try:
                await self._tick()
            except (RedisError, OSError) as exc:
                log.warning("lease upkeep failed: %s", type(exc).__name__)
            await wait_event(self._stop, interval)

    async def _tick(self) -> None:
        now = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.members, {self.owner: now})
            pipe.zremrangebyscore(self.keys.members, 0, now - self.lease_ms)
            pipe.zcard(self.keys.members)
            _, _, members = await pipe.execute()
        fair = math.ceil(len(self.shards) / max(1, int(members)))
        for shard, lease in list(self.leases.items()):
            renewed = await self._renew(keys=[lease.key], args=[self.owner, self.lease_ms])
            if not renewed or lease.lost.is_set():
                log.warning("lease on shard %d lost", shard)
                lease.lost.set()
                self._forget(shard)
        # Give back what is more than our share (the newest replica gets work), highest first.
        # The shard's runner finishes its in-flight work and releases the lease by itself.
        active = sorted((s for s, lease in self.leases.items() if lease.active), reverse=True)
        for shard in active[: max(0, len(active) - fair)]:
            log.info("giving back shard %d", shard)
            self.leases[shard].ending.set()
        candidates = [s for s in self.shards if s not in self.leases]
        random.shuffle(candidates)
        for shard in candidates:
            if len(self.leases) >= fair:
                break
            key = self.keys.lease(shard)
            if await self.redis.set(key, self.owner, nx=True, px=self.lease_ms):
                lease = Lease(self.redis, self.keys, shard, self.owner)
                self.leases[shard] = lease
                self.tasks[shard] = asyncio.create_task(self._supervise(lease))
                log.info("took shard %d", shard)
        self.ready.set()

    async def _supervise(self, lease: Lease) -> None:
        try:
            await self.run_shard(lease)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shard %d stopped", lease.shard)
        lease.lost.set()
        await self._release_lease(lease)
        if self.leases.get(lease.shard) is lease:
            del self.leases[lease.shard]
            self.tasks.pop(lease.shard, None)

    def _forget(self, shard: int) -> None:
        self.leases.pop(shard, None)
        task = self.tasks.pop(shard, None)
        if task is not None:
            task.cancel()

    async def _release_lease(self, lease: Lease) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[lease.key], args=[self.owner])

    async def stop(self, grace: float) -> None:
        """Stop taking work, let in-flight work finish within `grace`, give the leases back."""
        self._stop.set()
        for lease in self.leases.values():
            lease.ending.set()
        tasks = list(self.tasks.values())
        if tasks:
            # The shard runners drain within `grace` and release their leases themselves; a
            # little slack for the last Redis round trips.
            await asyncio.wait(tasks, timeout=grace + 1)
        for task in tasks:
            task.cancel()
        for lease in list(self.leases.values()):
            await self._release_lease(lease)
        self.leases.clear()
        self.tasks.clear()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.zrem(self.keys.members, self.owner)
