"""`frontdesk`: serve, demo, check, setup, webhooks, dlq, redis, novu, analytics, metabase,
salons."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from aiohttp import web

from gateway.ops.salons import add_salon_commands, run_salons
from gateway.pipeline.logs import MaskedAccessLogger, Scrubber, configure, scrubbed_output
from gateway.settings import Settings, SettingsError, load

log = logging.getLogger("frontdesk.cli")

EXIT_CONFIG = 2
_SALON_HELP = "a registry salon's id (default: the environment's salon, SALON_ID)"


def _days(value: str) -> float:
    days = float(value)
    if not 0 <= days <= 36_500:  # also refuses "nan" and "inf"
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}")
    return days


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="frontdesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway and its workers")
    serve.add_argument("--host", help="listen address (default HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default PORT or 8080)")

    demo = commands.add_parser("demo", help="the gateway wired to the local sandbox, no accounts")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="gateway port; the sandbox uses +1")

    check = commands.add_parser("check", help="reach every configured service and say what works")
    check.add_argument("--salon", metavar="ID", help=_SALON_HELP)
    setup = commands.add_parser(
        "setup", help="every provider-side step for the salon, idempotently, then check"
    )
    setup.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")

    webhooks = commands.add_parser("webhooks", help="register the gateway's webhook URLs")
    webhook_commands = webhooks.add_subparsers(dest="action", required=True)
    setter = webhook_commands.add_parser(
        "set", help="register with Telegram and Cal.com (needs PUBLIC_URL)"
    )
    setter.add_argument("--drop-pending-updates", action="store_true")
    webhook_commands.add_parser("info", help="show what Telegram has registered")

    letters = commands.add_parser("dlq", help="list and replay dead letters")
    letter_commands = letters.add_subparsers(dest="action", required=True)
    one_salon = argparse.ArgumentParser(add_help=False)
    one_salon.add_argument("--salon", metavar="ID", help=_SALON_HELP)
    listing = letter_commands.add_parser(
        "list", help="show dead letters, newest last", parents=[one_salon]
    )
    listing.add_argument("--limit", type=int, default=50)
    replay = letter_commands.add_parser(
        "replay", help="queue a dead letter again", parents=[one_salon]
    )
    replay.add_argument("ids", nargs="+", metavar="ID", help="dead letter id, or 'all'")
    purge = letter_commands.add_parser(
        "purge", help="delete old dead letters (they hold bodies)", parents=[one_salon]
    )
    purge.add_argument(
        "--older-than",
        type=_days,
        required=True,
        metavar="DAYS",
        help="delete those that failed more than DAYS days ago (0: all)",
    )

    redis = commands.add_parser("redis", help="the keys in Redis")
    redis.add_subparsers(dest="action", required=True).add_parser(
        "migrate-keys", help="rename keys of the untagged layout (CHANGELOG, Upgrading)"
    )

    novu = commands.add_parser("novu", help="Novu's workflows for Frontdesk")
    novu_commands = novu.add_subparsers(dest="action", required=True)
    novu_commands.add_parser(
        "sync", help="create or update the workflows in Novu (needs NOVU_* and PUBLIC_URL)"
    )

    analytics = commands.add_parser("analytics", help="the salon's analytics (PostgreSQL)")
    analytics_commands = analytics.add_subparsers(dest="action", required=True)
    analytics_commands.add_parser("migrate", help="create or update the analytics schema")
    report = analytics_commands.add_parser("report", help="print every question's answer")
    report.add_argument("--from", dest="start", type=date.fromisoformat, help="first day")
    report.add_argument("--to", dest="end", type=date.fromisoformat, help="last day (today)")
    report.add_argument(
        "--send", action="store_true", help="send the owner's weekly report through Novu"
    )
    report.add_argument("--week", type=_iso_week, help="with --send: e.g. 2026-W49 (last week)")

    metabase = commands.add_parser("metabase", help="Metabase's questions and dashboard")
    metabase_commands = metabase.add_subparsers(dest="action", required=True)
    metabase_commands.add_parser("sync", help="create or update them in Metabase (idempotent)")
    commands.add_parser(
        "dashboard-app",
        help="the URLs to add in Chatwoot as Dashboard Apps (Bookings; Notices with Novu)",
    )
    add_salon_commands(commands)

    args = parser.parse_args(argv)
    # Every line any command prints (its own, a library's, a traceback) goes through the
    # scrubber: without the settings, phone numbers and bot tokens; with them, every secret too.
    if args.command == "demo":
        from gateway.ops.demo import run_demo

        with scrubbed_output(Scrubber()):
            code: int = run_demo(args.host, args.port)
        return code
    try:
        if args.command == "setup":
            from gateway.ops.setup import load_for_setup

            settings = load_for_setup()
        else:
            settings = load()
    except SettingsError as exc:
        with scrubbed_output(Scrubber()):
            print("frontdesk: the configuration has problems:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    with scrubbed_output(Scrubber(settings.secrets())):
        return _command(args, settings)


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    configure("text", settings.log_level, settings.secrets())
    if args.command == "check":
        from gateway.ops.check import check_salon

        return asyncio.run(check_salon(settings, args.salon))
    if args.command == "setup":
        from gateway.ops.setup import setup_environment

        return asyncio.run(setup_environment(settings, args.dry_run))
    if args.command == "webhooks":
        from gateway.ops.check import set_webhooks, show_webhooks

        if args.action == "set":
            return asyncio.run(set_webhooks(settings, drop_pending=args.drop_pending_updates))
        return asyncio.run(show_webhooks(settings))
    if args.command == "novu":
        return asyncio.run(_novu_sync(settings))
    if args.command == "salons":
        return run_salons(settings, args)
    if args.command == "dashboard-app":
        return _dashboard_app_url(settings)
    if args.command == "metabase":
        from gateway.ops.metabase import run_metabase

        return asyncio.run(run_metabase(settings))
    if args.command == "redis":
        from gateway.ops.redis_keys import run_migrate_keys

        return asyncio.run(run_migrate_keys(settings))
    if args.command == "analytics" and getattr(args, "send", False):
        from gateway.ops.owner_report import run_report_send

        return asyncio.run(run_report_send(settings, args))
    if args.command == "analytics":
        from gateway.analytics.cli import run_analytics

        return asyncio.run(run_analytics(settings, args))
    from gateway.ops.dead_letters import run_dead_letters

    return asyncio.run(run_dead_letters(settings, args))


def _iso_week(text: str) -> Any:
    from gateway.analytics.weekly import Week

    try:
        return Week.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _novu_sync(settings: Settings) -> int:
    from gateway.integrations.novu.api import NovuRejected, NovuUnavailable
    from gateway.integrations.novu.factory import novu_client
    from gateway.integrations.novu.workflows import sync
    from gateway.pipeline.resilience import command_breaker
    from gateway.wiring.routes import webhook_url

    novu = settings.salon.novu
    if novu is None or settings.public_url is None:
        print(
            "frontdesk: novu sync needs NOVU_API_URL, NOVU_API_KEY and PUBLIC_URL "
            "(Novu's workflows post to PUBLIC_URL/webhooks/novu)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    client = novu_client(novu, command_breaker, settings.service_timeout_seconds)
    try:
        done = await sync(client, webhook_url(settings.public_url, "novu"))
    except NovuRejected as exc:
        print(f"frontdesk: Novu refused the workflows: {exc}", file=sys.stderr)
        print("  (README, Notifications: what a Novu without these steps needs)", file=sys.stderr)
        return 1
    except NovuUnavailable as exc:
        # No answer, a 5xx or a 429: Novu is down or busy, not refusing.
        print(f"frontdesk: cannot reach Novu: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    for workflow_id, what in done:
        print(f"{workflow_id:<22} {what}")
    return await _novu_staff(settings)


async def _novu_staff(settings: Settings) -> int:
    """The salon's staff as Novu subscribers, from Chatwoot's agent list (issue 21)."""
    from gateway.integrations.chatwoot.api import is_failure
    from gateway.integrations.chatwoot.factory import chatwoot_client
    from gateway.integrations.http import ServiceRejected, ServiceUnavailable
    from gateway.integrations.novu.factory import novu_client
    from gateway.integrations.novu.staff import sync_staff, topic_key
    from gateway.pipeline.resilience import command_breaker

    salon = settings.salon
    if salon.chatwoot is None or salon.novu is None:
        print("staff: no Chatwoot (CHATWOOT_*), so no staff subscribers")
        return 0
    timeout = settings.service_timeout_seconds
    breaker = command_breaker("chatwoot", is_failure)
    chatwoot = chatwoot_client(salon.chatwoot, breaker, timeout)
    novu = novu_client(salon.novu, command_breaker, timeout)
    try:
        ids = await sync_staff(novu, await chatwoot.agents(), salon.profile.id)
    except (ServiceRejected, ServiceUnavailable) as exc:
        print(f"frontdesk: staff not synced: {exc}", file=sys.stderr)
        return 1
    finally:
        await chatwoot.aclose()
        await novu.aclose()
    print(f"staff: {len(ids)} subscribers in topic {topic_key(salon.profile.id)}")
    return 0


def _dashboard_app_url(settings: Settings) -> int:
    from gateway.dashboard_app import tokens
    from gateway.dashboard_app.notices_routes import notices_url
    from gateway.dashboard_app.routes import page_url

    salon = settings.salon
    if salon.chatwoot is None or salon.calcom is None or settings.public_url is None:
        print(
            "frontdesk: the Dashboard App needs Chatwoot (CHATWOOT_*), Cal.com (CALCOM_*) "
            "and PUBLIC_URL",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    secret = tokens.secret_for(
        salon.profile.id,
        salon.chatwoot.api_token.get_secret_value(),
        settings.dashboard_app_key_version,
    )
    # The URL carries the salon's link key: print it for the operator, who pastes it into
    # Chatwoot (the scrubber only hides the configured secrets, of which the key is none).
    print(f"Bookings  {page_url(settings.public_url, salon.profile.id, secret)}")
    if salon.novu is not None:
        # The second app: each staff member's Novu in-app feed (README, Notices).
        print(f"Notices   {notices_url(settings.public_url, salon.profile.id, secret)}")
    return 0


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    configure(settings.log_format, settings.log_level, settings.secrets())
    if settings.redis_url is None:
        print("frontdesk: REDIS_URL is required for serve (try `frontdesk demo`)", file=sys.stderr)
        return EXIT_CONFIG
    # Imported here: the app brings aiogram's hundreds of models, which the other commands
    # (salons, dlq, analytics) never need and should not wait for.
    from gateway.app import create_app

    app = create_app(settings)
    log.info("starting on %s:%d", host or settings.host, port or settings.port)
    web.run_app(
        app,
        host=host or settings.host,
        port=port or settings.port,
        print=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        access_log=logging.getLogger("aiohttp.access"),
        # The Dashboard App's `?key=` (and any query) never reaches the log.
        access_log_class=MaskedAccessLogger,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
