"""`python -m bench fairness`: one salon's backlog does not delay another salon's replies.

One gateway process serves two salons, A (the environment's) and B (as the registry would
hand it over), each with its own Telegram stand-in. B's reply latency (a client's `/start`
until the bot's answer reaches B's stand-in) is measured twice: with both salons idle, and
right after BACKLOG updates were queued for salon A; then the time A's backlog took. Each
salon has its own worker pool and its own Redis pool; what B shares with A's backlog is the
event loop and the process's handling and sending slots (gateway/pipeline/fair_slots.py). The
stand-ins run in processes of their own unless `apart` is off (the flow test). The last line
is the summary:

    fairness: b_ms_idle=<median> b_ms_backlog=<median> b_ms_backlog_max=<max> \
a_answered_meanwhile=<n of backlog> a_drain_s=<s>
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bench.procs import BenchError, Child
from gateway.app import RUNTIME, SERVED, create_app
from gateway.pipeline.embedded_redis import EmbeddedRedis
from gateway.salons import Salon
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import Settings, load
from gateway.wiring.key_upgrade import KEY_UPGRADE
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
    # Seconds from queueing A's backlog until its last reply (None: not waited for).
    drain_s: float | None = None

    def summary(self) -> str:
        return (
            f"fairness: b_ms_idle={statistics.median(self.idle_ms):.1f} "
            f"b_ms_backlog={statistics.median(self.backlog_ms):.1f} "
            f"b_ms_backlog_max={max(self.backlog_ms):.1f} "
            f"a_answered_meanwhile={self.answered_meanwhile} of {self.backlog}"
            + ("" if self.drain_s is None else f" a_drain_s={self.drain_s:.1f}")
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


class StandIn(Protocol):
    """A Telegram Bot API stand-in for one bot, as the bench drives and reads it."""

    url: str

    async def say(self, chat_id: int, text: str) -> None: ...

    async def calls(self, after: int) -> tuple[int, list[tuple[str, int, float]]]:
        """(the number of calls so far, the calls after the first `after`: method, chat id,
        when it arrived by `time.monotonic()`); an `after` past the end gives no calls."""
        ...


class InProcess:
    """The stand-in on the gateway's own event loop (what the flow test uses: no
    subprocess). Its work for A's backlog is then charged to B's figure too."""

    def __init__(self, telegram: TelegramSandbox, url: str) -> None:
        self.telegram = telegram
        self.url = url

    async def say(self, chat_id: int, text: str) -> None:
        await self.telegram.client_says(chat_id, text)

    async def calls(self, after: int) -> tuple[int, list[tuple[str, int, float]]]:
        after = min(after, len(self.telegram.sent))
        sent = self.telegram.sent[after:]
        found = [(c.method, int(c.params.get("chat_id") or 0), c.at) for c in sent]
        return after + len(sent), found


class Apart:
    """The stand-in in a process of its own (`python -m bench.servers sandbox`), read over
    HTTP: what A's stand-in does for A's backlog is not charged to the gateway's loop."""

    def __init__(self, child: Child, http: ClientSession) -> None:
        self.child = child
        self.http = http
        self.url = child.url

    async def say(self, chat_id: int, text: str) -> None:
        async with self.http.post(
            f"{self.url}/_sandbox/say", json={"chat_id": chat_id, "text": text}
        ) as response:
            if response.status != 200:
                raise BenchError(f"the stand-in refused a client's message: {response.status}")

    async def calls(self, after: int) -> tuple[int, list[tuple[str, int, float]]]:
        async with self.http.get(f"{self.url}/_bench/calls", params={"after": after}) as answer:
            body = await answer.json()
        # SentCall.at is time.monotonic() of the stand-in's process: CLOCK_MONOTONIC is
        # system-wide on Linux, so it compares with this process's clock.
        found = [(str(c[0]), int(c[1] or 0), float(c[2])) for c in body["calls"]]
        return int(body["next"]), found


@asynccontextmanager
async def _in_process(token: str) -> AsyncIterator[StandIn]:
    telegram = TelegramSandbox(token, None)
    server = TestServer(telegram.app())
    await server.start_server()
    try:
        yield InProcess(telegram, str(server.make_url("")).rstrip("/"))
    finally:
        await telegram.close()
        await server.close()


@asynccontextmanager
async def _apart(token: str, name: str, http: ClientSession) -> AsyncIterator[StandIn]:
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as logs:
        child = Child(name, ["sandbox", "--token", token], Path(logs))
        try:
            # The Bot API's getMe answers once the stand-in is up.
            await child.wait_ready(http, [f"/bot{token}/getMe"], within=60)
            yield Apart(child, http)
        finally:
            await child.stop()


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


