"""`python -m bench fairness`: one salon's backlog does not delay another salon's replies.

One gateway process serves two salons, A (the environment's) and B (as the registry would
hand it over), each with its own Telegram stand-in. B's reply latency (a client's `/start`
until the bot's answer reaches B's stand-in) is measured twice: with both salons idle, and
right after BACKLOG updates were queued for salon A. Each salon has its own worker pool, its
own handling and sending slots and its own Redis pool, so A's backlog takes A's slots only;
what B shares with it is the event loop. The last line is the summary:

    fairness: b_ms_idle=<median> b_ms_backlog=<median> b_ms_backlog_max=<max> \
a_answered_meanwhile=<n of backlog>
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import RUNTIME, SERVED, create_app
from gateway.pipeline.embedded_redis import EmbeddedRedis
from gateway.salons import Salon
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import load
from gateway.wiring.routes import webhook_url
from handlers.telegram import TelegramWebhook

TOKEN_A = "111111:BENCH-token-aaaaaaaaaaaaaaaaaaaaaaaa"
TOKEN_B = "222222:BENCH-token-bbbbbbbbbbbbbbbbbbbbbbbb"
SECRET = "bench-fairness-secret"
BACKLOG = 5000


@dataclass(frozen=True)
class Figures:
    idle_ms: list[float]  # B's reply latencies with both salons idle
    backlog_ms: list[float]  # B's reply latencies right after A's backlog was queued
    backlog: int
    # How many of A's backlog had been answered when B's last reply came.
    answered_meanwhile: int

    def summary(self) -> str:
        return (
            f"fairness: b_ms_idle={statistics.median(self.idle_ms):.1f} "
            f"b_ms_backlog={statistics.median(self.backlog_ms):.1f} "
            f"b_ms_backlog_max={max(self.backlog_ms):.1f} "
            f"a_answered_meanwhile={self.answered_meanwhile} of {self.backlog}"
        )


def _update(update_id: int, chat_id: int, text: str) -> bytes:
    user = {"id": chat_id, "is_bot": False, "first_name": "Client", "language_code": "en"}
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Client"},
        "from": user,
        "text": text,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


@asynccontextmanager
async def _sandbox(token: str) -> AsyncIterator[tuple[TelegramSandbox, str]]:
    telegram = TelegramSandbox(token, None)
    server = TestServer(telegram.app())
    await server.start_server()
    try:
        yield telegram, str(server.make_url("")).rstrip("/")
    finally:
        await telegram.close()
        await server.close()


def _salon_b(salon_id: str, api_url: str) -> Salon:
    """Salon B as the registry hands it to a gateway (no PostgreSQL needed for the figure)."""
    now = datetime.now(UTC)
    values = {
        "SALON_NAME": "Studio B",
        "DEFAULT_LOCALE": "en",
        "TELEGRAM_BOT_TOKEN": TOKEN_B,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": api_url,
        "TELEGRAM_RATE_PER_CHAT": "1000",
        "TELEGRAM_BURST_PER_CHAT": "100",
        "TELEGRAM_RATE_GLOBAL": "100000",
    }
    return Salon(salon_id, True, 1, now, now, values, frozenset())


async def _reply_ms(telegram: TelegramSandbox, chat_id: int) -> float:
    before = len(telegram.messages_for(chat_id))
    started = time.monotonic()
    await telegram.client_says(chat_id, "/start")
    # Polled: the stand-in offers no hook for "a message was sent" (2 ms is well below the
    # figures measured).
    while len(telegram.messages_for(chat_id)) == before:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    return (time.monotonic() - started) * 1000


async def measure(redis_url: str, backlog: int = BACKLOG, samples: int = 5) -> Figures:
    run = uuid.uuid4().hex[:8]
    a_id, b_id = f"fair-a-{run}", f"fair-b-{run}"
    async with _sandbox(TOKEN_A) as (tg_a, url_a), _sandbox(TOKEN_B) as (tg_b, url_b):
        settings = load(
            _env_file=None,
            redis_url=redis_url,
            salon_id=a_id,
            salon_name="Studio A",
            default_locale="en",
            telegram_bot_token=TOKEN_A,
            telegram_webhook_secret=SECRET,
            telegram_api_url=url_a,
            telegram_rate_per_chat=1000.0,
            telegram_burst_per_chat=100,
            telegram_rate_global=100000.0,
            log_level="ERROR",
        )
        app = create_app(settings)
        server = TestServer(app)
        await server.start_server()
        try:
            gateway = str(server.make_url("")).rstrip("/")
            served = app[SERVED]
            await served.apply({b_id: _salon_b(b_id, url_b)}, frozenset({b_id}))
            for salon_id in (a_id, b_id):
                pool = served.live[salon_id].runtime.pool
                assert pool is not None
                await asyncio.wait_for(pool.ready.wait(), 30)
            async with ClientSession() as http:
                for token, url, salon_id in ((TOKEN_B, url_b, b_id), (TOKEN_A, url_a, a_id)):
                    await http.post(
                        f"{url}/bot{token}/setWebhook",
                        json={
                            "url": webhook_url(gateway, "telegram", salon_id),
                            "secret_token": SECRET,
                        },
                    )
            idle = [await _reply_ms(tg_b, 900_000 + i) for i in range(samples)]
            edge = TelegramWebhook(SECRET)
            events = [
                event
                for i in range(backlog)
                for event in edge.parse({}, _update(10_000 + i, 1_000 + i % 500, "/start"))
            ]
            answered_before = len(tg_a.sent)
            await asyncio.gather(*(app[RUNTIME].inbox.put(event) for event in events))
            busy = [await _reply_ms(tg_b, 910_000 + i) for i in range(samples)]
            answered = len(tg_a.sent) - answered_before
            return Figures(idle, busy, backlog, answered)
        finally:
            await server.close()
            redis = Redis.from_url(redis_url)
            for salon_id in (a_id, b_id):
                keys = [key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}:*")]
                if keys:
                    await redis.delete(*keys)
            await redis.aclose()


def main(redis_url: str | None, backlog: int, samples: int) -> int:
    if redis_url is not None:
        figures = asyncio.run(measure(redis_url, backlog, samples))
    else:
        with EmbeddedRedis() as embedded:
            figures = asyncio.run(measure(embedded.url, backlog, samples))
    print(figures.summary())
    return 0
