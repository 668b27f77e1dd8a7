"""`frontdesk analytics report --send [--week 2026-W49]`: the owner's report, now.

Without `--week`, the last whole week in the salon's time zone (the one the schedule sends on
Monday). A week already sent is not sent again (exit 0, saying so)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

import asyncpg

from bot.i18n import Catalogs
from gateway.analytics.weekly import Week
from gateway.integrations.novu.api import NovuRejected, NovuUnavailable
from gateway.integrations.novu.factory import novu_client
from gateway.integrations.novu.owner_report import ReportNotSent, send_week
from gateway.pipeline.resilience import command_breaker
from gateway.settings import Settings

EXIT_CONFIG = 2


async def run_report_send(settings: Settings, args: argparse.Namespace) -> int:
    salon = settings.salon
    if settings.analytics is None or salon.novu is None or salon.owner is None:
        print(
            "frontdesk: sending the report needs ANALYTICS_DATABASE_URL, NOVU_API_URL, "
            "NOVU_API_KEY and OWNER_EMAIL",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    today = datetime.now(salon.profile.zone).date()
    week: Week = args.week or Week.of(today - timedelta(days=7))
    client = novu_client(salon.novu, command_breaker, settings.service_timeout_seconds)
    url = settings.analytics.database_url.get_secret_value()
    try:
        connection = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"frontdesk: cannot reach the analytics database: {exc}", file=sys.stderr)
        return 1
    catalogs = Catalogs(default_locale=salon.profile.default_locale)
    try:
        sent = await send_week(client, connection, salon, week, catalogs, settings.public_url)
    except (NovuRejected, ReportNotSent) as exc:
        print(f"frontdesk: Novu did not take the report: {exc}", file=sys.stderr)
        print("  (`frontdesk novu sync` creates its workflow)", file=sys.stderr)
        return 1
    except NovuUnavailable as exc:
        print(f"frontdesk: cannot reach Novu: {exc}", file=sys.stderr)
        return 1
    finally:
        await connection.close()
        await client.aclose()
    print(f"{week.name}: sent" if sent else f"{week.name}: already sent, not sent again")
    return 0