async def _reply_ms(stand_in: StandIn, chat_id: int) -> float:
    """From a client's `/start` to the bot's first message in that chat at the stand-in."""
    seen, _ = await stand_in.calls(1 << 62)
    started = time.monotonic()
    await stand_in.say(chat_id, "/start")
    while True:
        seen, calls = await stand_in.calls(seen)
        for method, chat, at in calls:
            if method == "sendMessage" and chat == chat_id:
                return (at - started) * 1000
        # Polled: the stand-in offers no hook for "a message was sent". The figure is the
        # stand-in's own arrival time, so the polling interval does not add to it.
        await asyncio.sleep(0.005)


async def _drained(stand_in: StandIn, total: int, since: float, within: float = 600) -> float:
    """Seconds from `since` until the stand-in has `total` calls (the last of A's replies)."""
    while True:
        count, _ = await stand_in.calls(1 << 62)
        if count >= total:
            return time.monotonic() - since
        if time.monotonic() - since > within:
            raise BenchError(f"A's backlog not answered within {within:.0f}s: {count} of {total}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def _stand_ins(apart: bool) -> AsyncIterator[tuple[StandIn, StandIn]]:
    async with ClientSession() as http:
        if apart:
            async with (
                _apart(TOKEN_A, "telegram-a", http) as a,
                _apart(TOKEN_B, "telegram-b", http) as b,
            ):
                yield a, b
        else:
            async with _in_process(TOKEN_A) as a, _in_process(TOKEN_B) as b:
                yield a, b


async def measure(
    redis_url: str,
    backlog: int = BACKLOG,
    samples: int = 5,
    *,
    apart: bool = False,
    drain: bool = False,
) -> Figures:
    """B's reply latencies idle and behind A's backlog; `apart`: the Telegram stand-ins run in
    processes of their own (the bench), else on the gateway's loop (the flow test); `drain`:
    then how long A's whole backlog took (what fewer slots in flight would cost A)."""
    run = uuid.uuid4().hex[:8]
    a_id, b_id = f"fair-a-{run}", f"fair-b-{run}"
    async with _stand_ins(apart) as (tg_a, tg_b):
        app = create_app(_settings_a(redis_url, a_id, tg_a.url))
        server = TestServer(app)
        await server.start_server()
        # The workers start after the key migration (gateway/wiring/key_upgrade.py).
        await asyncio.wait_for(app[KEY_UPGRADE].done.wait(), 30)
        served = app[SERVED]
        try:
            gateway = str(server.make_url("")).rstrip("/")
            await served.apply({b_id: _salon_b(b_id, tg_b.url)}, frozenset({b_id}))
            for salon_id in (a_id, b_id):
                pool = served.live[salon_id].runtime.pool
                assert pool is not None
                await asyncio.wait_for(pool.ready.wait(), 30)
            async with ClientSession() as http:
                for token, url, salon_id in ((TOKEN_B, tg_b.url, b_id), (TOKEN_A, tg_a.url, a_id)):
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
            answered_before, _ = await tg_a.calls(1 << 62)
            queued = time.monotonic()
            await asyncio.gather(*(app[RUNTIME].inbox.put(event) for event in events))
            busy = [await _reply_ms(tg_b, 910_000 + i) for i in range(samples)]
            answered, _ = await tg_a.calls(1 << 62)
            drain_s = await _drained(tg_a, answered_before + backlog, queued) if drain else None
            return Figures(idle, busy, backlog, answered - answered_before, drain_s)
        finally:
            # B came from `apply`, not from a registry watcher: stopped here, before its keys go.
            await served.stop_registry_salons()
            await server.close()
            redis = Redis.from_url(redis_url)
            for salon_id in (a_id, b_id):
                keys = [key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}:*")]
                if keys:
                    await redis.delete(*keys)
            await redis.aclose()


def _settings_a(redis_url: str, salon_id: str, api_url: str) -> Settings:
    return load(
        _env_file=None,
        redis_url=redis_url,
        salon_id=salon_id,
        salon_name="Studio A",
        default_locale="en",
        telegram_bot_token=TOKEN_A,
        telegram_webhook_secret=SECRET,
        telegram_api_url=api_url,
        telegram_rate_per_chat=1000.0,
        telegram_burst_per_chat=100,
        telegram_rate_global=100000.0,
        log_level="ERROR",
    )


def main(redis_url: str | None, backlog: int, samples: int, apart: bool = True) -> int:
    if redis_url is not None:
        figures = asyncio.run(measure(redis_url, backlog, samples, apart=apart, drain=True))
    else:
        with EmbeddedRedis() as embedded:
            figures = asyncio.run(measure(embedded.url, backlog, samples, apart=apart, drain=True))
    print(figures.summary())
    return 0
