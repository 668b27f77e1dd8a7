"""`python -m bench hostile`: what forged and slow traffic costs the gateway's edge.

Starts the real gateway (`python -m bench.servers gateway --every-route --no-workers`: all five
webhook routes on, RUN_WORKERS off, as `frontdesk serve` runs) and Redis as `bench ingest`
does, then:

1. Flood: `--requests` (300) concurrent forged POSTs of `--size` (2.9 MB) at the WhatsApp,
   Chatwoot, Cal.com and Novu routes (signatures of the right shape that do not match, so only
   the body could tell), half with a Content-Length, half chunked; meanwhile valid Telegram
   updates. The gateway's RSS (VmRSS) is sampled every 20 ms: before, peak, after.
2. Slowloris: `--slow` (200) connections that each send a request head one byte a second; how
   many the gateway closed within KEEPALIVE_SECONDS (+1 s).

The last line is stable, for scripts:

    hostile: rss_before_mb=.. rss_peak_mb=.. growth_mb=.. statuses=.. telegram_ok=n/m
             slow_closed=n/m within_s=..
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bench.payloads import HEADERS
from bench.procs import BenchError, Child, RedisServer

# The gateway's settings for every route: the bench's own secrets, APIs nobody calls.
EVERY_ROUTE: dict[str, Any] = {
    "whatsapp_access_token": "bench-wa-token",
    "whatsapp_app_secret": "bench-wa-app-secret",
    "whatsapp_phone_number_id": "1234567890",
    "whatsapp_verify_token": "bench-wa-verify",
    "chatwoot_url": "http://127.0.0.1:9",
    "chatwoot_account_id": 1,
    "chatwoot_api_token": "bench-cw-token",
    "chatwoot_telegram_inbox_id": 1,
    "chatwoot_webhook_secret": "bench-cw-secret",
    "calcom_api_url": "http://127.0.0.1:9/v2",
    "calcom_api_key": "cal_bench_key",
    "calcom_webhook_secret": "bench-cal-secret",
    "novu_api_url": "http://127.0.0.1:9",
    "novu_api_key": "bench-novu-key",
    "novu_webhook_secret": "bench-novu-secret",
}
# What a forger sends: headers of the right shape whose signatures match nothing.
_WRONG = "0" * 64
FORGED = {
    "whatsapp": {"X-Hub-Signature-256": "sha256=" + _WRONG},
    "chatwoot": {"X-Chatwoot-Timestamp": "1", "X-Chatwoot-Signature": "sha256=" + _WRONG},
    "calcom": {"X-Cal-Signature-256": _WRONG},
    "novu": {"Novu-Signature": "t=1,v1=" + _WRONG},
}
KEEPALIVE_DEFAULT = 15.0  # the gateway's KEEPALIVE_SECONDS default (gateway/settings.py)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS in /proc")


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _forged(
    http: aiohttp.ClientSession, url: str, route: str, body: bytes, chunked: bool
) -> str:
    headers = {"Content-Type": "application/json", **FORGED[route]}
    data: Any = _chunks(body) if chunked else body
    try:
        async with http.post(f"{url}/webhooks/{route}", data=data, headers=headers) as response:
            await response.read()
            return str(response.status)
    except (aiohttp.ClientError, OSError):
        return "closed"  # refused and closed while the body was still going out


async def _telegram(http: aiohttp.ClientSession, url: str, n: int) -> bool:
    body = (
        b'{"update_id":%d,"message":{"message_id":1,"date":1,"chat":{"id":%d,"type":"private"},"text":"hi"}}'
        % (
            n,
            n,
        )
    )
    try:
        async with http.post(f"{url}/webhooks/telegram", data=body, headers=HEADERS) as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError):
        return False


async def flood(url: str, pid: int, requests: int, size: int, routes: list[str]) -> dict[str, Any]:
    body = b"{" + b" " * (size - 2) + b"}"
    before = rss_mb(pid)
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.monotonic()
        forged = [
            _forged(http, url, routes[i % len(routes)], body, chunked=i % 2 == 1)
            for i in range(requests)
        ]
        valid = [_telegram(http, url, 10_000 + i) for i in range(50)]
        results = await asyncio.gather(*forged, *valid)
        took = time.monotonic() - started
    done.set()
    await sampler
    await asyncio.sleep(1.0)
    after = rss_mb(pid)
    statuses = collections.Counter(str(r) for r in results[:requests])
    return {
        "before": before,
        "peak": peak,
        "after": after,
        "statuses": dict(sorted(statuses.items())),
        "telegram_ok": sum(1 for ok in results[requests:] if ok),
        "telegram_sent": len(valid),
        "seconds": took,
    }


async def slowloris(port: int, connections: int, bound: float) -> tuple[int, float]:
    """How many slow heads were closed within `bound` seconds, and the last close time."""
    closed_at: list[float] = []
    started = time.monotonic()

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.write(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: gateway\r\n")

        async def dribble() -> None:
            with contextlib.suppress(OSError):
                for byte in b"X-Slow: " + b"a" * 1000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)

        dribbling = asyncio.create_task(dribble())
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(bound + 5):
                while await reader.read(1024):
                    pass
                closed_at.append(time.monotonic() - started)
        dribbling.cancel()
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    within = [at for at in closed_at if at <= bound + 1.0]
    return len(within), max(closed_at, default=0.0)


async def run(requests: int, size: int, slow: int, redis_url: str | None, routes: list[str]) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    redis = RedisServer(-1, log_dir) if redis_url is None else None
    url_of_redis = redis.url if redis is not None else str(redis_url)
    salon = f"bench-{secrets.token_hex(4)}"
    gateway: Child | None = None
    try:
        if redis is not None:
            await redis.wait_ready()
        gateway = Child(
            "gateway",
            [
                "gateway",
                "--redis-url",
                url_of_redis,
                "--salon-id",
                salon,
                "--api-url",
                "http://127.0.0.1:9",
                "--no-workers",
                "--every-route",
            ],
            log_dir,
        )
        async with aiohttp.ClientSession() as http:
            await gateway.wait_ready(http, ["/healthz"], within=60)
        await asyncio.sleep(1.0)
        print(
            f"flood: {requests} forged POSTs of {size / 1e6:.1f} MB at {', '.join(routes)}, "
            "50 Telegram updates"
        )
        measured = await flood(gateway.url, gateway.pid, requests, size, routes)
        growth = measured["peak"] - measured["before"]
        print(
            f"  RSS before {measured['before']:.0f} MB, peak {measured['peak']:.0f} MB "
            f"(+{growth:.0f}), after {measured['after']:.0f} MB; {measured['seconds']:.1f} s"
        )
        print(f"  forged answers: {measured['statuses']}")
        ok, sent = measured["telegram_ok"], measured["telegram_sent"]
        print(f"  Telegram updates answered 200: {ok}/{sent}")
        bound = KEEPALIVE_DEFAULT
        print(f"slowloris: {slow} connections, a head byte a second (bound {bound:.0f} s)")
        closed, last = await slowloris(gateway.port, slow, bound)
        print(f"  closed within {bound + 1:.0f} s: {closed}/{slow} (last at {last:.1f} s)")
        print(
            f"hostile: rss_before_mb={measured['before']:.0f} rss_peak_mb={measured['peak']:.0f} "
            f"growth_mb={growth:.0f} statuses={measured['statuses']} "
            f"telegram_ok={measured['telegram_ok']}/{measured['telegram_sent']} "
            f"slow_closed={closed}/{slow} within_s={bound + 1:.0f}"
        )
        return 0
    finally:
        if gateway is not None:
            await gateway.stop()
        if redis is not None:
            await redis.stop()
        else:
            await _delete_keys(url_of_redis, salon)


async def _delete_keys(url: str, salon: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"fd:{{{salon}}}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main(requests: int, size: int, slow: int, redis_url: str | None, routes: list[str]) -> int:
    try:
        return asyncio.run(run(requests, size, slow, redis_url, routes))
    except BenchError as exc:
        print(f"bench: {exc}")
        return 2
