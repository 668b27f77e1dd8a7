"""The owner's weekly report: the dashboard's questions for one week, sent once through Novu."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from bot.i18n import Catalogs
from gateway.analytics.facts import Recorder
from gateway.analytics.report_text import render
from gateway.analytics.store import insert, migrate, questions, run_question
from gateway.analytics.weekly import REPORTED, Week, compute
from gateway.app import SERVED
from gateway.integrations.novu import workflows as novu_workflows
from gateway.integrations.novu.api import NovuClient
from gateway.integrations.novu.owner_report import ScheduledReports, send_week
from gateway.integrations.novu.owner_workflow import OWNER_REPORT
from gateway.pipeline.resilience import CircuitBreaker
from gateway.salon_settings import SalonSettings
from gateway.sandbox.novu import NovuSandbox
from tests.analytics_db import analytics_db as analytics_db  # the fixture
from tests.conftest import GatewayFactory
from tests.gateway.test_cli import run
from tests.support.clock import Clock

KEY = "novu-key"
SALT = "salt-salt-salt-salt"
ZONE = "Europe/Moscow"
WEEK = Week.parse("2026-W23")  # Monday 1 to Sunday 7 June 2026
MONDAY = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 10:00 in Moscow


@pytest.fixture
async def novu() -> AsyncIterator[tuple[NovuSandbox, str]]:
    sandbox = NovuSandbox(KEY, webhook_secret="s", clock=Clock(MONDAY))
    server = TestServer(sandbox.app())
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    client = NovuClient(url, KEY, CircuitBreaker("novu"))
    await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
    await client.aclose()
    yield sandbox, url
    await sandbox.close()
    await server.close()


def salon(novu_url: str, **names: str) -> SalonSettings:
    return SalonSettings.from_values(
        {
            "SALON_ID": "s1",
            "SALON_NAME": "Lime",
            "SALON_TIMEZONE": ZONE,
            "NOVU_API_URL": novu_url,
            "NOVU_API_KEY": KEY,
            "OWNER_EMAIL": "owner@lime.example",
            **names,
        }
    )


def seeded_facts() -> list[dict[str, Any]]:
    """A week of two channels: 3 started booking, 2 booked, 2 handoffs, 2 first replies, 3
    visits of which one answered a reminder and one was missed; and a fact the week before."""
    recorder = Recorder("s1", SALT, ZONE, timedelta(hours=1))
    made: list[dict[str, Any]] = []

    def add(kind: str, who: str, hours: float, **fields: Any) -> None:
        at = MONDAY + timedelta(hours=hours)
        made.append({"id": f"f{len(made)}", **recorder.fact(kind, who, at, **fields)})

    for who in ("tg:1", "tg:2", "wa:3", "wa:4"):
        add("conversation_started", who, 1)
    for who in ("tg:1", "tg:2", "wa:3"):
        add("step_reached", who, 2, step="book.service")
    add("booking_created", "tg:1", 3, booking="b1", origin="chat")
    add("booking_created", "wa:3", 3, booking="b2", origin="chat")
    add("booking_created", "tg:9", 30, booking="b3", origin="calcom")
    add("handoff_requested", "tg:2", 4, reason="asked_for_person")
    add("handoff_requested", "wa:4", 5, reason="complaint")
    add("agent_first_reply", "tg:2", 4.5, seconds=120)
    add("agent_first_reply", "wa:4", 5.2, seconds=600)
    add("reminder_answered", "tg:1", 40, booking="b1")
    add("no_show_marked", "wa:3", 60, booking="b2")
    add("booking_created", "tg:5", -48, booking="b0", origin="chat")  # the week before
    return made


@pytest.fixture
async def seeded(analytics_db: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(analytics_db)
    await migrate(connection)
    await insert(connection, seeded_facts())
    yield connection
    await connection.close()


async def test_the_reports_numbers_are_the_dashboard_questions_answers(
    seeded: asyncpg.Connection,
) -> None:
    report = await compute(seeded, "s1", WEEK)
    by_slug = {question.slug: question for question in questions()}
    for slug in REPORTED:
        assert report.answers[slug] == await run_question(
            seeded, by_slug[slug], "s1", WEEK.start, WEEK.end
        )
    figures = report.figures()
    assert figures["bookingsByChannel"] == {"telegram": 2, "whatsapp": 1}
    assert figures["bookings"] == 3
    assert figures["handoffs"] == 2
    conversion = {row["channel"]: row for row in figures["conversion"]}
    assert conversion["telegram"]["booked"] == 1
    assert conversion["telegram"]["started"] == 2
    assert conversion["whatsapp"]["conversion_percent"] == 100.0
    assert sum(row["replies"] for row in figures["firstResponse"]) == 2
    no_shows = {row["reminder"]: row for row in figures["noShows"]}
    assert no_shows["answered a reminder"]["no_shows"] == 0
    assert no_shows["no answered reminder"]["no_shows"] == 1
    # The week before is another week.
    before = await compute(seeded, "s1", Week.parse("2026-W22"))
    assert before.bookings_by_channel() == {"telegram": 1}


async def test_a_week_is_sent_once_to_the_owner_in_app_and_by_email(
    seeded: asyncpg.Connection, novu: tuple[NovuSandbox, str]
) -> None:
    sandbox, url = novu
    settings = salon(url, DEFAULT_LOCALE="en")
    client = NovuClient(url, KEY, CircuitBreaker("novu"))
    catalogs = Catalogs(default_locale="en")
    try:
        assert await send_week(client, seeded, settings, WEEK, catalogs, None) is True
        await sandbox.settle()
        assert await send_week(client, seeded, settings, WEEK, catalogs, None) is False
    finally:
        await client.aclose()
    [run_] = sandbox.runs
    assert run_.workflow == OWNER_REPORT
    assert run_.subscriber == "s1:owner"
    assert run_.transaction == "s1:report:2026-W23"
    report = await compute(seeded, "s1", WEEK)
    assert {k: run_.payload[k] for k in report.figures()} == report.figures()
    assert sandbox.subscribers["s1:owner"]["email"] == "owner@lime.example"
    channels = {sent["channel"]: sent for sent in sandbox.sent}
    assert set(channels) == {"in_app", "email"}
    assert channels["email"]["to"] == "owner@lime.example"
    assert channels["email"]["subject"] == "Lime: the week 2026-W23"
    assert "Bookings: 3" in channels["in_app"]["text"]
    assert [call for call in sandbox.calls if call[1] == "/v1/events/trigger"] == [
        ("POST", "/v1/events/trigger")
    ]


async def test_a_report_novu_refuses_is_not_recorded_as_sent(
    seeded: asyncpg.Connection, novu: tuple[NovuSandbox, str]
) -> None:
    sandbox, url = novu
    del sandbox.workflows[OWNER_REPORT]  # not synced: Novu answers workflow_not_found (422)
    client = NovuClient(url, KEY, CircuitBreaker("novu"))
    settings, catalogs = salon(url), Catalogs()
    try:
        with pytest.raises(Exception, match="workflow_not_found"):
            await send_week(client, seeded, settings, WEEK, catalogs, None)
        assert await seeded.fetchval("SELECT count(*) FROM owner_reports") == 0
        await novu_workflows.sync(client, "https://gw.example/webhooks/novu")
        assert await send_week(client, seeded, settings, WEEK, catalogs, None) is True
    finally:
        await client.aclose()


async def test_the_owners_language_decides_the_text(seeded: asyncpg.Connection) -> None:
    report = await compute(seeded, "s1", WEEK)
    catalogs = Catalogs()
    russian = render(report, catalogs, "ru", "Лайм", "https://gw.example/analytics/embed/s1")
    english = render(report, catalogs, "en", "Lime", None)
    assert russian.subject == "Лайм: неделя 2026-W23"
    # Babel (CLDR) puts a narrow no-break space before "г.".
    assert "С 1 июня 2026\u202fг. по 7 июня 2026\u202fг.\n" in russian.text
    assert "Записи: 3" in russian.text
    assert "  whatsapp: 1 из 1 (100 %)" in russian.text
    assert "  не ответили на напоминание: записей 2, неявок 1, отмен 0" in russian.text
    assert "Дашборд: https://gw.example/analytics/embed/s1" in russian.text
    # Handoff reasons in the owner's words; one the catalogue has no words for, as recorded.
    assert "  жалоба: 1\n" in russian.text
    assert "  a complaint: 1\n" in english.text
    assert "  asked_for_person: 1\n" in english.text
    assert "From June 1, 2026 to June 7, 2026\n" in english.text
    assert "  telegram: 1 of 2 (50 %)" in english.text
    assert "median 120 s" in english.text
    assert "report." not in russian.text + english.text  # no key left untranslated


async def test_the_schedule_sends_once_a_week_across_restarts(
    seeded: asyncpg.Connection, analytics_db: str, novu: tuple[NovuSandbox, str]
) -> None:
    sandbox, url = novu
    settings = salon(url, REPORT_SCHEDULE="mon 09:00", OWNER_LOCALE="ru")
    client = NovuClient(url, KEY, CircuitBreaker("novu"))
    clock = Clock(datetime(2026, 6, 8, 5, 59, tzinfo=UTC))  # Monday 08:59 in Moscow
    try:
        schedule = ScheduledReports(settings, client, analytics_db, None, clock)
        assert await schedule.run_once() is False  # not yet
        clock.advance(60)
        assert await schedule.run_once() is True  # W23, the week that ended
        clock.advance(3600)
        assert await schedule.run_once() is False
        restarted = ScheduledReports(settings, client, analytics_db, None, clock)
        assert await restarted.run_once() is False  # the record says it was sent
        clock.advance(7 * 24 * 3600)
        assert await restarted.run_once() is True  # W24
    finally:
        await client.aclose()
    assert [r.transaction for r in sandbox.runs] == ["s1:report:2026-W23", "s1:report:2026-W24"]
    assert sandbox.runs[0].payload["subject"] == "Lime: неделя 2026-W23"


def test_the_owner_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="report_schedule") as raised:
        SalonSettings.from_values({"OWNER_EMAIL": "nope", "REPORT_SCHEDULE": "monday 9"})
    assert "owner_email" in str(raised.value)
    with pytest.raises(ValueError, match="owner_locale"):
        SalonSettings.from_values({"OWNER_EMAIL": "o@x.example", "OWNER_LOCALE": "de"})
    # A schedule with nobody to send to is half configured: refused, not silently off.
    with pytest.raises(ValueError, match="set OWNER_EMAIL too"):
        SalonSettings.from_values({"REPORT_SCHEDULE": "sun 21:30"})
    assert SalonSettings.from_values({"OWNER_LOCALE": "ru"}).owner is None
    with pytest.raises(ValueError, match="no such week"):
        Week.parse("2026-W54")


async def test_the_command_sends_a_week_once(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    seeded: asyncpg.Connection,
    analytics_db: str,
    novu: tuple[NovuSandbox, str],
) -> None:
    sandbox, url = novu
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", analytics_db)
    monkeypatch.setenv("ANALYTICS_SALT", SALT)
    monkeypatch.setenv("SALON_ID", "s1")
    assert await run("analytics", "report", "--send", "--week", "2026-W23") == 2  # no Novu
    monkeypatch.setenv("NOVU_API_URL", url)
    monkeypatch.setenv("NOVU_API_KEY", KEY)
    monkeypatch.setenv("OWNER_EMAIL", "owner@lime.example")
    assert await run("analytics", "report", "--send", "--week", "2026-W23") == 0
    assert "2026-W23: sent" in capsys.readouterr().out
    assert await run("analytics", "report", "--send", "--week", "2026-W23") == 0
    assert "already sent" in capsys.readouterr().out
    assert len(sandbox.runs) == 1
    with pytest.raises(SystemExit):
        await run("analytics", "report", "--send", "--week", "2026-49")


@pytest.mark.parametrize(("schedule", "running"), [("mon 09:00", True), ("", False)])
async def test_the_gateway_looks_for_the_report_only_with_a_schedule(
    start_gateway: GatewayFactory,
    analytics_db: str,
    novu: tuple[NovuSandbox, str],
    schedule: str,
    running: bool,
) -> None:
    _, url = novu
    gateway = await start_gateway(
        novu_api_url=url,
        novu_api_key=KEY,
        service_timeout_seconds=1.0,
        analytics_database_url=analytics_db,
        analytics_salt=SALT,
        owner_email="owner@nord.example",
        report_schedule=schedule,
    )
    salon_id = gateway.runtime.settings.salon.profile.id
    live = gateway.app[SERVED].live[salon_id].running
    assert live is not None
    assert ("owner report" in live.background.periodic) is running
