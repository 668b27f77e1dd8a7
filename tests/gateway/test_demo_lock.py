"""Two demos on one machine: a second demo with the same salons in the same database is refused
before it writes anything (the first one's analytics and second salon stay), with a message
that says what to do; demos with other salon ids run side by side."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from gateway.analytics import store as analytics_store
from gateway.ops.demo import DEMO_DATABASE, DEMO_POSTGRES, _run, demo_overrides
from gateway.ops.demo_lock import DemoBusy, DemoHold
from gateway.pipeline.embedded_redis import free_port
from gateway.settings import load
from tests.conftest import ROOT

# Not the demo's own database: a demo running on this machine is left alone.
TEST_DATABASE = "frontdesk_demo_lock_tests"
TEST_URL = DEMO_POSTGRES.rsplit("/", 1)[0] + f"/{TEST_DATABASE}"


@pytest.fixture
async def database() -> str:
    try:
        admin = await asyncpg.connect(DEMO_POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {DEMO_POSTGRES} ({type(exc).__name__})")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEST_DATABASE):
            # Made meanwhile by another test run: as good.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await admin.close()
    return TEST_URL


def fact(salon: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "id": f"test:{salon}:1",
        "salon": salon,
        "at": now.isoformat(),
        "local_at": now.replace(tzinfo=None).isoformat(),
        "kind": "booking_created",
        "channel": "telegram",
        "client": "c1",
    }


async def test_a_second_demo_with_the_same_salons_is_refused_before_it_writes_anything(
    database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANALYTICS_DATABASE_URL", raising=False)
    salon_id = f"lock{uuid.uuid4().hex[:8]}"
    running = DemoHold((salon_id, f"{salon_id}-ru"))  # the first demo, as it runs
    await running.claim(database)
    connection = await asyncpg.connect(database)
    try:
        await analytics_store.migrate(connection)
        await analytics_store.insert(connection, [fact(salon_id)])
        port = free_port(consecutive=9)
        settings = load(
            **{**demo_overrides("127.0.0.1", port), "redis_url": redis_url, "salon_id": salon_id}
        )
        with pytest.raises(DemoBusy) as refused:
            await asyncio.wait_for(
                _run(settings, "127.0.0.1", port, False, asyncio.Event(), database=TEST_DATABASE),
                10,
            )
        assert refused.value.salon_id == salon_id
        assert refused.value.database == TEST_DATABASE
        advice = refused.value.advice()
        assert "Stop it first" in advice
        assert "another SALON_ID" in advice
        # The first demo's analytics are as they were: the second one wiped nothing.
        rows = await connection.fetchval("SELECT count(*) FROM events WHERE salon = $1", salon_id)
        assert rows == 1

        # Its second salon alone is enough to refuse (a demo with another first id but the
        # same second one would remove it on stopping).
        await running.release()
        second_only = DemoHold((f"{salon_id}-ru",))
        await second_only.claim(database)
        with pytest.raises(DemoBusy):
            await DemoHold((f"{salon_id}x", f"{salon_id}-ru")).claim(database)
        # Other salons in the same database: side by side.
        other = DemoHold((f"{salon_id}y", f"{salon_id}y-ru"))
        await other.claim(database)
        await other.release()
        await second_only.release()
        # Once the first demo has stopped, the next one starts.
        again = DemoHold((salon_id, f"{salon_id}-ru"))
        await again.claim(database)
        await again.release()
    finally:
        await connection.execute("DELETE FROM events WHERE salon = $1", salon_id)
        await connection.close()
        await running.release()


# Starting the interpreter and importing the app takes a minute or more on a loaded machine.
@pytest.mark.watchdog(420)
async def test_frontdesk_demo_says_what_to_do_when_another_demo_runs_its_salons(
    database: str, tmp_path: Path
) -> None:
    """`frontdesk demo` beside a demo of the same salon in the demo's own database: exit 1
    with one clear line, no traceback, nothing served."""
    salon_id = f"lock{uuid.uuid4().hex[:8]}"
    try:
        holder = DemoHold((salon_id,))
        await holder.claim(DEMO_POSTGRES.rsplit("/", 1)[0] + f"/{DEMO_DATABASE}")
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"the demo's database cannot be reached ({type(exc).__name__})")
    prefixes = ("TELEGRAM_", "WHATSAPP_", "CHATWOOT_", "SALON_", "REDIS_", "ANALYTICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    port = free_port(consecutive=9)
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT), "SALON_ID": salon_id},
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        await holder.release()
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"another demo on this machine is running salon '{salon_id}'" in done.stderr
    assert f"'{DEMO_DATABASE}'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Press Ctrl+C to stop." not in done.stdout
