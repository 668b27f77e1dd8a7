"""Operations as the operator sees them: /metrics, /readyz, and the demo wiring."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession

from gateway.analytics import store as analytics_store
from gateway.ops.demo import (
    DEMO_DATABASE,
    DEMO_POSTGRES,
    DEMO_SALON,
    DEMO_TOKEN,
    _run,
    _with_analytics,
    demo_overrides,
)
from gateway.pipeline.embedded_redis import free_port
from gateway.settings import load
from tests.conftest import Gateway, GatewayFactory, Sandbox, eventually
from tests.gateway.pipeline.test_edge import update


def metric(text: str, name: str) -> float:
    pattern = re.compile(rf"^{re.escape(name)} (\S+)$", re.MULTILINE)
    found = pattern.search(text)
    assert found, f"{name} not in metrics"
    return float(found.group(1))


async def scrape(gateway: Gateway) -> str:
    async with gateway.http.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return await response.text()


async def test_metrics_count_webhooks_queues_and_deliveries(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    await gateway.post_update(update(1, chat_id=61))
    await gateway.post_update(update(1, chat_id=61))
    await gateway.post_update(update(2, chat_id=61), secret="nope")
    await eventually(lambda: sandbox.telegram.messages_for(61))
    text = await scrape(gateway)
    assert metric(text, 'frontdesk_webhooks_total{result="queued",source="telegram"}') == 1
    assert metric(text, 'frontdesk_webhooks_total{result="duplicate",source="telegram"}') == 1
    assert metric(text, 'frontdesk_webhooks_total{result="unauthorized",source="telegram"}') == 1
    assert metric(text, 'frontdesk_handled_total{result="ok",source="telegram"}') == 1
    assert metric(text, 'frontdesk_handling_seconds_count{source="telegram"}') == 1
    text = await eventually(lambda: _sent(gateway), timeout=5)  # the outbox counts on its own
    assert metric(text, 'frontdesk_queue_depth{queue="inbound"}') == 0
    assert metric(text, 'frontdesk_queue_depth{queue="outbound"}') == 0
    assert metric(text, "frontdesk_dead_letters") == 0
    assert metric(text, 'frontdesk_breaker_state{service="telegram"}') == 0
    assert "_created" not in text


async def _sent(gateway: Gateway) -> str | None:
    text = await scrape(gateway)
    sent = 'frontdesk_outbox_messages_total{channel="telegram",result="sent"} 1.0'
    return text if sent in text else None


async def test_queue_depth_and_lag_show_work_waiting(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    # A webhook-only replica: nothing handles what it queues.
    gateway = await start_gateway(run_workers=False, metrics_refresh_seconds=0.2)
    for n in range(3):
        await gateway.post_update(update(10 + n, chat_id=62 + n))
    await asyncio.sleep(1.1)

    async def lagging() -> str | None:
        text = await scrape(gateway)
        return text if metric(text, 'frontdesk_queue_lag_seconds{queue="inbound"}') >= 1 else None

    text = await eventually(lagging, timeout=2)  # read in the background, every 0.2 s here
    assert metric(text, 'frontdesk_queue_depth{queue="inbound"}') == 3
    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        body = await response.json()
    assert response.status == 200
    assert "shards" not in body  # this replica works no shard


async def test_queue_lag_counts_entries_read_but_not_finished(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    sandbox.telegram.delay = 1.5  # the Bot API is slow: replies wait in the outbox
    gateway = await start_gateway(metrics_refresh_seconds=0.2)
    await gateway.post_update(update(20, chat_id=70))

    async def waiting() -> bool:
        text = await scrape(gateway)
        return metric(text, 'frontdesk_queue_depth{queue="outbound"}') == 1

    await eventually(waiting, timeout=5)
    sandbox.telegram.delay = 0


async def test_a_scrape_makes_no_redis_call(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    gateway = await start_gateway(run_workers=False, metrics_refresh_seconds=3600)
    await gateway.post_update(update(40, chat_id=90))
    redis = gateway.runtime.redis
    commands: list[object] = []
    send = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        commands.append(args[0])
        return await send(*args, **options)

    redis.execute_command = counted  # type: ignore[method-assign]
    await asyncio.sleep(2.1)  # the reading at start is over (it gives up after 2 s)
    commands.clear()
    await redis.ping()  # the counting works
    assert commands == ["PING"]
    for _ in range(20):
        text = await scrape(gateway)
    assert commands == ["PING"]
    # The values are those read at start (the next reading is an hour away).
    assert metric(text, 'frontdesk_queue_depth{queue="inbound"}') == 0
    assert metric(text, 'frontdesk_webhooks_total{result="queued",source="telegram"}') == 1


async def test_metrics_with_a_token_answer_only_its_bearer(
    start_gateway: GatewayFactory, sandbox: Sandbox
) -> None:
    token = "scrape-token-7f3a9c"
    gateway = await start_gateway(metrics_token=token)
    url = f"{gateway.url}/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": token},  # without the scheme
        {"Authorization": f"Basic {token}"},
        {"Authorization": f"Bearer {token}x"},
    ):
        async with gateway.http.get(url, headers=headers) as response:
            assert response.status == 401, headers
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "frontdesk_" not in await response.text()
    async with gateway.http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert "frontdesk_breaker_state" in await response.text()
    # A scanner's header bytes that are not UTF-8: refused, not a 500.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401"


async def test_readyz_shows_services_and_breakers(gateway: Gateway) -> None:
    async with gateway.http.get(f"{gateway.url}/readyz") as response:
        body = await response.json()
    assert response.status == 200
    assert body["redis"] == "ok"
    assert body["services"] == {
        "telegram": "closed",
        "whatsapp": "off",
        "calcom": "off",
        "chatwoot": "off",
        "novu": "off",
        "metabase": "off",
        "analytics": "off",
    }
    assert body["shards"] == [0, 1, 2, 3]


async def test_a_failing_bot_api_opens_the_breaker_and_readyz_says_so(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    sandbox.telegram.fail_next("sendMessage", error_code=500, description="Boom", times=100)
    for n in range(5):
        await gateway.post_update(update(30 + n, chat_id=80 + n))

    async def opened() -> bool:
        async with gateway.http.get(f"{gateway.url}/readyz") as response:
            return (await response.json())["services"]["telegram"] == "open"

    await eventually(opened, timeout=10)
    text = await scrape(gateway)
    assert metric(text, 'frontdesk_breaker_state{service="telegram"}') == 2
    assert metric(text, 'frontdesk_outbox_retries_total{channel="telegram"}') >= 5


def test_demo_keeps_the_salons_own_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALON_NAME", "Studio Nord")
    monkeypatch.delenv("SALON_ADDRESS", raising=False)
    overrides = demo_overrides("127.0.0.1", 9000)
    assert "salon_name" not in overrides
    assert overrides["salon_address"] == DEMO_SALON["salon_address"]
    assert overrides["telegram_api_url"] == "http://127.0.0.1:9001"
    assert overrides["telegram_bot_token"] == DEMO_TOKEN


async def test_demo_wires_the_chat_page_to_the_gateway(
    redis_url: str, salon_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    # The demo's gateway, six stand-ins and, with PostgreSQL, the second salon's two.
    port = free_port(consecutive=9)
    settings = load(
        **{**demo_overrides("127.0.0.1", port), "redis_url": redis_url, "salon_id": salon_id}
    )
    stop = asyncio.Event()
    demo = asyncio.create_task(
        _run(settings, "127.0.0.1", port, False, stop, second_id=f"{salon_id}-ru")
    )
    page = f"http://127.0.0.1:{port + 1}"
    async with ClientSession() as http:

        async def up() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    return response.status == 200
            except OSError:
                return False

        await eventually(up, timeout=10)
        async with http.post(
            f"{page}/_sandbox/say",
            json={"chat_id": 9, "text": "/start", "first_name": "Vera", "language_code": "en"},
        ) as response:
            assert (await response.json())["status"] == 200

        async def greeted() -> list[dict[str, str]]:
            async with http.get(f"{page}/_sandbox/messages?chat_id=9") as response:
                messages: list[dict[str, str]] = (await response.json())["messages"]
                return messages

        messages = await eventually(greeted, timeout=10)
        assert messages[0]["text"].startswith("Hello, Vera! Welcome to")

        # The page names the panes it can switch, and lists the calendar on the salon's clock.
        async with http.get(f"{page}/_sandbox/state") as response:
            state = await response.json()
        titles = [pane["title"] for pane in state["panes"]]
        assert titles[:3] == ["WhatsApp", "Staff (Chatwoot)", "Notifications (Novu)"]
        assert [pane["url"] for pane in state["panes"]] == state["beside"]
        assert state["calendar_zone"] == "Europe/Moscow"
        async with http.get(page) as response:
            policy = response.headers["Content-Security-Policy"]
        assert f"frame-src {' '.join(state['beside'])}" in policy

        # Asking for a person pages the staff: their in-app feed is on the Novu pane.
        novu_page = state["panes"][2]["url"].rstrip("/")
        async with http.post(
            f"{page}/_sandbox/say",
            json={"chat_id": 9, "text": "I want to talk to a person", "language_code": "en"},
        ) as response:
            assert (await response.json())["status"] == 200

        async def paged() -> list[dict[str, str]]:
            async with http.get(f"{novu_page}/_sandbox/state") as response:
                feed = (await response.json())["feed"]
            return [n for items in feed.values() for n in items if n["subject"]]

        notices = await eventually(paged, timeout=10)
        assert {n["templateIdentifier"] for n in notices} == {"staff-handoff"}
    stop.set()
    await asyncio.wait_for(demo, 15)


async def test_each_demo_run_starts_with_fresh_analytics(
    salon_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's own analytics database forgets the demo salon's earlier rows when it starts
    (the analytics pane shows this run alone); another salon's rows are left as they are."""
    try:
        admin = await asyncpg.connect(DEMO_POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {DEMO_POSTGRES} ({type(exc).__name__})")
    await admin.close()
    monkeypatch.delenv("ANALYTICS_DATABASE_URL", raising=False)  # the demo's own database
    settings = load(**{**demo_overrides("127.0.0.1", 9000), "salon_id": salon_id})
    other = f"{salon_id}x"
    ready = await _with_analytics(settings)
    assert ready.analytics is not None
    url = ready.analytics.database_url.get_secret_value()
    assert url.endswith(f"/{DEMO_DATABASE}")
    now = datetime.now(UTC)
    facts = [
        {
            "id": f"test:{salon}:1",
            "salon": salon,
            "at": now.isoformat(),
            "local_at": now.replace(tzinfo=None).isoformat(),
            "kind": "booking_created",
            "channel": "telegram",
            "client": "c1",
        }
        for salon in (salon_id, other)
    ]
    connection = await asyncpg.connect(url)
    try:
        assert await analytics_store.insert(connection, facts) == 2
        await _with_analytics(settings)  # the next run
        salons = await connection.fetch(
            "SELECT salon FROM events WHERE salon = ANY($1)", [salon_id, other]
        )
        assert [row["salon"] for row in salons] == [other]
    finally:
        await connection.execute("DELETE FROM events WHERE salon = ANY($1)", [salon_id, other])
        await connection.close()
