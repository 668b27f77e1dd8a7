"""The owner's report links to the salon's dashboard for the report's week, through a link the
gateway signs and turns into a fresh signed Metabase embed (week_link.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer

from gateway.analytics.store import questions
from gateway.analytics.weekly import Week
from gateway.integrations.metabase.api import MetabaseClient, sync
from gateway.integrations.metabase.week_link import (
    LINK_DAYS,
    LinkRefused,
    check_week_link,
    link_until,
    week_link,
)
from gateway.integrations.novu.owner_report import report_link
from gateway.sandbox.metabase import MetabaseSandbox, verify_embed
from tests.conftest import Gateway, GatewayFactory
from tests.support.clock import Clock

SECRET = "0123456789abcdef" * 4
STAFF = "staff-token-123"
WEEK = Week.parse("2026-W23")  # Monday 1 to Sunday 7 June 2026


@pytest.fixture
async def metabase() -> AsyncIterator[tuple[MetabaseSandbox, str, int]]:
    sandbox = MetabaseSandbox(api_key="mb_key", secret=SECRET)
    server = TestServer(sandbox.app())
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with MetabaseClient(url, api_key="mb_key") as client:
        done = await sync(client, "postgresql://u:p@db:5432/analytics", questions())
    yield sandbox, url, done["dashboard"]
    await server.close()


async def gateway_with_dashboard(
    start_gateway: GatewayFactory, metabase: tuple[MetabaseSandbox, str, int], **more: str
) -> Gateway:
    _, url, dashboard = metabase
    return await start_gateway(
        Clock(datetime(2026, 6, 15, 9, 0, tzinfo=UTC)),  # a week after the report's week
        metabase_site_url=url,
        metabase_secret_key=SECRET,
        metabase_dashboard_id=dashboard,
        salon_timezone="Europe/Moscow",
        **({"analytics_embed_token": STAFF} | more),
    )


async def test_the_reports_link_opens_the_dashboard_for_that_week(
    start_gateway: GatewayFactory, metabase: tuple[MetabaseSandbox, str, int]
) -> None:
    _, url, dashboard = metabase
    gateway = await gateway_with_dashboard(start_gateway, metabase)
    salon = gateway.runtime.settings.salon
    link = report_link(salon, WEEK, gateway.url)
    assert link is not None
    assert link.startswith(f"{gateway.url}/analytics/week/{salon.profile.id}/2026-W23?until=")
    assert STAFF not in link
    assert SECRET not in link
    # The gateway answers with a fresh signed embed of exactly that week, locked to the salon.
    redirect = await gateway.http.get(link, allow_redirects=False)
    assert redirect.status == 302
    assert redirect.headers["Cache-Control"] == "no-store"
    embed = redirect.headers["Location"]
    assert embed.startswith(f"{url}/embed/dashboard/")
    payload = verify_embed(embed.split("/embed/dashboard/")[1].split("#")[0], SECRET)
    assert payload["resource"] == {"dashboard": dashboard}
    assert payload["params"] == {
        "salon": salon.profile.id,
        "start": "2026-06-01",
        "end": "2026-06-07",
    }
    assert payload["exp"] - datetime.now(UTC).timestamp() == pytest.approx(600, abs=10)
    # Followed as a browser does, Metabase (its stand-in) shows the dashboard for that week.
    opened = await gateway.http.get(link)
    assert opened.status == 200
    page = await opened.text()
    assert "<h1>Frontdesk</h1>" in page
    assert "<li>start: 2026-06-01</li><li>end: 2026-06-07</li>" in page
    # The same week gives the same link (the report's text does not change between sends).
    assert report_link(salon, WEEK, gateway.url) == link


async def test_a_tampered_or_foreign_link_is_refused(
    start_gateway: GatewayFactory, metabase: tuple[MetabaseSandbox, str, int]
) -> None:
    gateway = await gateway_with_dashboard(start_gateway, metabase)
    salon = gateway.runtime.settings.salon
    link = report_link(salon, WEEK, gateway.url)
    assert link is not None
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{gateway.url}/analytics/week/{salon.profile.id}"
    tampered = {
        "another week": f"{base}/2026-W24?{parts.query}",
        "a later date": f"{base}/2026-W23?until={int(query['until']) + 86400}&sig={query['sig']}",
        "another signature": f"{base}/2026-W23?until={query['until']}&sig=A{query['sig'][1:]}",
        "signed with another token": week_link(
            gateway.url, salon.profile.id, WEEK, "another-token", salon.profile.zone
        ),
    }
    for why, url in tampered.items():
        answer = await gateway.http.get(url, allow_redirects=False)
        assert answer.status == 403, why
        assert "Location" not in answer.headers
    incomplete = await gateway.http.get(f"{base}/2026-W23?until=soon", allow_redirects=False)
    assert incomplete.status == 400
    unsigned = await gateway.http.get(f"{base}/2026-W23", allow_redirects=False)
    assert unsigned.status == 400
    unknown = await gateway.http.get(
        f"{gateway.url}/analytics/week/nobody/2026-W23?{parts.query}", allow_redirects=False
    )
    assert unknown.status == 404
    # A gateway whose staff token was rotated no longer opens links signed with the old one.
    rotated = await gateway_with_dashboard(
        start_gateway, metabase, analytics_embed_token="a-new-staff-token"
    )
    moved = link.replace(gateway.url, rotated.url)
    assert (await rotated.http.get(moved, allow_redirects=False)).status == 403


async def test_no_link_without_the_dashboards_settings_or_a_public_url(
    start_gateway: GatewayFactory, metabase: tuple[MetabaseSandbox, str, int]
) -> None:
    bare = await start_gateway()
    assert report_link(bare.runtime.settings.salon, WEEK, bare.url) is None
    answer = await bare.http.get(
        f"{bare.url}/analytics/week/{bare.runtime.settings.salon.profile.id}/2026-W23?until=1&sig=x"
    )
    assert answer.status == 404
    gateway = await gateway_with_dashboard(start_gateway, metabase)
    assert report_link(gateway.runtime.settings.salon, WEEK, None) is None


def test_a_link_opens_for_a_quarter_after_its_week_then_is_gone() -> None:
    zone = ZoneInfo("Europe/Moscow")
    until = link_until(WEEK, zone)
    assert datetime.fromtimestamp(until - 1, zone).date() == WEEK.end + timedelta(days=LINK_DAYS)
    query = parse_qs(urlsplit(week_link("https://gw.example", "s1", WEEK, STAFF, zone)).query)
    assert query["until"] == [str(until)]
    signed = (query["until"][0], query["sig"][0])
    a_week_later = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    assert check_week_link("s1", "2026-W23", *signed, STAFF, a_week_later) == WEEK
    with pytest.raises(LinkRefused) as gone:
        check_week_link("s1", "2026-W23", *signed, STAFF, datetime.fromtimestamp(until, UTC))
    assert gone.value.status == 410
    with pytest.raises(LinkRefused) as elsewhere:
        check_week_link("s2", "2026-W23", *signed, STAFF, a_week_later)
    assert elsewhere.value.status == 403
