"""The load generator: closed-loop (max throughput) and open-loop (fixed rate) webhook POSTs.

One aiohttp `ClientSession` with keep-alive and a connection cap; every update is unique.
Latency is the time to the HTTP answer, measured with `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from bench.payloads import HEADERS, Updates
from bench.stats import percentile

TIMEOUT = aiohttp.ClientTimeout(total=10)


def session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=connections, keepalive_timeout=60
    )
    return aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)


async def post(http: aiohttp.ClientSession, url: URL, body: bytes) -> int:
    """The answer's status; 0 for a connection error or a timeout."""
    try:
        async with http.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


@dataclass
class ClosedLoop:
    """What a closed-loop phase saw. Only answers inside the window count for rate/latency;
    every 200 (warm-up included) counts as acknowledged, for the lost-reply check."""

    window_start: float
    window_end: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # every answer; 0 = no answer
    acked: Counter[int] = field(default_factory=Counter)  # 200 answers per chat id
    client: str = "aiohttp"  # the load generator: this process, or wrk (bench/wrk.py)
    # wrk counts answers and gives percentiles itself, and runs in a process of its own.
    answered_count: int | None = None
    quantiles: dict[int, float] = field(default_factory=dict)
    client_cpu: float = 0.0  # CPU seconds of a load generator process other than this one

    @property
    def duration(self) -> float:
        return self.window_end - self.window_start

    @property
    def answered(self) -> int:
        """Answers inside the measured window."""
        return len(self.latencies) if self.answered_count is None else self.answered_count

    @property
    def rate(self) -> float:
        return self.answered / self.duration

    def latency(self, q: int) -> float:
        """The q-th percentile of the answer times in the window, in seconds."""
        return self.quantiles[q] if q in self.quantiles else percentile(self.latencies, q)

    @property
    def not_ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def closed_loop(
    url: str, updates: Updates, connections: int, window: tuple[float, float]
) -> ClosedLoop:
    """`connections` senders, each posting the next update as soon as the last is answered,
    from now until the end of the measured `window` (monotonic times; before it: warm-up)."""
    target = URL(url)
    result = ClosedLoop(*window)

    async def sender(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < result.window_end:
            chat, body = updates.next()
            sent = time.monotonic()
            status = await post(http, target, body)
            done = time.monotonic()
            result.statuses[status] += 1
            if status == 200:
                result.acked[chat] += 1
            if result.window_start <= done <= result.window_end:
                result.latencies.append(done - sent)

    async with session(connections) as http:
        await asyncio.gather(*(sender(http) for _ in range(connections)))
    return result


@dataclass
class OpenLoop:
    sent_at: dict[int, float]  # chat id -> the scheduled send time (one update per chat)
    latencies: list[float]  # HTTP answer times
    statuses: Counter[int]
    acked: set[int]  # chats whose update was answered 200

    @property
    def not_ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


async def open_loop(
    url: str, updates: Updates, rate: float, duration: float, connections: int
) -> OpenLoop:
    """Send at fixed intervals whatever the answers do (no coordinated omission): a send's
    time is its *scheduled* time, so a client or server falling behind shows as latency."""
    target = URL(url)
    count = round(rate * duration)
    result = OpenLoop({}, [], Counter(), set())

    async def send(http: aiohttp.ClientSession, chat: int, body: bytes, at: float) -> None:
        status = await post(http, target, body)
        result.statuses[status] += 1
        result.latencies.append(time.monotonic() - at)
        if status == 200:
            result.acked.add(chat)

    async with session(connections) as http:
        tasks: list[asyncio.Task[None]] = []
        start = time.monotonic() + 0.05
        for i in range(count):
            at = start + i / rate
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chat, body = updates.next()
            result.sent_at[chat] = at
            tasks.append(asyncio.create_task(send(http, chat, body, at)))
        await asyncio.gather(*tasks)
    return result
