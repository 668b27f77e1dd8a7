"""Analytics storage, Metabase sync and signed embeds, with a real PostgreSQL where CI has one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.analytics import store as analytics_store
from gateway.analytics.facts import Recorder
from gateway.analytics.store import Writer, insert, migrate, questions
from gateway.integrations.metabase.api import MetabaseClient, MetabaseError, sign_embed, sync
from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.sandbox.metabase import MetabaseSandbox, verify_embed
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import GatewayFactory, eventually
from tests.gateway.test_cli import run

SECRET = "0123456789abcdef" * 4


@pytest.fixture
async def metabase() -> AsyncIterator[tuple[MetabaseSandbox, str]]:
    sandbox = MetabaseSandbox(api_key="mb_key", password="pw", secret=SECRET)
    server = TestServer(sandbox.app())
    await server.start_server()
    yield sandbox, str(server.make_url("")).rstrip("/")
    await server.close()


def facts(recorder: Recorder, n: int) -> list[dict[str, Any]]:
    at = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    return [
        {"id": f"telegram:{i}:0", **recorder.fact("conversation_started", f"tg:{i}", at)}
        for i in range(n)
    ]


async def test_migrations_apply_once_and_facts_are_written_once(analytics_db: str) -> None:
    connection = await asyncpg.connect(analytics_db)
    try:
        assert await migrate(connection) == [
            "0001_events",
            "0002_previous_booking",
            "0003_owner_reports",
        ]
        assert await migrate(connection) == []
        recorder = Recorder("s1", "salt-salt-salt-salt", "Europe/Moscow", timedelta(hours=1))
        batch = facts(recorder, 3)
        assert await insert(connection, batch) == 3
        assert await insert(connection, batch) == 0  # a batch written again: nothing twice
        row = await connection.fetchrow("SELECT * FROM events WHERE id = 'telegram:0:0'")
        assert row["local_at"] == datetime(2026, 6, 1, 10, 0)
        assert row["client"] == recorder.client("tg:0")
        assert len(row["client"]) == 24
    finally:
        await connection.close()


class Proxy:
    """A TCP proxy in front of PostgreSQL that can be switched off ("PostgreSQL is down")."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = False
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if not self.up:
                        break
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (pipe(reader, upstream_writer), pipe(upstream_reader, writer)):
            piped = asyncio.create_task(task)
            self.pipes.add(piped)
            piped.add_done_callback(self.pipes.discard)

    async def close(self) -> None:
        for task in list(self.pipes):
            task.cancel()
        if self.server is not None:
            self.server.close()


