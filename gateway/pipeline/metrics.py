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

from gateway.pipeline.keys import INBOUND_GROUP, OUTBOUND_GROUP, Keys
from gateway.pipeline.lua import Lua
from gateway.pipeline.resilience import State

# Per stream: entries not read yet, entries read but not finished, and the time (ms) of the
# oldest of either. One round trip, and no error replies (a stream or group may not exist yet).
_QUEUE_STATS = """
local out = {}
for i, key in ipairs(KEYS) do
  local unread, pending, first = 0, 0, nil
  if redis.call('EXISTS', key) == 1 then
    local last = nil
    local groups = redis.pcall('XINFO', 'GROUPS', key)
    if type(groups) == 'table' and not groups.err then
      for _, g in ipairs(groups) do
        local info = {}
        for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
        if info['name'] == ARGV[1] then
          last = info['last-delivered-id']
          pending = tonumber(info['pending'])
        end
      end
    end
    if last then
      if pending > 0 then first = redis.call('XPENDING', key, ARGV[1])[2] end
      local rest = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 10000)
      unread = #rest
      if unread > 0 and not first then first = rest[1][1] end
    else
      unread = redis.call('XLEN', key)
      local head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
      if head[1] then first = head[1][1] end
    end
  end
  local oldest = 0
  if first then oldest = tonumber(string.match(first, '^(%d+)')) end
  out[i] = {unread, pending, oldest}
end
return out
"""

# The `*_created` series double the output and say nothing an operator needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    # One long constructor on purpose: it is the table of every metric the gateway exports, one
    # declaration each, read top to bottom like `/metrics` itself. Split into steps, the table
    # would be scattered and mypy would lose the typed attribute of each metric.
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
        self.events_dropped = Counter(
            "frontdesk_events_dropped",
            "Authenticated events acknowledged but never handled: one bad event of a batch, "
            "or an entry that can never be read (by source and reason)",
            ["source", "reason"],
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
        self.whatsapp_statuses = Counter(
            "frontdesk_whatsapp_statuses",
            "Delivery statuses WhatsApp reported for our messages (sent, delivered, read, failed)",
            ["status"],
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
        self.analytics_backlog = Gauge(
            "frontdesk_analytics_backlog",
            "Analytics facts waiting in Redis for PostgreSQL (bounded at about a million)",
            registry=r,
        )
        self.analytics_written = Counter(
            "frontdesk_analytics_written", "Analytics facts written to PostgreSQL", registry=r
        )
        self.analytics_dropped = Counter(
            "frontdesk_analytics_dropped",
            "Analytics facts lost: trimmed at the backlog's cap, or unreadable",
            registry=r,
        )
        self.analytics_failures = Counter(
            "frontdesk_analytics_write_failures",
            "Failed attempts to write a batch of facts (PostgreSQL down or refusing)",
            registry=r,
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
        """Queue depth and lag, read from Redis in the background (not per scrape: see app.py)."""
        now_ms = time.time() * 1000
        for queue, stream_of, group in (
            ("inbound", keys.inbound, INBOUND_GROUP),
            ("outbound", keys.outbound, OUTBOUND_GROUP),
        ):
            streams = [stream_of(shard) for shard in range(keys.shards)]
            stats = await Lua(redis, _QUEUE_STATS)(keys=streams, args=[group])
            depth = sum(int(unread) + int(pending) for unread, pending, _ in stats)
            stamps = [int(oldest) for _, _, oldest in stats if int(oldest)]
            self.queue_depth.labels(queue).set(depth)
            self.queue_lag.labels(queue).set((now_ms - min(stamps)) / 1000 if stamps else 0)
        self.dead_letters.set(await redis.xlen(keys.dead_letters))
        self.analytics_backlog.set(await redis.xlen(keys.analytics))

    def render(self) -> bytes:
        return generate_latest(self.registry)
