"""The owner's report from a demo session, as a user gets it: a booking in the demo's chat, then
the command the banner prints, run as printed; the report is on the Novu pane, its link opens the
week's dashboard in Metabase's stand-in, and a second run sends nothing."""

from __future__ import annotations

import asyncio
import re
import shlex

import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis

from gateway.ops.demo import _run, demo_overrides
from gateway.pipeline.embedded_redis import free_port
from gateway.settings import load
from tests.conftest import eventually
from tests.gateway.test_cli import run
from tests.gateway.test_demo_second_salon import PageChat
from tests.gateway.test_demo_second_salon import postgres as postgres  # the fixture

# Not the demo's own database: a demo someone runs beside the tests keeps its rows.
DATABASE = "frontdesk_demo_tests"


@pytest.mark.usefixtures("postgres")
async def test_a_demo_sessions_report_is_sent_once_and_links_to_its_week(
    redis_url: str,
    salon_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
) -> None:
    monkeypatch.chdir(str(tmp_path))
    for name in ("ANALYTICS_DATABASE_URL", "DATABASE_URL", "SECRETS_KEY"):
        monkeypatch.delenv(name, raising=False)
    port = free_port(consecutive=10)
    settings = load(**{**demo_overrides("127.0.0.1", port), "redis_url": redis_url})
    settings = settings.with_salon(salon_id=salon_id)
    stop = asyncio.Event()
    demo = asyncio.create_task(
        _run(
            settings,
            "127.0.0.1",
            port,
            embedded=False,
            stop=stop,
            second_id=f"{salon_id}-ru",
            database=DATABASE,
        )
    )
    page, novu = f"http://127.0.0.1:{port + 1}", f"http://127.0.0.1:{port + 5}"
    try:
        async with ClientSession() as http:

            async def banner() -> str | None:
                printed = capsys.readouterr().out
                return printed if "Press Ctrl+C to stop." in printed else None

            printed = await eventually(banner, timeout=30)
            command = re.search(r"^ +(env .* frontdesk analytics report --send .*)$", printed, re.M)
            assert command is not None, printed
            # A client books in the demo's Telegram chat.
            anna = PageChat(http, page, 21, "en")
            await anna.say("/start")
            await anna.tap("m:book")
            await anna.tap("b:s:")
            await anna.tap("b:m:")
            await anna.tap("b:d:")
            await anna.tap("b:t:")
            await anna.share_phone("79161230021")
            assert (await anna.tap("b:ok:"))[-1]["text"].startswith("✅")
            await asyncio.sleep(2)  # the analytics writer's next batch

            # The command, run as printed (its names in the environment of another shell).
            words = shlex.split(command.group(1))
            assert words[0] == "env"
            names = dict(word.split("=", 1) for word in words[1:] if "=" in word)
            assert names["SALON_ID"] == salon_id
            for name, value in names.items():
                monkeypatch.setenv(name, value)
            argv = words[1 + len(names) + 1 :]  # after "env", the names and "frontdesk"
            assert argv[:3] == ["analytics", "report", "--send"]
            assert await run(*argv) == 0
            assert ": sent" in capsys.readouterr().out
            assert await run(*argv) == 0
            assert "already sent, not sent again" in capsys.readouterr().out

            async with http.get(f"{novu}/_sandbox/state") as response:
                state = await response.json()
            sent = [s for s in state["sent"] if s["workflow"] == "frontdesk-owner-report"]
            by_channel = {s["channel"]: s for s in sent}
            assert sorted(by_channel) == ["email", "in_app"]
            assert len(sent) == 2
            email = by_channel["email"]
            assert email["to"] == names["OWNER_EMAIL"]
            assert email["subject"].startswith("Frontdesk Demo Salon: неделя ")
            assert "Записи: 1\n  telegram: 1" in email["text"]
            [feed] = [v for k, v in state["feed"].items() if k == f"{salon_id}:owner"]
            assert feed[0]["content"] in email["text"]
            # Its link opens the dashboard of exactly that week, through the gateway.
            link = re.search(r"https?://\S+/analytics/week/\S+", email["text"])
            assert link is not None
            async with http.get(link.group(0)) as opened:
                assert opened.status == 200
                page_text = await opened.text()
            assert f"<li>salon: {salon_id}</li>" in page_text
            week = argv[argv.index("--week") + 1]
            assert f"/{week}?" in link.group(0)
    finally:
        stop.set()
        await asyncio.wait_for(demo, 15)
        redis = Redis.from_url(redis_url)
        keys = [key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}*", count=500)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
