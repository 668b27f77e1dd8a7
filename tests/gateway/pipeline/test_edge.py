"""The Telegram webhook edge: authenticated, size-limited, de-duplicated, durable or 503."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from aiohttp import ClientSession, StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.pipeline import edge
from gateway.pipeline.edge import read_body
from gateway.pipeline.embedded_redis import free_port
from tests.conftest import (
    SECRET,
    Gateway,
    GatewayFactory,
    Sandbox,
    eventually,
    make_settings,
)


def update(update_id: int, chat_id: int = 700, text: str = "/start") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 1_790_000_000,
        "chat": {"id": chat_id, "type": "private", "first_name": "Anna"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Anna", "language_code": "en"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


async def queued(redis: Redis, gateway: Gateway) -> int:
    keys = gateway.runtime.keys
    return sum([await redis.xlen(keys.inbound(shard)) for shard in range(keys.shards)])


async def test_forged_and_missing_secret_are_refused_and_nothing_is_queued(
    gateway: Gateway, sandbox: Sandbox, redis: Redis
) -> None:
    assert await gateway.post_update(update(1), secret="wrong-secret") == (
        401,
        {"error": "unauthorized"},
    )
    assert (await gateway.post_update(update(2), secret=None))[0] == 401
    # A prefix of the right secret is still wrong.
    assert (await gateway.post_update(update(3), secret=SECRET[:-1]))[0] == 401
    await asyncio.sleep(0.3)
    assert await queued(redis, gateway) == 0
    assert sandbox.telegram.messages_for(700) == []


async def test_the_same_update_twice_gets_one_reply(gateway: Gateway, sandbox: Sandbox) -> None:
    assert await gateway.post_update(update(10)) == (200, {})
    assert await gateway.post_update(update(10)) == (200, {})
    await eventually(lambda: sandbox.telegram.messages_for(700))
    await asyncio.sleep(0.3)  # time enough for a second reply, were there one
    assert len(sandbox.telegram.messages_for(700)) == 1


async def test_malformed_bodies_are_400(gateway: Gateway, redis: Redis) -> None:
    for body in (
        b"{not json",
        b"[1, 2]",
        b'{"message": {}}',
        b'{"update_id": "7"}',
        b"\xff\xfe",
        b'{"update_id": NaN}',
        b'{"update_id": 123456789012345678901234567890}',  # beyond 64 bits
    ):
        status, answer = await gateway.post_update(body)
        assert status == 400, body
        assert answer["error"].startswith("malformed")
    assert await queued(redis, gateway) == 0


async def test_oversized_bodies_are_413(gateway: Gateway) -> None:
    big = json.dumps({**update(20), "padding": "x" * (1024 * 1024)}).encode()
    assert (await gateway.post_update(big))[0] == 413

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(17):
            yield b" " * (64 * 1024)

    async with gateway.http.post(
        f"{gateway.url}/webhooks/telegram",
        data=chunks(),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    ) as response:
        assert response.status == 413


async def test_redis_unreachable_is_503_never_200(salon_id: str) -> None:
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", salon_id, run_workers=False)
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        async with ClientSession() as http:
            async with http.post(
                str(server.make_url("/webhooks/telegram")),
                json=update(30),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as response:
                assert response.status == 503
            async with http.get(str(server.make_url("/readyz"))) as response:
                assert response.status == 503
                assert (await response.json())["redis"].startswith("unreachable")
            async with http.get(str(server.make_url("/healthz"))) as response:
                assert response.status == 200
    finally:
        await server.close()


async def test_concurrent_webhooks_are_all_queued_and_answered(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    """Writes of concurrent requests are grouped; each request still gets its own answer."""
    answers = await asyncio.gather(
        *(gateway.post_update(update(100 + i, chat_id=800 + i)) for i in range(40))
    )
    assert {status for status, _ in answers} == {200}
    for i in range(40):
        await eventually(lambda i=i: sandbox.telegram.messages_for(800 + i))


# --- hostile traffic: every route, limits while streaming, slow clients, batch isolation -----

WA_SECRET = "wa-app-secret"
CW_SECRET = "cw-webhook-secret"
CAL_SECRET = "cal-webhook-secret"
NOVU_SECRET = "novu-webhook-secret"
MIB = 1024 * 1024
# Every route and its own limit: Meta's payloads reach 3 MB, the others stay under 1 MiB.
LIMITS = {
    "telegram": MIB,
    "whatsapp": 3 * MIB,
    "chatwoot": MIB,
    "calcom": MIB,
    "novu": MIB,
}


def every_route(**overrides: Any) -> dict[str, Any]:
    """Settings with all five webhook routes on, and nothing running behind the edge."""
    return {
        "run_workers": False,
        "whatsapp_access_token": "wa-token",
        "whatsapp_app_secret": WA_SECRET,
        "whatsapp_phone_number_id": "1234567890",
        "whatsapp_verify_token": "wa-verify",
        "chatwoot_url": "http://127.0.0.1:9",
        "chatwoot_account_id": 1,
        "chatwoot_api_token": "cw-token",
        "chatwoot_telegram_inbox_id": 1,
        "chatwoot_webhook_secret": CW_SECRET,
        "calcom_api_url": "http://127.0.0.1:9/v2",
        "calcom_api_key": "cal_test_key",
        "calcom_webhook_secret": CAL_SECRET,
        "novu_api_url": "http://127.0.0.1:9",
        "novu_api_key": "novu-key",
        "novu_webhook_secret": NOVU_SECRET,
        **overrides,
    }


def hexdigest(secret: str, signed: bytes) -> str:
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(route: str, raw: bytes) -> dict[str, str]:
    """Each provider's own authentication of `raw`, as it sends it."""
    stamp = str(int(time.time()))
    if route == "telegram":
        return {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    if route == "whatsapp":
        return {"X-Hub-Signature-256": "sha256=" + hexdigest(WA_SECRET, raw)}
    if route == "chatwoot":
        return {
            "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Signature": "sha256=" + hexdigest(CW_SECRET, stamp.encode() + b"." + raw),
        }
    if route == "calcom":
        return {"X-Cal-Signature-256": hexdigest(CAL_SECRET, raw)}
    return {
        "Novu-Signature": f"t={stamp},v1=" + hexdigest(NOVU_SECRET, stamp.encode() + b"." + raw)
    }


def forged_headers(route: str) -> dict[str, str]:
    """Headers of the right shape whose signature is wrong: the body must be read to know.
    (Telegram's are right: its secret header says nothing about the body.)"""
    return signed_headers(route, b"not the body that is sent")


async def raw_request(port: int, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


def head(route: str, headers: dict[str, str], **extra: str) -> str:
    lines = [f"POST /webhooks/{route} HTTP/1.1", "Host: gateway", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in {**headers, **extra}.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


async def status_of(reader: asyncio.StreamReader, within: float) -> int:
    line = await asyncio.wait_for(reader.readline(), within)
    return int(line.split()[1])


async def closed_after(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closes the connection (whatever it sent before)."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    return time.monotonic() - started


@pytest.mark.parametrize("route", list(LIMITS))
async def test_a_chunked_body_over_the_route_limit_is_refused_before_it_ends(
    start_gateway: GatewayFactory, route: str
) -> None:
    """The limit holds while reading: the 413 comes while the sender is still sending, so the
    server never waited for (or buffered) the whole body. The read timeout is far away: only
    the limit can answer in time."""
    gateway = await start_gateway(**every_route(edge_read_timeout_seconds=60.0))
    reader, writer = await raw_request(
        gateway.server.port or 0,
        head(route, forged_headers(route), **{"Transfer-Encoding": "chunked"}),
    )
    chunk = 64 * 1024
    sent = 0

    async def send() -> None:
        nonlocal sent
        # Past the limit by four chunks, and then no end: the last chunk never comes.
        with contextlib.suppress(ConnectionError):
            while sent <= LIMITS[route] + 4 * chunk:
                writer.write(f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n")
                await writer.drain()
                sent += chunk

    sending = asyncio.create_task(send())
    try:
        assert await status_of(reader, within=5.0) == 413
        assert await closed_after(reader, within=5.0) < 5.0
    finally:
        sending.cancel()
        writer.close()
    assert gateway.runtime.metrics.webhooks.labels(route, "too_large")._value.get() == 1


@pytest.mark.parametrize("route", list(LIMITS))
async def test_a_declared_length_over_the_route_limit_is_refused_before_reading(
    start_gateway: GatewayFactory, route: str
) -> None:
    """Content-Length above the limit: 413 at once, though not one byte of the body came."""
    gateway = await start_gateway(**every_route(edge_read_timeout_seconds=60.0))
    reader, writer = await raw_request(
        gateway.server.port or 0,
        head(route, forged_headers(route), **{"Content-Length": str(LIMITS[route] + 1)}),
    )
    try:
        assert await status_of(reader, within=2.0) == 413
    finally:
        writer.close()


class Trickle(StreamReader):
    """A request body that arrives one 1000-byte chunk per read, for ever."""

    arrived = 0

    async def readany(self) -> bytes:
        self.feed_data(b"x" * 1000)
        self.arrived += 1
        return await super().readany()


async def test_the_body_reader_stops_at_the_first_chunk_past_the_limit() -> None:
    """What was read: the limit plus one chunk; what had not arrived is never waited for."""
    loop = asyncio.get_running_loop()
    content = Trickle(BaseProtocol(loop), 2**16, loop=loop)
    with pytest.raises(edge._TooLarge):
        await read_body(content, 10_500)
    assert content.arrived == 11  # 11_000 bytes: the first chunk past 10_500, and no more

    content = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    content.feed_data(b"{}")
    content.feed_eof()
    assert await read_body(content, 2) == b"{}"  # exactly the limit is allowed


async def test_a_slow_request_head_is_disconnected(start_gateway: GatewayFactory) -> None:
    """Slowloris: a head dribbled byte by byte is cut off at KEEPALIVE_SECONDS."""
    gateway = await start_gateway(keepalive_seconds=1.0, run_workers=False)
    reader, writer = await raw_request(
        gateway.server.port or 0, "POST /webhooks/telegram HTTP/1.1\r\n"
    )

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in "X-Slow: " + "a" * 200:
                writer.write(byte.encode())
                await writer.drain()
                await asyncio.sleep(0.05)

    dribbling = asyncio.create_task(dribble())
    try:
        assert await closed_after(reader, within=5.0) < 2.5
        assert not dribbling.done()  # still sending when it was cut off
    finally:
        dribbling.cancel()
        writer.close()


async def test_an_idle_connection_is_closed(gateway_on_every_route: Gateway) -> None:
    """Connected and silent, or silent after an answer (keep-alive): closed within the bound."""
    port = gateway_on_every_route.server.port or 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await closed_after(reader, within=5.0) < 2.5
    finally:
        writer.close()
    raw = json.dumps(update(60)).encode()
    reader, writer = await raw_request(
        port,
        head("telegram", signed_headers("telegram", raw), **{"Content-Length": str(len(raw))}),
    )
    writer.write(raw)
    try:
        assert await status_of(reader, within=2.0) == 200
        assert await closed_after(reader, within=5.0) < 2.5
    finally:
        writer.close()


@pytest.fixture
async def gateway_on_every_route(start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway(**every_route(keepalive_seconds=1.0))


async def test_a_slow_body_is_refused_in_time(start_gateway: GatewayFactory) -> None:
    gateway = await start_gateway(**every_route(edge_read_timeout_seconds=0.5))
    reader, writer = await raw_request(
        gateway.server.port or 0,
        head("whatsapp", forged_headers("whatsapp"), **{"Content-Length": "1000"}),
    )

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(100):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)

    dribbling = asyncio.create_task(dribble())
    started = time.monotonic()
    try:
        assert await status_of(reader, within=3.0) == 408
        assert time.monotonic() - started < 1.5
    finally:
        dribbling.cancel()
        writer.close()
    assert gateway.runtime.metrics.webhooks.labels("whatsapp", "too_slow")._value.get() == 1


async def test_unauthenticated_reads_are_bounded_and_telegram_is_not(
    start_gateway: GatewayFactory,
) -> None:
    """With every slot taken by a body that is still arriving, a signed-body request waits
    briefly and gets 503 with Retry-After (Meta, Cal.com and Novu deliver it again); Telegram,
    authenticated by its header before its body is read, takes no slot."""
    gateway = await start_gateway(**every_route(edge_max_pending_reads=1))
    port = gateway.server.port or 0
    _, holder = await raw_request(
        port, head("novu", forged_headers("novu"), **{"Content-Length": "1000"})
    )
    holder.write(b"{")
    await holder.drain()
    await asyncio.sleep(0.1)  # the handler has the slot and waits for the rest
    try:
        raw = b'{"object": "whatsapp_business_account", "entry": []}'
        waited = time.monotonic()
        async with gateway.http.post(
            f"{gateway.url}/webhooks/whatsapp", data=raw, headers=signed_headers("whatsapp", raw)
        ) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
        assert 1.5 < time.monotonic() - waited < 4.0  # it waited for a slot, then gave up
        assert await gateway.post_update(update(61)) == (200, {})
    finally:
        holder.close()
    # The slot is free once the holder is gone.
    await eventually(lambda: gateway.runtime.metrics.webhooks.labels("novu", "too_large"))
    async with gateway.http.post(
        f"{gateway.url}/webhooks/whatsapp", data=raw, headers=signed_headers("whatsapp", raw)
    ) as response:
        assert response.status == 200
    assert gateway.runtime.metrics.webhooks.labels("whatsapp", "busy")._value.get() == 1


def novu_notice(transaction: str, conversation: str) -> bytes:
    # A JSON escape: what a JavaScript client that cut an emoji in half sends.
    return (
        f'{{"transaction": "{transaction}", "kind": "reminder", "bookingUid": "u-{transaction}", '
        f'"start": "2026-06-02T07:00:00Z", "conversation": "{conversation}"}}'
    ).encode()


async def test_a_poisoned_event_fails_only_its_own_request(
    start_gateway: GatewayFactory, redis: Redis
) -> None:
    """Validly signed Novu notices that cannot be queued, among concurrent valid Telegram
    updates: a lone surrogate (refused by the JSON reader) or an id too long for a Redis key
    (refused by the edge's id check) is 400 alone; every update is 200 and queued."""
    gateway = await start_gateway(**every_route())

    async def notice(transaction: str, conversation: str) -> tuple[int, str]:
        raw = novu_notice(transaction, conversation)
        async with gateway.http.post(
            f"{gateway.url}/webhooks/novu", data=raw, headers=signed_headers("novu", raw)
        ) as response:
            if response.status == 400:
                return 400, str((await response.json())["error"])
            return response.status, ""

    answers = await asyncio.gather(
        *(gateway.post_update(update(300 + i, chat_id=900 + i)) for i in range(60)),
        *(notice(f"fd-{i}", "tg:\\ud83d") for i in range(5)),
        *(notice(f"fd-{i}-" + "x" * 300, "tg:901") for i in range(5)),
        notice("fd-99", "tg:901"),
    )
    assert answers[:60] == [(200, {})] * 60
    assert answers[60:65] == [(400, "malformed: not JSON (JSONDecodeError)")] * 5
    assert answers[65:70] == [(400, "malformed: event id longer than 256 characters")] * 5
    assert answers[70] == (200, "")  # a sound notice on the same route
    assert await queued(redis, gateway) == 61


@pytest.mark.parametrize("route", list(LIMITS))
async def test_forged_requests_on_every_route_are_4xx(
    gateway_on_every_route: Gateway, route: str, redis: Redis
) -> None:
    gateway = gateway_on_every_route
    url = f"{gateway.url}/webhooks/{route}"
    raw = json.dumps(update(70)).encode()
    odd_credentials: list[dict[str, str]] = [
        {},
        {"X-Telegram-Bot-Api-Secret-Token": "ü"},
        {"X-Hub-Signature-256": "sha256=" + "é" * 64},
        {"X-Chatwoot-Timestamp": "²", "X-Chatwoot-Signature": "sha256=" + "0" * 64},
        {"X-Chatwoot-Timestamp": "9" * 400, "X-Chatwoot-Signature": "sha256=" + "0" * 64},
        {"X-Cal-Signature-256": "no-secret-provided"},
        {"Novu-Signature": "t=²,v1=abc"},
        {"Novu-Signature": f"t={'9' * 400},v1={'0' * 64}"},
        {"Novu-Signature": f"t={int(time.time())},v1={'é' * 64}"},
        forged_headers(route) if route != "telegram" else {"X-Telegram-Bot-Api-Secret-Token": "x"},
    ]
    statuses = []
    for headers in odd_credentials:
        for body in (raw, b"", b"\xff\xfe", b"{" * 5000):
            async with gateway.http.post(url, data=body, headers=headers) as response:
                statuses.append(response.status)
    assert len(statuses) == 40
    assert all(400 <= status < 500 for status in statuses), statuses
    assert await queued(redis, gateway) == 0
