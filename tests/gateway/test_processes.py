"""Process-level guarantees: a worker killed with SIGKILL loses nothing and duplicates nothing;
two replicas on one Redis share the work; the bot token never reaches the logs; a handled entry
leaves the queue, an unhandled one stays pending for whoever takes over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession
from redis.asyncio import Redis

from gateway.pipeline.embedded_redis import free_port
from gateway.pipeline.keys import INBOUND_GROUP, OUTBOUND_GROUP, Keys
from tests.conftest import ROOT, SECRET, TOKEN, Sandbox, eventually
from tests.gateway.pipeline.test_edge import update

# A loaded machine (the whole suite under coverage, other work beside it) takes a minute or more
# to start a gateway process: each imports aiogram, pydantic and the app afresh, measured at
# 19.98 s wall for 4.1 s of CPU to import gateway.app at a load average of 11 on two cores, and
# two processes start at once. The waits below are bounds for a stuck process, not for a slow
# one; the watchdog leaves them room.
STARTUP_SECONDS = 240.0
# On each test, so that it travels with the test into the cluster suite.
roomy = pytest.mark.watchdog(STARTUP_SECONDS + 180)
pytestmark = pytest.mark.slow


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    async def ready(
        self, http: ClientSession, timeout: float = STARTUP_SECONDS
    ) -> dict[str, object]:
        async def probe() -> dict[str, object] | None:
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited: {self.log.read_text()[-2000:]}")
            try:
                async with http.get(f"{self.url}/readyz") as response:
                    body: dict[str, object] = await response.json()
                    return body if response.status == 200 and body.get("shards") else None
            except ClientError:
                return None

        result: dict[str, object] = await eventually(probe, timeout=timeout, interval=0.2)
        return result

    async def post(self, http: ClientSession, body: dict[str, object]) -> int:
        async with http.post(
            f"{self.url}/webhooks/telegram",
            json=body,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as response:
            return response.status

    async def metric(self, http: ClientSession, line_start: str) -> float:
        async with http.get(f"{self.url}/metrics") as response:
            text = await response.text()
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_start)
        ]
        return sum(values)


Spawn = Callable[..., Process]


@pytest.fixture
async def spawn(
    redis_url: str, salon_id: str, sandbox: Sandbox, tmp_path: Path, redis: object
) -> AsyncIterator[Spawn]:
    processes: list[Process] = []

    def start(**extra: str) -> Process:
        port = free_port()
        log = tmp_path / f"gateway-{port}.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SALON_"))},
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": redis_url,
            "SALON_ID": salon_id,
            "SALON_NAME": "Studio Nord",
            "SALON_PHONE": "+7 495 123-45-67",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": sandbox.url,
            "TELEGRAM_RATE_PER_CHAT": "1000",
            "TELEGRAM_BURST_PER_CHAT": "100",
            "TELEGRAM_RATE_GLOBAL": "10000",
            "STREAM_SHARDS": "4",
            "LEASE_SECONDS": "1.5",
            "SHUTDOWN_GRACE_SECONDS": "2",
            "OUTBOX_RETRY_SCHEDULE": "[0.1, 0.2, 0.4]",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            **extra,
        }
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.serve",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=tmp_path,  # no stray .env is read
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        process = Process(popen, f"http://127.0.0.1:{port}", log)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
            try:
                process.popen.wait(10)
            except subprocess.TimeoutExpired:
                process.popen.kill()
        # Whatever happened, the token never reached a log line.
        logged = process.log.read_text()
        assert TOKEN not in logged
        assert TOKEN.split(":", 1)[1] not in logged
        # Nor the client's name or chat id (DEBUG logs, raw updates and all).
        assert "Anna" not in logged
        assert "424242424" not in logged


async def queued(redis: Redis, salon_id: str, group: str, stream: str) -> tuple[int, int]:
    """(entries in the shards' streams, entries pending in the group) over all four shards."""
    keys = Keys(salon_id, 4)
    streams = [getattr(keys, stream)(shard) for shard in range(4)]
    lengths = [await redis.xlen(name) for name in streams]
    pending = [
        (await redis.xpending(name, group))["pending"] if length else 0
        for name, length in zip(streams, lengths, strict=True)
    ]
    return sum(lengths), sum(pending)


@roomy
async def test_sigkill_mid_handling_then_restart_gives_exactly_one_reply(
    spawn: Spawn, sandbox: Sandbox, tmp_path: Path, redis: Redis, salon_id: str
) -> None:
    marker = tmp_path / "handling"
    first = spawn(FRONTDESK_TEST_SLOW_SECONDS="60", FRONTDESK_TEST_MARKER=str(marker))
    async with ClientSession() as http:
        await first.ready(http)
        assert await first.post(http, update(1, chat_id=424242424)) == 200
        await eventually(marker.exists, timeout=20)
        first.popen.kill()  # SIGKILL: no cleanup, the lease and the entry stay as they were
        first.popen.wait(10)
        assert sandbox.telegram.messages_for(424242424) == []
        # Read, not committed: the entry stays, pending, for the next holder to reclaim.
        assert await queued(redis, salon_id, INBOUND_GROUP, "inbound") == (1, 1)

        second = spawn()
        await second.ready(http)
        await eventually(lambda: sandbox.telegram.messages_for(424242424), timeout=20)
        await asyncio.sleep(1.0)
        replies = sandbox.telegram.messages_for(424242424)
        assert len(replies) == 1
        assert replies[0]["text"].startswith("Hello, Anna!")
        # Handled and sent: the client's message and the reply are gone from Redis's queues.
        assert await queued(redis, salon_id, INBOUND_GROUP, "inbound") == (0, 0)
        assert await queued(redis, salon_id, OUTBOUND_GROUP, "outbound") == (0, 0)


@roomy
async def test_two_replicas_share_the_work_and_handle_nothing_twice(
    spawn: Spawn, sandbox: Sandbox, redis: Redis, salon_id: str
) -> None:
    # The Bot API fails once: error paths get logged too, and must not leak the token.
    sandbox.telegram.fail_next("sendMessage", error_code=500, description="Internal Server Error")
    # The shipped lease (15 s), not the 1.5 s of the tests that kill a process: nobody dies
    # here, and a process starved of CPU for 1.5 s on a loaded machine would lose its shards
    # to the other mid-test (then one replica may handle everything, and a message sent just
    # before the loss is sent again by the successor: at least once is what a lease promises).
    one, two = spawn(LEASE_SECONDS="15"), spawn(LEASE_SECONDS="15")
    async with ClientSession() as http:
        await one.ready(http)
        await two.ready(http)

        async def split() -> bool:
            a = (await one.ready(http))["shards"]
            b = (await two.ready(http))["shards"]
            assert isinstance(a, list)
            assert isinstance(b, list)
            return bool(a) and bool(b) and sorted(a + b) == [0, 1, 2, 3]

        # The first to start holds every shard until the other joins and it gives two back
        # (at its next renewal, every 5 s).
        await eventually(split, timeout=60, interval=0.3)
        chats = range(9000, 9040)
        for round_ in range(2):
            statuses = await asyncio.gather(
                *(
                    (one if chat % 2 else two).post(http, update(chat * 10 + round_, chat_id=chat))
                    for chat in chats
                )
            )
            assert set(statuses) == {200}

        def answered() -> bool:
            return all(len(sandbox.telegram.messages_for(chat)) >= 2 for chat in chats)

        await eventually(answered, timeout=120, interval=0.2)

        # Then both queues empty, nothing pending: whatever is sent has been sent, so a reply
        # sent twice would show now (no sleep that a slow machine outlasts).
        async def drained() -> bool:
            inbound = await queued(redis, salon_id, INBOUND_GROUP, "inbound")
            outbound = await queued(redis, salon_id, OUTBOUND_GROUP, "outbound")
            return inbound == outbound == (0, 0)

        await eventually(drained, timeout=60, interval=0.2)
        assert all(len(sandbox.telegram.messages_for(chat)) == 2 for chat in chats)
        handled = [
            await p.metric(http, 'frontdesk_handled_total{result="ok",source="telegram"}')
            for p in (one, two)
        ]
        assert all(n > 0 for n in handled), handled
        assert sum(handled) == 80


@roomy
async def test_sigterm_lets_in_flight_work_finish_and_deliver(
    spawn: Spawn, sandbox: Sandbox, tmp_path: Path
) -> None:
    marker = tmp_path / "handling"
    process = spawn(FRONTDESK_TEST_SLOW_SECONDS="1", FRONTDESK_TEST_MARKER=str(marker))
    async with ClientSession() as http:
        await process.ready(http)
        assert await process.post(http, update(1, chat_id=5151)) == 200
        await eventually(marker.exists, timeout=20)
        process.popen.terminate()
        assert await asyncio.to_thread(process.popen.wait, 15) == 0
    # The update being handled when the signal came was finished and its reply sent.
    assert len(sandbox.telegram.messages_for(5151)) == 1
