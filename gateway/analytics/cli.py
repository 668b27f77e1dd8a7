"""`frontdesk analytics migrate|report` and `frontdesk metabase sync`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

import asyncpg
import httpx

from gateway.analytics import store as analytics_store
from gateway.integrations.metabase.api import MetabaseClient, MetabaseError, sync
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_analytics(settings: Settings, args: argparse.Namespace) -> int:
    if settings.analytics is None:
        print("frontdesk: ANALYTICS_DATABASE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    url = settings.analytics.database_url.get_secret_value()
    profile = settings.salon.profile
    if args.command == "metabase":
        return await _metabase_sync(settings, url)
    try:
        connection = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"frontdesk: cannot reach the analytics database: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "migrate":
            applied = await analytics_store.migrate(connection)
            print(f"applied: {', '.join(applied)}" if applied else "the schema is up to date")
            return 0
        await analytics_store.migrate(connection)
        end = args.end or datetime.now(profile.zone).date()
        start = args.start or end - timedelta(days=29)
        print(f"{profile.name}: {start.isoformat()} to {end.isoformat()}\n")
        for question in analytics_store.questions():
            columns, rows = await analytics_store.run_question(
                connection, question, profile.id, start, end
            )
            print(f"## {question.title}\n")
            print(analytics_store.table(columns, rows))
            print()
        return 0
    finally:
        await connection.close()


async def _metabase_sync(settings: Settings, database_url: str) -> int:
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
