"""`frontdesk metabase sync`: the analytics questions and their dashboard, put into Metabase.

An operator's command beside the others: it reads the questions from the analytics package and
writes them through the Metabase client, so it sits above both.
"""

from __future__ import annotations

import sys

import httpx

from gateway.analytics import store as analytics_store
from gateway.integrations.metabase.api import MetabaseClient, MetabaseError, sync
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_metabase(settings: Settings) -> int:
    """Metabase reads the analytics database itself: the sync tells it where that is."""
    if settings.analytics is None:
        print("frontdesk: ANALYTICS_DATABASE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    return await _sync(settings, settings.analytics.database_url.get_secret_value())


async def _sync(settings: Settings, database_url: str) -> int:
    metabase = settings.salon.metabase
    if metabase is None:
        print("frontdesk: METABASE_SITE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    api_key = metabase.api_key.get_secret_value() if metabase.api_key else None
    password = metabase.password.get_secret_value() if metabase.password else None
    if api_key is None and (metabase.user is None or password is None):
        print(
            "frontdesk: metabase sync needs METABASE_API_KEY, or METABASE_USER and "
            "METABASE_PASSWORD",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        async with MetabaseClient(
            metabase.site_url,
            api_key=api_key,
            user=metabase.user,
            password=password,
        ) as client:
            done = await sync(client, database_url, analytics_store.questions())
            changes = client.writes
    except (MetabaseError, httpx.HTTPError) as exc:
        print(f"frontdesk: Metabase refused or is unreachable: {exc}", file=sys.stderr)
        return 1
    found = f"database {done['database']}, {len(done['cards'])} questions"
    print(f"{found}, dashboard {done['dashboard']}")
    print("changed: " + ("; ".join(changes) if changes else "nothing (already in place)"))
    if metabase.dashboard_id != done["dashboard"]:
        print(f"set METABASE_DASHBOARD_ID={done['dashboard']} for GET /analytics/embed")
    return 0
