"""The servers of the bench, one per subprocess: `python -m bench.servers <kind>` (bare,
gateway, sandbox, calcom).

Each pins itself to its CPU *before* importing anything heavy (aiogram takes seconds of CPU to
import) and asks the kernel for SIGTERM should the bench die, so no server outlives a run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import gc
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.payloads import SECRET, TOKEN
from bench.procs import pin_self

# The handling bench's Cal.com stand-in: its API key and the salon's zone (known to it only).
CALCOM_KEY = "cal_bench_key"
CALCOM_ZONE = "Europe/Moscow"

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the bench died before prctl took effect
        raise SystemExit(1)


def serve_bare(port: int) -> None:
    """The reference: aiohttp with nothing behind it, answering like the gateway's edge."""

    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/telegram", webhook)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_sandbox(port: int, spec: Path | None, token: str = TOKEN) -> None:
    """The Telegram Bot API stand-in, plus one route that lists accepted calls incrementally.

    Its own `/_sandbox/messages` is per chat and copies every message; the bench needs all
    replies with their arrival times (`SentCall.at`, `time.monotonic()`: CLOCK_MONOTONIC is
    system-wide on Linux, so it compares with the load generator's clock).
    """
    from gateway.sandbox.telegram import TelegramSandbox

    sandbox = TelegramSandbox(token, spec)

    async def calls(request: web.Request) -> web.Response:
        # Past the end: nothing, and `next` is the number of calls so far.
        after = min(int(request.query.get("after", "0")), len(sandbox.sent))
        sent = sandbox.sent[after:]
        return web.json_response(
            {
                "next": after + len(sent),
                "calls": [
                    [c.method, c.params.get("chat_id"), c.at, c.params.get("text")] for c in sent
                ],
                "errors": [list(e) for e in sandbox.errors[-5:]],
                "error_count": len(sandbox.errors),
            }
        )

    async def freeze_what_is_kept(_app: web.Application) -> AsyncIterator[None]:
        # The sandbox keeps every call it is sent (the bench reads them back). Without this,
        # Python's full collections walk that ever-growing heap: after a 100k-update phase
        # they stalled the stand-in for 1-3 s at a time, which showed as the gateway's
        # end-to-end latency. What is kept is kept for good: out of the collector's way.
        async def freeze() -> None:
            while True:
                await asyncio.sleep(1.0)
                gc.freeze()

        task = asyncio.create_task(freeze())
        yield
        task.cancel()

    async def fail(request: web.Request) -> web.Response:
        # The chaos run's storms: the next `times` calls of a method get this error.
        order = await request.json()
        sandbox.fail_next(
            order["method"],
            error_code=int(order["error_code"]),
            description=str(order["description"]),
            retry_after=order.get("retry_after"),
            times=int(order["times"]),
        )
        return web.json_response({})

    async def updates(request: web.Request) -> web.Response:
        # The handling bench queues updates itself (no edge): the stand-in builds them, as
        # it would deliver them, so a tap's query is one it will let the bot answer.
        order = await request.json()
        if order.get("data") is None:
            built = [sandbox.says_update(chat, order["text"]) for chat in order["chats"]]
        else:
            built = [
                sandbox.taps_update(chat, int(message), order["data"])
                for chat, message in zip(order["chats"], order["messages"], strict=True)
            ]
        return web.json_response(built)

    async def buttons(request: web.Request) -> web.Response:
        # The last message with inline buttons in a chat: its id and the buttons' data.
        for message in reversed(sandbox.messages_for(int(request.query["chat_id"]))):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard")
            if rows:
                data = [button.get("callback_data") for row in rows for button in row]
                return web.json_response({"message_id": message["message_id"], "data": data})
        return web.json_response({"message_id": None, "data": []})

    app = sandbox.app()
    app.router.add_get("/_bench/calls", calls)
    app.router.add_post("/_bench/fail", fail)
    app.router.add_post("/_bench/updates", updates)
    app.router.add_get("/_bench/buttons", buttons)
    app.cleanup_ctx.append(freeze_what_is_kept)
    # No access log: every Bot API URL carries the token (and logging would cost CPU).
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_calcom(port: int) -> None:
    """The Cal.com stand-in with the demo's salon (the handling bench's booking scenario)."""
    from gateway.sandbox.calcom import CalcomSandbox

    calendar = CalcomSandbox(CALCOM_KEY)
    team_id = calendar.seed_demo_salon(zone=CALCOM_ZONE)
    # Raised as a self-hosted Cal.com allows (RATE_LIMIT_DEFAULT_LIMIT_API_KEY, apps/api/v2
    # throttler-guard.ts; contracts/calcom-novu-metabase.md §1.3): at 120 a minute per key the
    # bench would measure the gateway's answers to 429, not its handling of a booking step.
    calendar.rate_limit = 1_000_000_000

    async def team(_request: web.Request) -> web.Response:
        return web.json_response({"team_id": team_id})

    app = calendar.app()
    app.router.add_get("/_bench/team", team)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_gateway(
    port: int,
    redis_url: str,
    salon_id: str,
    api_url: str,
    workers: bool,
    profile: Path | None,
    every_route: bool = False,
    overrides: dict[str, Any] | None = None,
) -> None:
    """The real gateway, configured like `frontdesk serve` except for Telegram's pacing (and
    the `overrides`, settings by name: the chaos run's shorter leases and retries).

    `every_route`: WhatsApp, Chatwoot, Cal.com and Novu are on too (their webhook routes with
    the bench's secrets; their APIs point at `api_url` and are never called with workers off).
    """
    from bench.hostile import EVERY_ROUTE
    from gateway.app import create_app
    from gateway.pipeline.logs import configure
    from gateway.settings import load

    settings = load(
        _env_file=None,
        host="127.0.0.1",
        port=port,
        redis_url=redis_url,
        salon_id=salon_id,
        salon_name="Bench Salon",
        telegram_bot_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_url=api_url,
        # Telegram really allows ~1 message/s per chat and ~30/s per bot; at those rates the
        # outbox, not the gateway, would set every replies-per-second figure. Raised so the
        # sandbox is never throttled; what is measured is the gateway's own cost.
        telegram_rate_per_chat=1_000_000.0,
        telegram_burst_per_chat=1_000,
        telegram_rate_global=1_000_000.0,
        run_workers=workers,
        log_level="WARNING",
        log_format="text",
        shutdown_grace_seconds=2.0,
        **(EVERY_ROUTE if every_route else {}),
        **(overrides or {}),
    )
    configure(settings.log_format, settings.log_level, settings.secrets())
    app = create_app(settings)
    if profile is not None:
        _add_profiler_routes(app, profile)
    # The same call as `frontdesk serve` (gateway/cli.py), so the access-log setup matches.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        access_log=logging.getLogger("aiohttp.access"),
    )


