"""Shared fixtures: a Redis (the real one at REDIS_URL, else an embedded one), the Telegram
sandbox and the real gateway app, talking over real HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import json
import os
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

# Selenium brings trio, whose Hypothesis plugin (run once, when Hypothesis is first imported)
# registers a module-level Random in a way Hypothesis 6.1xx warns about (trio/_core/_run.py,
# `_hypothesis_plugin_setup`). Harmless for these tests, but under "warnings are errors" it
# would end the run wherever Hypothesis happens to be imported first; import it here, once,
# with that one warning silenced.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="It looks like `register_random`")
    import hypothesis  # noqa: F401

from gateway.app import RUNTIME, Runtime, create_app
from gateway.pipeline.embedded_redis import EmbeddedRedis
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import Settings, load
from gateway.wiring.key_upgrade import KEY_UPGRADE

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT.parent / "shared" / "contracts"
TELEGRAM_SPEC = CONTRACTS / "telegram-bot-api.json"
TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvw"
SECRET = "test-webhook-secret_1"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis() as embedded:
        yield embedded.url


@pytest.fixture
def salon_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str, salon_id: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    # Every key carries the salon id: a test cleans up exactly what it wrote.
    keys = [key async for key in client.scan_iter(match=f"fd:{{{salon_id}}}:*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make_settings(redis_url: str, salon_id: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "salon_id": salon_id,
        "salon_name": "Studio Nord",
        "salon_timezone": "Europe/Moscow",
        "salon_address": "Tverskaya 1, Moscow",
        "salon_phone": "+7 495 123-45-67",
        "salon_hours": "Mon–Sun 10:00–21:00",
        "default_locale": "en",
        "telegram_bot_token": TOKEN,
        "telegram_webhook_secret": SECRET,
        "telegram_rate_per_chat": 1000.0,
        "telegram_burst_per_chat": 100,
        "telegram_rate_global": 10000.0,
        "stream_shards": 4,
        "lease_seconds": 2.0,
        "shutdown_grace_seconds": 2.0,
        "outbox_retry_schedule": (0.05, 0.1, 0.2),
        "log_format": "text",
    }
    values.update(overrides)
    return load(_env_file=None, **values)


@dataclass
class Sandbox:
    telegram: TelegramSandbox
    url: str


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    telegram = TelegramSandbox(TOKEN, TELEGRAM_SPEC if TELEGRAM_SPEC.exists() else None)
    server = TestServer(telegram.app())
    await server.start_server()
    yield Sandbox(telegram, str(server.make_url("")).rstrip("/"))
    await telegram.close()
    await server.close()


@dataclass
class Gateway:
    app: web.Application
    server: TestServer
    url: str
    http: ClientSession

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    async def post_update(
        self, update: dict[str, Any] | bytes, secret: str | None = SECRET
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        async with self.http.post(
            f"{self.url}/webhooks/telegram", data=io.BytesIO(body), headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(
    redis_url: str, salon_id: str, sandbox: Sandbox, redis: Redis
) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(
        clock: Callable[[], datetime] | None = None, *, keys_migrated: bool = True, **overrides: Any
    ) -> Gateway:
        settings = make_settings(redis_url, salon_id, telegram_api_url=sandbox.url, **overrides)
        app = create_app(settings, clock=clock) if clock is not None else create_app(settings)
        server = TestServer(app)
        await server.start_server()
        http = ClientSession()
        gateway = Gateway(app, server, str(server.make_url("")).rstrip("/"), http)
        started.append(gateway)
        async with http.post(
            f"{sandbox.url}/bot{TOKEN}/setWebhook",
            json={"url": f"{gateway.url}/webhooks/telegram", "secret_token": SECRET},
        ) as response:
            assert response.status == 200
        if not keys_migrated:
            return gateway  # the test follows the key migration itself
        # The workers start once the old keys are renamed (gateway/wiring/key_upgrade.py).
        await asyncio.wait_for(app[KEY_UPGRADE].done.wait(), 10)
        pool = gateway.runtime.pool
        if pool is not None:
            await asyncio.wait_for(pool.ready.wait(), 5)
        return gateway

    yield start
    for gateway in started:
        await gateway.http.close()
        await gateway.server.close()


@pytest.fixture
async def gateway(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway()


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `check()` is truthy (awaiting it if needed); fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after every test, so that a leaked connection or task warns in the test that
    leaked it rather than in whichever test the collector happens to run in later."""
    yield
    gc.collect()


# A test (setup and teardown included) that runs this long is stuck: CI must fail at once with
# the stacks that show where, rather than wait out its whole time limit in silence. 0 turns the
# watchdog off (so does --pdb, where a person may sit at the prompt).
WATCHDOG_SECONDS = float(os.environ.get("FRONTDESK_TEST_WATCHDOG_SECONDS", "180"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not 0 < WATCHDOG_SECONDS < 86_400 or item.config.getoption("usepdb", False):
        yield
        return
    # A test that starts processes may ask for more (`@pytest.mark.watchdog(seconds)`).
    marker = item.get_closest_marker("watchdog")
    seconds = max(WATCHDOG_SECONDS, float(marker.args[0])) if marker else WATCHDOG_SECONDS
    watchdog = threading.Timer(seconds, _stuck, args=(item, seconds))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def _stuck(item: pytest.Item, seconds: float) -> None:
    try:
        capture = item.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:  # the stacks must reach the terminal, not a captured buffer
            capture.suspend_global_capture(in_=False)
        out = sys.__stderr__ or sys.stderr
        print(f"\n!!! {item.nodeid} still running after {seconds:.0f} s", file=out)
        faulthandler.dump_traceback(file=out, all_threads=True)
        for task in _live_tasks():
            print(f"--- {task!r}", file=out)
            task.print_stack(file=out)
        out.flush()
    finally:
        # Interrupt the run (pytest reports and exits); if even that does not end it, end it.
        os.kill(os.getpid(), signal.SIGINT)
        fallback = threading.Timer(30, os._exit, args=(70,))
        fallback.daemon = True
        fallback.start()


def _live_tasks() -> list[asyncio.Task[Any]]:
    """Every unfinished task of every loop (read from another thread: best effort)."""
    registry = getattr(asyncio.tasks, "_all_tasks", None)  # Python 3.11
    if registry is None:  # 3.12+
        registry = getattr(asyncio.tasks, "_scheduled_tasks", ())
    for _ in range(5):  # the set can change under us: this thread is not the loop's
        try:
            return [task for task in list(registry) if not task.done()]
        except RuntimeError:
            continue
    return []
