"""`frontdesk check` lists the owner's report settings; bad ones stop the command at start-up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.ops.report_check import report_lines
from gateway.settings import Settings, load
from tests.gateway.test_cli import run

OWNER = "anna.owner@lime.example"


def settings(**names: object) -> Settings:
    return load(_env_file=None, salon_id="main", salon_timezone="Europe/Moscow", **names)


async def test_check_lists_the_report_with_the_owner_masked_and_the_next_send(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALON_TIMEZONE", "Europe/Moscow")
    assert await run("check") == 0
    assert "[off ] report    off: OWNER_EMAIL is not set (no owner's report)" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("OWNER_EMAIL", OWNER)
    monkeypatch.setenv("OWNER_LOCALE", "ru")
    monkeypatch.setenv("REPORT_SCHEDULE", "mon 09:00")
    assert await run("check") == 1  # no Novu, no analytics database: it cannot be sent
    out = capsys.readouterr().out
    assert OWNER not in out
    assert (
        "[FAIL] report    to a***@lime.example in ru, but sending it needs "
        "NOVU_API_URL and NOVU_API_KEY, ANALYTICS_DATABASE_URL"
    ) in out
    assert "[off ] report    every mon 09:00 (Europe/Moscow); next Mon " in out


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ({"REPORT_SCHEDULE": "monday 9"}, "REPORT_SCHEDULE: a weekday and a time, as in"),
        ({"REPORT_SCHEDULE": "mon 25:00"}, "REPORT_SCHEDULE: a weekday and a time, as in"),
        ({"OWNER_EMAIL": "owner at lime"}, "OWNER_EMAIL: does not look like an email address"),
        ({"OWNER_LOCALE": "de"}, "OWNER_LOCALE: must be one of ru, en"),
        ({"REPORT_SCHEDULE": "sun 21:30", "OWNER_EMAIL": ""}, "REPORT_SCHEDULE: set OWNER_EMAIL"),
    ],
)
async def test_bad_report_settings_stop_the_command_saying_which(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    names: dict[str, str],
    problem: str,
) -> None:
    monkeypatch.setenv("OWNER_EMAIL", OWNER)
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    assert await run("check") == 2
    assert problem in capsys.readouterr().err


def test_the_next_send_and_its_week_on_the_salons_clock() -> None:
    configured = settings(
        owner_email=OWNER,
        report_schedule="mon 09:00",
        novu_api_url="http://novu.example",
        novu_api_key="k",
        analytics_database_url="postgresql://h/d",
        analytics_salt="salt-salt-salt-salt",
    )
    # Monday 7 December 2026, 08:30 in Moscow: today's send is still to come.
    before = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    [(ok, line), link] = report_lines(configured, before)
    assert ok is True
    assert line == (
        "to a***@lime.example in en, every mon 09:00 (Europe/Moscow); "
        "next Mon 2026-12-07 09:00, the week 2026-W49"
    )
    assert link == (None, "no dashboard link (PUBLIC_URL and the embed settings make one)")
    # Half an hour after it: next Monday, for the week that is running now.
    [(_, line), _] = report_lines(configured, datetime(2026, 12, 7, 6, 30, tzinfo=UTC))
    assert line.endswith("next Mon 2026-12-14 09:00, the week 2026-W50")
    on_demand = settings(
        owner_email=OWNER,
        novu_api_url="http://novu.example",
        novu_api_key="k",
        analytics_database_url="postgresql://h/d",
        analytics_salt="salt-salt-salt-salt",
        public_url="https://gw.example",
        metabase_site_url="https://mb.example",
        metabase_secret_key="s" * 64,
        metabase_dashboard_id=3,
        analytics_embed_token="staff-token",
    )
    [(ok, line), (linked, link_line)] = report_lines(on_demand, before)
    assert ok is True
    assert "on demand only (REPORT_SCHEDULE is empty)" in line
    assert linked is True
    assert "https://gw.example/analytics/week/main/<week>, opens 92 days" in link_line
