"""The catalogue from Cal.com: services & prices as clients see them, and when Cal.com is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from bot.catalogue import Master, Service
from bot.flows.services import price_text
from bot.ports import CalendarUnavailable
from gateway.integrations.calcom.api import CalcomClient, EventType
from gateway.integrations.calcom.catalogue import CalcomCatalogue, services_of
from gateway.pipeline.resilience import CircuitBreaker
from gateway.sandbox.calcom import CalcomSandbox
from tests.conftest import CONTRACTS, GatewayFactory, Sandbox, eventually

KEY = "cal_test_key"


@dataclass
class Calendar:
    sandbox: CalcomSandbox
    url: str
    team_id: int


@pytest.fixture
async def calendar() -> AsyncIterator[Calendar]:
    spec = CONTRACTS / "calcom-v2.openapi.json"
    sandbox = CalcomSandbox(KEY, spec if spec.exists() else None)
    team_id = sandbox.seed_demo_salon(zone="Europe/Moscow")
    runner: web.AppRunner = await sandbox.serve("127.0.0.1", 0)
    port = runner.addresses[0][1]
    yield Calendar(sandbox, f"http://127.0.0.1:{port}", team_id)
    await runner.cleanup()
    await sandbox.close()


def event_type(**fields: object) -> EventType:
    base: dict[str, object] = {"id": 1, "slug": "cut", "title": "Cut", "lengthInMinutes": 60}
    return EventType.model_validate({**base, **fields})


def test_event_types_sharing_a_slug_are_one_service_with_its_masters() -> None:
    services = services_of(
        [
            event_type(id=1, users=[{"id": 7, "name": "Anna"}], metadata={"price": "2500"}),
            event_type(id=2, users=[{"id": 8, "name": "Olga"}]),
            event_type(id=3, slug="secret", title="Staff only", hidden=True),
            event_type(
                id=4,
                slug="nails",
                title="Manicure",
                price=180000,
                currency="rub",
                metadata={"category": "Nails"},
            ),
        ],
        currency="rub",
    )
    assert services == (
        Service("cut", "Cut", 60, "2500", "RUB", masters=(Master(7, "Anna"), Master(8, "Olga"))),
        Service("nails", "Manicure", 60, "1800", "RUB", category="Nails"),
    )


@pytest.mark.parametrize(
    ("price", "currency", "locale", "shown"),
    [
        ("2500", "RUB", "ru", "2\u00a0500\u00a0₽"),
        ("2500", "RUB", "en", "RUB\u00a02,500"),
        ("49.90", "EUR", "en", "€49.90"),
        ("from 2500", "RUB", "en", "from 2500"),
        ("2500", None, "en", "2500"),
        (None, "RUB", "en", None),
    ],
)
def test_prices_read_naturally(
    price: str | None, currency: str | None, locale: str, shown: str | None
) -> None:
    assert price_text(Service("x", "X", 30, price, currency), locale) == shown


async def test_the_catalogue_is_cached_and_survives_an_outage(calendar: Calendar) -> None:
    now = [0.0]
    async with CalcomClient(calendar.url, KEY, breaker=CircuitBreaker("calcom")) as client:
        catalogue = CalcomCatalogue(
            client, team_id=calendar.team_id, currency="RUB", clock=lambda: now[0]
        )
        services = await catalogue.services()
        assert [s.key for s in services][:2] == ["womens-haircut", "mens-haircut"]
        # Women's haircut: one event type per master, so the client can choose;
        # men's haircut: one round-robin event type, so Cal.com picks a free master.
        assert {m.name for m in services[0].masters} == {"Anna Petrova", "Olga Smirnova"}
        assert services[1].masters == ()
        calls = len(calendar.sandbox.calls)
        assert await catalogue.services() == services
        assert len(calendar.sandbox.calls) == calls  # served from the cache

        now[0] = 301.0  # expired, and Cal.com fails: the last catalogue is better than none
        calendar.sandbox.fail_next("getTeamEventTypes", status=500, times=10)
        assert await catalogue.services() == services

        fresh = CalcomCatalogue(client, team_id=calendar.team_id, currency="RUB")
        with pytest.raises(CalendarUnavailable):
            await fresh.services()


async def test_services_and_prices_in_the_chat(
    start_gateway: GatewayFactory, sandbox: Sandbox, calendar: Calendar
) -> None:
    await start_gateway(
        calcom_api_url=calendar.url,
        calcom_api_key=KEY,
        calcom_team_id=calendar.team_id,
        salon_currency="RUB",
    )
    tg = sandbox.telegram
    await tg.client_says(71, "/start", language_code="ru")
    menu = (await eventually(lambda: tg.messages_for(71)))[0]
    await tg.client_taps(71, menu["message_id"], "m:svc")
    text = (await eventually(lambda: tg.messages_for(71)[1:]))[0]["text"]
    assert text.startswith("Наши услуги и цены:")
    assert "\nHair\n• Women's haircut — 60 минут, 2\u00a0500\u00a0₽" in text
    assert "• Hair colouring — 120 минут, 6\u00a0500\u00a0₽" in text
    assert "\nNails\n• Manicure — 60 минут, 1\u00a0800\u00a0₽" in text

    await tg.client_says(72, "/start", language_code="en")
    menu = (await eventually(lambda: tg.messages_for(72)))[0]
    await tg.client_taps(72, menu["message_id"], "m:svc")
    text = (await eventually(lambda: tg.messages_for(72)[1:]))[0]["text"]
    assert "• Men's haircut — 30 min, RUB\u00a01,200" in text


async def test_services_when_cal_com_is_down(
    start_gateway: GatewayFactory, sandbox: Sandbox, calendar: Calendar
) -> None:
    calendar.sandbox.fail_next("getTeamEventTypes", status=503, times=20)
    await start_gateway(
        calcom_api_url=calendar.url, calcom_api_key=KEY, calcom_team_id=calendar.team_id
    )
    tg = sandbox.telegram
    await tg.client_says(73, "/start")
    menu = (await eventually(lambda: tg.messages_for(73)))[0]
    await tg.client_taps(73, menu["message_id"], "m:svc")
    reply = (await eventually(lambda: tg.messages_for(73)[1:], timeout=15))[0]
    assert reply["text"].startswith("I cannot reach our price list right now.")
    assert "📞 +7 495 123-45-67" in reply["text"]
    assert reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "m:book"


def test_titles_and_categories_per_language_come_from_the_metadata() -> None:
    """Cal.com returns an event type's `metadata` as a free-form object
    (EventTypeOutput_2024_06_14 `metadata: {type: object}`): the salon's `title_ru`,
    `category_ru`, ... keys travel as they are; blank ones and other languages are ignored."""
    metadata = {
        "category": "Hair",
        "title_ru": "Стрижка",
        "category_ru": "Волосы",
        "title_en": "  ",
        "title_de": "Haarschnitt",
    }
    [service, plain] = services_of(
        [
            event_type(users=[{"id": 7, "name": "Anna"}], metadata=metadata),
            event_type(id=2, slug="brows", title="Brows"),
        ],
        None,
    )
    assert service.titles == (("ru", "Стрижка"),)
    assert service.categories == (("ru", "Волосы"),)
    russian = service.in_language("ru")
    assert (russian.title, russian.category) == ("Стрижка", "Волосы")
    english = service.in_language("en")
    assert (english.title, english.category) == ("Cut", "Hair")
    assert plain.in_language("ru") == plain  # nothing given: the salon's own words