def _add_profiler_routes(app: web.Application, path: Path) -> None:
    """cProfile of the event loop's thread, switched on only around the measured phases.

    Repeated start/stop accumulate into one profile; each stop rewrites `path`.
    """
    profiler = cProfile.Profile()

    async def start(_request: web.Request) -> web.Response:
        profiler.enable()
        return web.json_response({})

    async def stop(_request: web.Request) -> web.Response:
        profiler.disable()
        profiler.dump_stats(path)
        return web.json_response({})

    app.router.add_post("/_bench/profile/start", start)
    app.router.add_post("/_bench/profile/stop", stop)


def _setting(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    return name, json.loads(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=("bare", "gateway", "sandbox", "calcom"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=-1, help="pin to this CPU (-1: do not pin)")
    parser.add_argument("--redis-url")
    parser.add_argument("--salon-id")
    parser.add_argument("--api-url")
    parser.add_argument("--no-workers", action="store_true", help="gateway: RUN_WORKERS off")
    parser.add_argument("--profile", type=Path, help="gateway: write a cProfile here")
    parser.add_argument(
        "--every-route", action="store_true", help="gateway: all five webhook routes on"
    )
    parser.add_argument("--spec", type=Path, help="sandbox: the vendor Bot API spec")
    parser.add_argument("--token", default=TOKEN, help="sandbox: the bot token it answers")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="gateway: a setting by its field name, its value in JSON (repeatable)",
    )
    args = parser.parse_args(argv)
    _die_with_parent()
    pin_self(args.cpu)
    if args.kind == "bare":
        serve_bare(args.port)
    elif args.kind == "sandbox":
        serve_sandbox(args.port, args.spec, args.token)
    elif args.kind == "calcom":
        serve_calcom(args.port)
    else:
        serve_gateway(
            args.port,
            args.redis_url,
            args.salon_id,
            args.api_url,
            not args.no_workers,
            args.profile,
            args.every_route,
            dict(_setting(text) for text in args.setting),
        )


if __name__ == "__main__":
    main()
