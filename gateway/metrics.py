"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from redis.asyncio import Redis

from gateway.keys import INBOUND_GROUP, OUTBOUND_GROUP, Keys
from gateway.resilience import State

# The `*_created` series double the output and say nothing an operator needs.
disable_created_metrics()

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter(
            "frontdesk_webhooks",
            "Webhooks received, by source and result",
            ["source", "result"],
            registry=r,
        )
        self.handled = Counter(
            "frontdesk_handled",
            "Queued events handled, by source and result",
            ["source", "result"],
            registry=r,
        )
        self.handling_seconds = Histogram(
            "frontdesk_handling_seconds",
            "Time to handle one queued event",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_latency_seconds = Histogram(
            "frontdesk_queue_latency_seconds",
            "From webhook received to handled",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox = Counter(
            "frontdesk_outbox_messages",
            "Outgoing messages, by channel and result",
            ["channel", "result"],
            registry=r,
        )
        self.outbox_retries = Counter(
            "frontdesk_outbox_retries",
            "Outgoing messages scheduled for a retry",
            ["channel"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "frontdesk_queue_depth",
            "Entries not yet handled (undelivered + pending)",
            ["queue"],
            registry=r,
        )
        self.queue_lag = Gauge(
            "frontdesk_queue_lag_seconds",
            "Age of the oldest entry not yet handled",
            ["queue"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "frontdesk_dead_letters", "Entries in the dead-letter stream", registry=r
        )
        self.breaker = Gauge(
            "frontdesk_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ["service"],
            registry=r,
        )

    def breaker_changed(self, name: str, state: State) -> None:
        self.breaker.labels(name).set(int(state))

    async def refresh_queues(self, redis: Redis, keys: Keys) -> None:
        """Queue depth and lag are read from Redis when scraped, not tracked in memory."""
        now_ms = time.time() * 1000
        for queue, stream_of, group in (
            ("inbound", keys.inbound, INBOUND_GROUP),
            ("outbound", keys.outbound, OUTBOUND_GROUP),
        ):
            depth = 0
            oldest: float | None = None
            async with redis.pipeline(transaction=False) as pipe:
                for shard in range(keys.shards):
                    pipe.xinfo_groups(stream_of(shard))
                    pipe.xpending(stream_of(shard), group)
                results = await pipe.execute(raise_on_error=False)
            undelivered: list[tuple[int, str]] = []
            for shard in range(keys.shards):
                groups, pending = results[2 * shard : 2 * shard + 2]
                if isinstance(groups, Exception) or isinstance(pending, Exception):
                    continue  # the stream does not exist yet
                info = next((g for g in groups if g["name"] == group.encode()), None)
                if info is None:
                    continue
                lag = int(info.get("lag") or 0)
                depth += lag + int(pending["pending"])
                if pending["pending"] and pending.get("min"):
                    stamp = _stamp(pending["min"])
                    oldest = stamp if oldest is None else min(oldest, stamp)
                if lag:
                    undelivered.append((shard, info["last-delivered-id"].decode()))
            for shard, last in undelivered:
                # The oldest entry nobody has read yet: the first one after the last delivered.
                first = await redis.xrange(stream_of(shard), min=f"({last}", count=1)
                if first:
                    stamp = _stamp(first[0][0])
                    oldest = stamp if oldest is None else min(oldest, stamp)
            self.queue_depth.labels(queue).set(depth)
            self.queue_lag.labels(queue).set(0 if oldest is None else (now_ms - oldest) / 1000)
        self.dead_letters.set(await redis.xlen(keys.dead_letters))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _stamp(entry_id: bytes | str) -> float:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return float(raw.split("-", 1)[0])
