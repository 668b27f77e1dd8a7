"""The demo's second salon: served from the salon registry beside the first, each salon with its
own bot, its own language and its own Cal.com stand-in; off (and said so) without PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from pydantic import SecretStr
from redis.asyncio import Redis

from gateway.ops.demo import DEMO_DATABASE, DEMO_POSTGRES, _banner, _run, demo_overrides
from gateway.ops.demo_second_salon import SECOND_PANE, with_registry
from gateway.pipeline.embedded_redis import free_port
from gateway.settings import AnalyticsSettings, load
from tests.conftest import eventually

JSON = dict[str, Any]


class PageChat:
    """One client in a demo page's Telegram chat, over the page's own endpoints."""

    def __init__(self, http: ClientSession, page: str, chat_id: int, language: str) -> None:
        self.http = http
        self.page = page
        self.chat_id = chat_id
        self.language = language

    async def chat(self) -> JSON:
        url = f"{self.page}/_sandbox/messages?chat_id={self.chat_id}"
        async with self.http.get(url) as response:
            chat: JSON = await response.json()
            return chat

    async def messages(self) -> list[JSON]:
        messages: list[JSON] = (await self.chat())["messages"]
        return messages

    async def _act(self, path: str, body: JSON) -> list[JSON]:
        before = len(await self.messages())
        async with self.http.post(f"{self.page}{path}", json=body) as response:
            assert (await response.json())["status"] == 200

        async def answered() -> list[JSON] | None:
            # An answer ends with buttons, or asks with a keyboard of replies (the phone).
            chat = await self.chat()
            new: list[JSON] = chat["messages"][before:]
            asks = chat["keyboard"] is not None
            return new if new and ("reply_markup" in new[-1] or asks) else None

        answer: list[JSON] = await eventually(answered, timeout=10)
        return answer

    async def say(self, text: str) -> list[JSON]:
        body = {"chat_id": self.chat_id, "text": text, "first_name": "Vera"}
        return await self._act("/_sandbox/say", body | {"language_code": self.language})

    async def share_phone(self, phone: str) -> list[JSON]:
        body = {"chat_id": self.chat_id, "phone_number": phone}
        before = len(await self.messages())
        async with self.http.post(f"{self.page}/_sandbox/contact", json=body) as response:
            assert (await response.json())["status"] == 200

        async def summary() -> list[JSON] | None:
            new = (await self.messages())[before:]
            return new if any("b:ok:" in str(m.get("reply_markup")) for m in new) else None

        answer: list[JSON] = await eventually(summary, timeout=10)
        return answer

    async def tap(self, prefix: str) -> list[JSON]:
        for message in reversed(await self.messages()):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            found = [b["callback_data"] for row in rows for b in row]
            found = [data for data in found if data.startswith(prefix)]
            if found:
                body = {"chat_id": self.chat_id, "message_id": message["message_id"]}
                return await self._act("/_sandbox/tap", body | {"data": found[0]})
        raise AssertionError(f"no button {prefix!r}")


@pytest.fixture
async def postgres() -> None:
    try:
        admin = await asyncpg.connect(DEMO_POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {DEMO_POSTGRES} ({type(exc).__name__})")
    await admin.close()


async def _bookings(http: ClientSession, calendar: str) -> list[JSON]:
    async with http.get(f"{calendar}/_sandbox/bookings") as response:
        bookings: list[JSON] = await response.json()
        return bookings


@pytest.mark.usefixtures("postgres")
async def test_the_demo_serves_two_salons_each_with_its_bot_language_and_calendar(
    redis_url: str, salon_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    for name in ("ANALYTICS_DATABASE_URL", "DATABASE_URL", "SECRETS_KEY"):
        monkeypatch.delenv(name, raising=False)  # the demo's own database and registry
    port = free_port(consecutive=10)  # the gateway, six stand-ins, the second salon's two, Metabase
    overrides = demo_overrides("127.0.0.1", port)
    settings = load(**{**overrides, "redis_url": redis_url, "salon_id": salon_id})
    stop = asyncio.Event()
    second_id = f"{salon_id}-ru"
    demo = asyncio.create_task(
        _run(settings, "127.0.0.1", port, embedded=False, stop=stop, second_id=second_id)
    )
    first_page, second_page = f"http://127.0.0.1:{port + 1}", f"http://127.0.0.1:{port + 7}"
    async with ClientSession() as http:

        async def live() -> bool:
            try:
                async with http.get(f"{second_page}/_sandbox/state") as response:
                    return bool((await response.json())["webhook_set"])
            except OSError:
                return False

        await eventually(live, timeout=30)
        # The first page shows the second salon's chat as one more pane, and opens it in
        # Russian; the second page is the chat alone.
        async with http.get(f"{first_page}/_sandbox/state") as response:
            panes = (await response.json())["panes"]
        assert panes[-1] == {"title": SECOND_PANE, "url": f"{second_page}/"}
        async with http.get(f"{second_page}/_sandbox/state") as response:
            state = await response.json()
        assert state["client_language"] == "ru"
        assert state["panes"] == []

        first = PageChat(http, first_page, 11, "en")
        second = PageChat(http, second_page, 11, "ru")
        hello = await first.say("/start")
        assert hello[0]["text"].startswith("Hello, Vera! Welcome to Frontdesk Demo Salon")
        privet = await second.say("/start")
        assert privet[0]["text"].startswith("Здравствуйте, Vera! Добро пожаловать в Салон «Белая")

        # A booking in the second salon lands in its own Cal.com stand-in, and only there.
        first_calendar, second_calendar = (f"http://127.0.0.1:{port + n}" for n in (2, 8))
        before = len(await _bookings(http, first_calendar))
        services = await second.tap("m:book")
        assert "Стрижка" in services[-1]["text"]
        await second.tap("b:s:strizhka")
        await second.tap("b:m:")
        await second.tap("b:d:")
        await second.tap("b:t:")
        await second.share_phone("79161234567")
        done = await second.tap("b:ok:")
        assert done[-1]["text"].startswith("✅")
        made = [b for b in await _bookings(http, second_calendar) if b.get("metadata")]
        assert [b["metadata"].get("frontdesk_chat") for b in made] == ["11"]
        assert len(await _bookings(http, first_calendar)) == before
    stop.set()
    await asyncio.wait_for(demo, 15)
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"fd:{{{salon_id}}}*", count=500)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_the_registry_is_the_demos_own_database_or_none() -> None:
    settings = load(**demo_overrides("127.0.0.1", 9000), analytics_salt="a-salt-of-sixteen-chars")
    assert with_registry(settings, DEMO_DATABASE) is None  # no analytics: no PostgreSQL
    demo_db = f"postgresql://postgres@127.0.0.1:5432/{DEMO_DATABASE}"
    own = settings.model_copy(
        update={"analytics": AnalyticsSettings(database_url=SecretStr(demo_db))}
    )
    registry = with_registry(own, DEMO_DATABASE)
    assert registry is not None
    assert registry.database_url is not None
    assert registry.database_url.get_secret_value() == demo_db
    assert registry.secrets_key is not None
    # The operator's own analytics database, or registry, is never written to by the demo.
    theirs = own.model_copy(
        update={"analytics": AnalyticsSettings(database_url=SecretStr(demo_db + "x"))}
    )
    assert with_registry(theirs, DEMO_DATABASE) is None
    named = own.model_copy(update={"database_url": SecretStr(demo_db)})
    assert with_registry(named, DEMO_DATABASE) is None


def test_without_postgresql_the_banner_says_one_salon() -> None:
    banner = _banner("127.0.0.1", 9000, embedded=True, analytics=False)
    assert "Second salon:  off: no PostgreSQL" in banner
    given = _banner("127.0.0.1", 9000, embedded=True, analytics=True)
    assert "off: the demo writes no salon into a database it was given" in given
