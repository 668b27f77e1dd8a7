"""`python -m bench`: performance benchmarks of the gateway (see bench/README.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.results import Options


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def parser() -> argparse.ArgumentParser:
    defaults = Options()
    top = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ingest = commands.add_parser(
        "ingest",
        help="webhook ingest: gateway vs bare aiohttp, lost replies, end-to-end latency",
        description=(
            "Starts bare aiohttp, the real gateway split as it scales (an edge process with "
            "RUN_WORKERS off that takes the webhooks, and a worker process with RUN_WORKERS on "
            "that handles them) and the Telegram sandbox, each in its own process (bare and "
            "the edge pinned to CPU 0; the load generator, the sandbox and the worker to CPU 1 "
            "on a 2-CPU machine), then measures closed-loop throughput, lost replies and "
            "open-loop end-to-end latency. The last line is the summary: "
            "'ingest: gateway=<req/s> bare=<req/s> ratio=<g/b> p99_ms=<gateway p99> lost=<n>'."
        ),
    )
    ingest.add_argument(
        "--duration",
        type=_seconds,
        default=defaults.duration,
        help="measured seconds per closed-loop phase (default %(default)s)",
    )
    ingest.add_argument(
        "--warmup",
        type=_non_negative,
        default=defaults.warmup,
        help="warm-up seconds before each measured phase (default %(default)s)",
    )
    ingest.add_argument(
        "--connections",
        type=_count,
        default=defaults.connections,
        help="concurrent keep-alive connections (default %(default)s)",
    )
    ingest.add_argument(
        "--rounds",
        type=_count,
        default=defaults.rounds,
        help="interleaved bare/gateway rounds; the median run is reported (default %(default)s)",
    )
    ingest.add_argument(
        "--chats",
        type=_count,
        default=defaults.chats,
        help="distinct chats in the closed loop (default %(default)s)",
    )
    ingest.add_argument(
        "--rate",
        type=_seconds,
        default=defaults.rate,
        help="updates/s offered in the end-to-end phase (default %(default)s)",
    )
    ingest.add_argument(
        "--e2e-duration",
        type=_seconds,
        default=defaults.e2e_duration,
        help="seconds of the end-to-end phase (default %(default)s)",
    )
    ingest.add_argument(
        "--redis-url",
        default=defaults.redis_url,
        help="an external Redis for the gateway, used as it is (not pinned, not "
        "prioritized); keys fd:{<run's salon>}:* are deleted afterwards. Default: the bench "
        "starts its own redis-server on the load generator's CPU (without redis-server: "
        "redis://127.0.0.1:6379/14)",
    )
    ingest.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=defaults.drain_timeout,
        help="max seconds to wait for the replies after a phase (default %(default)s)",
    )
    layout = ingest.add_mutually_exclusive_group()
    layout.add_argument(
        "--in-process-workers",
        action="store_true",
        help="the single-process layout: one gateway process (RUN_WORKERS on, CPU 0) takes "
        "the webhooks and handles them; no separate worker",
    )
    layout.add_argument(
        "--no-workers",
        action="store_true",
        help="diagnosis: the gateway with RUN_WORKERS off (the webhook edge alone) and no "
        "worker; no replies, so the lost and end-to-end checks are skipped",
    )
    ingest.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the gateway during its phases and print where the time "
        "goes (slows the gateway)",
    )
    ingest.add_argument(
        "--sandbox-spec",
        type=Path,
        help="the vendor telegram-bot-api.json: the sandbox then validates every "
        "call field by field (costs sandbox CPU; off by default)",
    )
    ingest.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the servers' logs (kept anyway on failure or warnings)",
    )
    ingest.add_argument(
        "--client",
        choices=("wrk", "aiohttp"),
        help="the closed loop's load generator: wrk (as the baselines were measured; "
        "`apt-get install wrk`) or this process with aiohttp (heavier: on 2 CPUs it "
        "saturates its core first). Default: wrk when installed",
    )
    ingest.add_argument(
        "--no-priority",
        action="store_true",
        help="leave wrk and the bench's Redis in the normal scheduling class (by default "
        "they run at SCHED_FIFO, where allowed, ahead of the worker on the shared core)",
    )
    ingest.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target is missed (ratio, lost, e2e p99)",
    )
    hostile = commands.add_parser(
        "hostile",
        help="forged 2.9 MB floods and slow clients: the edge's memory and disconnects",
        description=(
            "Starts the gateway with all five webhook routes (RUN_WORKERS off) and its own "
            "Redis, fires concurrent forged POSTs at the WhatsApp, Chatwoot, Cal.com and Novu "
            "routes while sampling the gateway's RSS, then opens slow connections and counts "
            "how many were closed within KEEPALIVE_SECONDS. The last line is the summary."
        ),
    )
    hostile.add_argument("--requests", type=_count, default=300, help="default %(default)s")
    hostile.add_argument(
        "--size", type=_count, default=2_900_000, help="bytes per body (default %(default)s)"
    )
    hostile.add_argument(
        "--slow", type=_count, default=200, help="slow connections (default %(default)s)"
    )
    hostile.add_argument("--redis-url", help="an external Redis (default: the bench's own)")
    hostile.add_argument(
        "--routes",
        default="whatsapp,chatwoot,calcom,novu",
        help="comma-separated routes the forged POSTs go to, in turn (default %(default)s)",
    )
    chaos = commands.add_parser(
        "chaos",
        help="durability under kill -9, a Redis restart and Bot API 500/429 storms",
        description=(
            "Runs the gateway (one process, RUN_WORKERS on) against the Telegram stand-in and "
            "its own redis-server (append-only file on), sends numbered updates from a few "
            "chats, kills the gateway with SIGKILL twice, restarts Redis once and makes the "
            "Bot API answer bursts of 500 and 429; then waits for the replies. The last line: "
            "'chaos: acked=<n> replied=<n> lost=<n> dup=<n> order_violations=<n>'."
        ),
    )
    chaos.add_argument("--updates", type=_count, default=1000, help="(default %(default)s)")
    chaos.add_argument("--chats", type=_count, default=8, help="(default %(default)s)")
    chaos.add_argument(
        "--rate", type=_seconds, default=100.0, help="updates/s in all (default %(default)s)"
    )
    chaos.add_argument(
        "--timeout",
        type=_seconds,
        default=300.0,
        help="the whole run at most, in seconds (default %(default)s)",
    )
    chaos.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 unless lost, dup and order_violations are all 0",
    )
    fairness = commands.add_parser(
        "fairness",
        help="two salons in one gateway: B's reply latency with and without A's backlog",
        description=(
            "Runs one gateway process serving two salons, each with its own Telegram stand-in, "
            "and measures salon B's reply latency idle and right after a backlog of updates "
            "was queued for salon A. The last line is the summary: 'fairness: b_ms_idle=<ms> "
            "b_ms_backlog=<ms> b_ms_backlog_max=<ms> a_answered_meanwhile=<n> of <backlog>'."
        ),
    )
    fairness.add_argument("--backlog", type=_count, default=5000, help="(default %(default)s)")
    fairness.add_argument("--samples", type=_count, default=5, help="(default %(default)s)")
    fairness.add_argument("--redis-url", help="an external Redis (default: the bench's own)")
    fairness.add_argument(
        "--together",
        action="store_true",
        help="run the Telegram stand-ins on the gateway's event loop (as the flow test does) "
        "instead of in processes of their own",
    )
    broadcast = commands.add_parser(
        "broadcast",
        help="reminders for many salons at the platforms' limits: rate, 429s, lag, lost",
        description=(
            "Runs one gateway process serving BOTS salons, each with its own bot (and/or "
            "WhatsApp number) and a stand-in that enforces the platform's limits with real "
            "429s (130429/131056 on WhatsApp), queues REMINDERS reminders into their outboxes "
            "over CHATS chats per salon and waits until all have arrived. The last line is the "
            "summary: 'broadcast: sent=<n> of <N> rate_per_bot=<slowest msg/s> (<%% of the "
            "limit>) 429s=<n> max_lag_s=<s> lost=<n> duplicates=<n>'."
        ),
    )
    broadcast.add_argument("--reminders", type=_count, default=10_000, help="(default %(default)s)")
    broadcast.add_argument("--bots", type=_count, default=10, help="(default %(default)s)")
    broadcast.add_argument(
        "--chats", type=_count, default=250, help="chats per salon (default %(default)s)"
    )
    broadcast.add_argument(
        "--channel",
        choices=("telegram", "whatsapp", "both"),
        default="telegram",
        help="(default %(default)s)",
    )
    broadcast.add_argument(
        "--in-process",
        action="store_true",
        help="serve the stand-ins from the bench's own event loop (default: a process of theirs)",
    )
    broadcast.add_argument("--redis-url", help="an external Redis (default: the bench's own)")
    handling = commands.add_parser(
        "handling",
        help="the worker's CPU per handled update (/start or a booking step) and its RSS",
        description=(
            "Queues Telegram updates straight into Redis (as the edge would) for a worker "
            "process on a core of its own, with the Telegram (and, for booking, Cal.com) "
            "stand-ins, and reports the worker's CPU per handled update and its RSS at start "
            "and as the updates are handled. The last line is the summary: 'handling: "
            "scenario= updates= us_per_update= rss_start_mb= rss_end_mb= rss_max_mb='."
        ),
    )
    handling.add_argument(
        "--scenario",
        choices=("start", "booking"),
        default="start",
        help="start: /start and the greeting; booking: a tap on a day, answered with its "
        "free slots read from Cal.com (default %(default)s)",
    )
    handling.add_argument("--updates", type=_count, default=20_000, help="(default %(default)s)")
    handling.add_argument(
        "--chats", type=_count, default=500, help="distinct clients (default %(default)s)"
    )
    handling.add_argument(
        "--sample-every",
        type=_count,
        default=10_000,
        help="read the worker's RSS every this many updates (default %(default)s)",
    )
    handling.add_argument("--redis-url", help="an external Redis (default: the bench's own)")
    handling.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the worker while it works off the updates and print where the time goes",
    )
    understanding = commands.add_parser(
        "understanding",
        help="typed requests: the corpus score and the cost per message",
        description=(
            "Scores the understanding of typed requests on tests/data/understanding_corpus.json "
            "(intents, entities, the held-out part) and times it. The last line is the summary: "
            "'understanding: intents=<%%> entities=<%%> held_out_intents=<%%> "
            "us_per_message=<µs>'."
        ),
    )
    understanding.add_argument(
        "--rounds",
        type=_count,
        default=200,
        help="timed passes over the corpus (default %(default)s)",
    )
    understanding.add_argument(
        "--misses", action="store_true", help="list the requests not fully understood"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "hostile":
        from bench.hostile import main as hostile

        routes = [route for route in args.routes.split(",") if route]
        return hostile(args.requests, args.size, args.slow, args.redis_url, routes)
    if args.command == "fairness":
        from bench.fairness import main as fairness

        return fairness(args.redis_url, args.backlog, args.samples, not args.together)
    if args.command == "broadcast":
        from bench.broadcast import CHANNELS, Plan
        from bench.broadcast import main as broadcast

        channels = CHANNELS if args.channel == "both" else (args.channel,)
        plan = Plan(args.reminders, args.bots, args.chats, channels, not args.in_process)
        return broadcast(args.redis_url, plan)
    if args.command == "handling":
        from bench.handling import main as handling

        return handling(
            args.scenario,
            args.updates,
            args.chats,
            args.redis_url,
            args.sample_every,
            args.profile,
        )
    if args.command == "understanding":
        from bench.understanding import main as understanding

        return understanding(args.rounds, args.misses)
    if args.command == "ingest":
        from bench import wrk
        from bench.ingest import main as ingest

        client = args.client or ("wrk" if wrk.available() else "aiohttp")
        if client == "wrk" and not wrk.available():
            print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
            return 2

        return ingest(
            Options(
                duration=args.duration,
                warmup=args.warmup,
                connections=args.connections,
                rounds=args.rounds,
                chats=args.chats,
                rate=args.rate,
                e2e_duration=args.e2e_duration,
                redis_url=args.redis_url,
                drain_timeout=args.drain_timeout,
                workers=not args.no_workers,
                in_process_workers=args.in_process_workers,
                profile=args.profile,
                sandbox_spec=args.sandbox_spec,
                keep_logs=args.keep_logs,
                strict=args.strict,
                client=client,
                priority=not args.no_priority,
            )
        )
    if args.command == "chaos":
        from bench.chaos import Plan
        from bench.chaos import main as chaos

        return chaos(
            Plan(updates=args.updates, chats=args.chats, rate=args.rate, timeout=args.timeout),
            strict=args.strict,
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
