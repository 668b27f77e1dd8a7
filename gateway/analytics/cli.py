"""`frontdesk analytics migrate|report`: the analytics schema and its questions' answers."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

import asyncpg

from gateway.analytics import store as analytics_store
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_analytics(settings: Settings, args: argparse.Namespace) -> int:
    if settings.analytics is None:
        print("frontdesk: ANALYTICS_DATABASE_URL is not set", file=sys.stderr)
        return EXIT_CONFIG
    url = settings.analytics.database_url.get_secret_value()
    profile = settings.salon.profile
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