async def test_while_postgresql_is_down_facts_wait_and_are_written_once_later(
    redis: Redis, salon_id: str, analytics_db: str
) -> None:
    proxy = Proxy(("127.0.0.1", 5432))
    port = await proxy.start()
    url = analytics_db.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    keys = Keys(salon_id, 1)
    metrics = Metrics()
    writer = Writer(redis, keys, url, metrics, pause=0.05, max_pause=0.2)
    recorder = Recorder(salon_id, "salt-salt-salt-salt", "Europe/Moscow", timedelta(hours=1))
    for fact in facts(recorder, 5):
        await redis.xadd(keys.analytics, {"fact": json.dumps(fact)})
    running = asyncio.create_task(writer.run())
    try:
        await eventually(lambda: metrics.analytics_failures._value.get() >= 3, timeout=5)
        assert await redis.xlen(keys.analytics) == 5  # waiting, not lost
        proxy.up = True
        await eventually(lambda: _length(redis, keys.analytics, 0), timeout=10)
        # More after the recovery, and one fact queued twice (a retried handling): once each.
        for fact in facts(recorder, 7)[4:]:
            await redis.xadd(keys.analytics, {"fact": json.dumps(fact)})
        await eventually(lambda: _length(redis, keys.analytics, 0), timeout=10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await writer.close()
        await proxy.close()
    connection = await asyncpg.connect(analytics_db)
    try:
        ids = [r["id"] for r in await connection.fetch("SELECT id FROM events ORDER BY id")]
    finally:
        await connection.close()
    assert ids == [f"telegram:{i}:0" for i in range(7)]
    assert metrics.analytics_written._value.get() == 7


async def _length(redis: Redis, key: str, wanted: int) -> bool:
    return int(await redis.xlen(key)) == wanted


async def test_metabase_sync_twice_changes_nothing_the_second_time(
    metabase: tuple[MetabaseSandbox, str],
) -> None:
    sandbox, url = metabase
    database_url = "postgresql://frontdesk:pw@db.internal:5432/analytics"
    async with MetabaseClient(url, api_key="mb_key") as client:
        first = await sync(client, database_url, questions())
    assert len(first["cards"]) == 8
    assert sandbox.databases[first["database"]]["details"]["host"] == "db.internal"
    dashboard = sandbox.dashboards[first["dashboard"]]
    assert dashboard["enable_embedding"] is True
    assert dashboard["embedding_params"] == {
        "salon": "locked",
        "start": "enabled",
        "end": "enabled",
    }
    assert [d["card_id"] for d in dashboard["dashcards"]] == first["cards"]
    assert {(d["col"], d["size_x"]) for d in dashboard["dashcards"]} == {(0, 12), (12, 12)}
    writes = len(sandbox.writes)
    async with MetabaseClient(url, user="admin@salon.example", password="pw") as client:
        second = await sync(client, database_url, questions())
        assert client.writes == []
    assert second == first
    assert len(sandbox.writes) == writes
    # A question edited by hand in Metabase is put back, and only that.
    card = sandbox.cards[first["cards"][0]]
    card["dataset_query"]["native"]["query"] = "SELECT 1"
    async with MetabaseClient(url, api_key="mb_key") as client:
        await sync(client, database_url, questions())
        assert client.writes == [f"PUT /api/card/{card['id']}"]


async def test_a_signed_embed_carries_the_locked_salon_and_expires(
    metabase: tuple[MetabaseSandbox, str],
) -> None:
    _, url = metabase
    async with MetabaseClient(url, api_key="mb_key") as client:
        done = await sync(client, "postgresql://u:p@h:5432/d", questions())
    params = {"salon": "s1", "start": "2026-06-01", "end": "2026-06-30"}
    token = sign_embed(SECRET + "\n", done["dashboard"], params, ttl=600)
    payload = verify_embed(token, SECRET)
    assert payload["resource"] == {"dashboard": done["dashboard"]}
    assert payload["params"]["salon"] == "s1"
    assert payload["exp"] - time.time() == pytest.approx(600, abs=5)
    async with ClientSession() as http:
        answer = await http.get(f"{url}/api/embed/dashboard/{token}")
        assert answer.status == 200
        assert len((await answer.json())["cards"]) == 8
        old = sign_embed(SECRET, done["dashboard"], params, ttl=600, now=time.time() - 700)
        expired = await http.get(f"{url}/api/embed/dashboard/{old}")
        assert (await expired.json())["message"] == "Token is expired"
        unlocked = sign_embed(SECRET, done["dashboard"], {"start": "2026-06-01"})
        refused = await http.get(f"{url}/api/embed/dashboard/{unlocked}")
        assert "You must specify a value for :salon" in (await refused.json())["message"]
        forged = sign_embed("another-secret", done["dashboard"], params)
        bad = await http.get(f"{url}/api/embed/dashboard/{forged}")
        assert (await bad.json())["message"] == "Message seems corrupt or manipulated"


async def test_staff_get_a_signed_embed_url_with_their_token(
    start_gateway: GatewayFactory, metabase: tuple[MetabaseSandbox, str]
) -> None:
    _, url = metabase
    gateway = await start_gateway(
        metabase_site_url=url,
        metabase_secret_key=SECRET,
        metabase_dashboard_id=12,
        analytics_embed_token="staff-token-123",
    )
    async with ClientSession() as http:
        refused = await http.get(f"{gateway.url}/analytics/embed?token=wrong")
        assert refused.status == 401
        answer = await http.get(
            f"{gateway.url}/analytics/embed?days=7",
            headers={"Authorization": "Bearer staff-token-123"},
        )
        assert answer.status == 200
        assert answer.headers["Cache-Control"] == "no-store"
        link = (await answer.json())["url"]
        assert link.startswith(f"{url}/embed/dashboard/")
        token = link.split("/embed/dashboard/")[1].split("#")[0]
        payload = verify_embed(token, SECRET)
        assert payload["resource"] == {"dashboard": 12}
        assert payload["params"]["salon"] == gateway.runtime.settings.salon.profile.id
        start, end = payload["params"]["start"], payload["params"]["end"]
        assert (datetime.fromisoformat(end) - datetime.fromisoformat(start)).days == 6
        wrong = await http.get(f"{gateway.url}/analytics/embed?token=staff-token-123&days=0")
        assert wrong.status == 400
        opened = await http.get(
            f"{gateway.url}/analytics/embed?token=staff-token-123&open=1", allow_redirects=False
        )
        assert opened.status == 302


async def test_the_commands_migrate_report_and_sync(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    analytics_db: str,
    metabase: tuple[MetabaseSandbox, str],
) -> None:
    _, url = metabase
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", analytics_db)
    monkeypatch.setenv("ANALYTICS_SALT", "salt-salt-salt-salt")
    await run("check")
    out = capsys.readouterr().out
    pending = "0001_events, 0002_previous_booking, 0003_owner_reports"
    assert f"[FAIL] analytics schema not up to date ({pending})" in out
    assert await run("analytics", "migrate") == 0
    assert "applied: 0001_events" in capsys.readouterr().out
    assert await run("analytics", "migrate") == 0
    assert "up to date" in capsys.readouterr().out
    assert await run("analytics", "report", "--from", "2026-06-01", "--to", "2026-06-07") == 0
    out = capsys.readouterr().out
    assert "## Booking funnel" in out
    assert "started" in out
    assert "(nothing yet)" in out
    assert await run("metabase", "sync") == 2
    monkeypatch.setenv("METABASE_SITE_URL", url)
    monkeypatch.setenv("METABASE_API_KEY", "mb_key")
    assert await run("metabase", "sync") == 0
    out = capsys.readouterr().out
    assert "8 questions" in out
    assert "set METABASE_DASHBOARD_ID=" in out
    assert await run("metabase", "sync") == 0
    assert "changed: nothing (already in place)" in capsys.readouterr().out
    monkeypatch.setenv("METABASE_SECRET_KEY", SECRET)
    monkeypatch.setenv("METABASE_DASHBOARD_ID", "3")
    await run("check")
    out = capsys.readouterr().out
    assert "[ok  ] analytics PostgreSQL reachable, schema up to date" in out
    assert "[ok  ] metabase  reachable; dashboard 3" in out
    monkeypatch.setenv("METABASE_API_KEY", "wrong")
    assert await run("metabase", "sync") == 1


def test_every_question_speaks_metabases_parameters() -> None:
    found = questions()
    assert len(found) == 8
    for question in found:
        assert "{{salon}}" in question.sql
        assert "$1" in question.for_asyncpg()
        assert "{{" not in question.for_asyncpg()
    assert analytics_store.table(["a", "b"], [(1, None), (2.5, "x")]).splitlines() == [
        "a    b",
        "---  -",
        "1    —",
        "2.5  x",
    ]


async def test_a_conversation_goes_on_while_the_analytics_database_is_down(
    start_gateway: GatewayFactory, sandbox: Any
) -> None:
    from tests.test_flow_booking import Chat

    gateway = await start_gateway(
        analytics_database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        analytics_salt="salt-salt-salt-salt",
        metrics_refresh_seconds=0.1,
    )
    chat = Chat(sandbox.telegram, 4711)
    greeting = await chat.say("/start")
    assert greeting[-1]["text"].startswith("Hello, Anna!")
    # The fact waits in Redis for PostgreSQL, and the metrics say so.
    redis = gateway.runtime.redis
    assert await redis.xlen(gateway.runtime.keys.analytics) >= 1

    async def backlog_shown() -> bool:
        # Read from Redis in the background (every 0.1 s here), not when scraped.
        async with ClientSession() as http:
            text = await (await http.get(f"{gateway.url}/metrics")).text()
        return "frontdesk_analytics_backlog 1.0" in text

    await eventually(backlog_shown, timeout=5)


async def test_the_metabase_stand_in_refuses_what_metabase_would(
    metabase: tuple[MetabaseSandbox, str],
) -> None:
    _, url = metabase
    async with MetabaseClient(url, api_key="mb_key") as client:
        done = await sync(client, "postgresql://u:p@h:5432/d", questions())
        # A dashboard update without its cards would empty it: refused.
        with pytest.raises(MetabaseError, match="dashcards"):
            await client.put(f"/api/dashboard/{done['dashboard']}", {"enable_embedding": True})
        with pytest.raises(MetabaseError, match="display"):
            await client.post("/api/card", {"name": "x", "dataset_query": {}})
    async with MetabaseClient(url, api_key="nope") as client:
        with pytest.raises(MetabaseError, match="401"):
            await client.get("/api/card")
