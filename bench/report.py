"""The printed report of `bench ingest`: tables first, the two summary lines last."""

from __future__ import annotations

import math

from bench.results import Options, Outcome, Phase
from bench.stats import median_index, percentile

TARGET_RATIO = 0.5
TARGET_E2E_P99_MS = 50.0
BUSY = 0.9  # a party above this share of its core is saturated
DISTURBED = 0.2  # foreign CPU (share of a core) above which a phase is flagged


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def _layout(options: Options) -> str:
    if not options.workers:
        return (
            "edge only: one process with RUN_WORKERS OFF takes the webhooks, nothing handles "
            "them (diagnosis)"
        )
    if options.in_process_workers:
        return (
            "in-process workers: one process with RUN_WORKERS on takes the webhooks and "
            "handles them (the server under test)"
        )
    return (
        "edge + worker: the edge (RUN_WORKERS off) takes the webhooks and is the server under "
        "test; a worker process (RUN_WORKERS on, same Redis, salon and shards, sent no "
        "webhooks) handles the updates and sends the replies"
    )


def header(outcome: Outcome, options: Options) -> list[str]:
    return [
        "Frontdesk ingest bench (python -m bench ingest)",
        f"  layout: {_layout(options)}",
        f"  placement: {outcome.placement.describe(options.split)}; Redis: {outcome.redis}",
        f"  closed loop ({options.client}{', SCHED_FIFO' if outcome.client_prioritized else ''}):"
        f" {options.connections} keep-alive connections, "
        f"{options.warmup:g} s "
        f"warm-up + {options.duration:g} s measured, {options.rounds} round(s) of bare then "
        f"gateway; unique ~365-byte updates from {options.chats} chats (1/3 /start)",
        "  gateway: the real app, 8 shards, log level WARNING; "
        "Telegram pacing raised to 1e6/s per chat and per bot (the real ~30/s per bot would "
        "cap every replies/s figure)",
    ]


def throughput(outcome: Outcome, options: Options) -> list[str]:
    lines = [
        "",
        f"  {'round':<6}{'server':<9}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'non-200':>8}"
        f"{'srv CPU':>9}{'µs/req':>8}{'worker':>8}{'client':>8}{'sandbox':>8}{'redis':>7}"
        f"{'other':>7}",
    ]
    for phase in outcome.phases:
        load, us = phase.load, phase.server_us_per_request
        lines.append(
            f"  {phase.round:<6}{phase.server:<9}{load.rate:7.0f}"
            f"{_ms(load.latency(50)):>8}{_ms(load.latency(99)):>8}"
            f"{load.not_ok:>8}{_pct(phase.busy('server')):>9}"
            f"{'-' if us is None else f'{us:.0f}':>8}{_pct(phase.busy('worker')):>8}"
            f"{_pct(phase.busy('client')):>8}"
            f"{_pct(phase.busy('sandbox')):>8}{_pct(phase.busy('redis')):>7}"
            f"{_pct(phase.busy('other')):>7}"
        )
    lines.append(
        "  CPU columns: share of one core in the measured window; µs/req: server CPU per "
        "answer; worker: the split layout's worker process; other: the rest of the machine "
        "(not the bench)"
    )
    disturbed = [p for p in outcome.phases if (p.busy("other") or 0) > DISTURBED]
    if disturbed:
        lines.append(
            f"  WARNING: other processes used >{DISTURBED:.0%} of a core in {len(disturbed)} "
            "phase(s): the machine was not quiet, so req/s and latencies are disturbed "
            "(µs/req is the steadier figure)"
        )
    bare, gateway = median(outcome, "bare"), median(outcome, "gateway")
    lines.append(
        f"  median: bare {bare.load.rate:.0f} req/s, gateway {gateway.load.rate:.0f} req/s "
        "(p50/p99 from the median run)"
    )
    bare_us, gateway_us = bare.server_us_per_request, gateway.server_us_per_request
    if bare_us and gateway_us:
        lines.append(
            f"  CPU-cost ratio (bare µs/req / gateway µs/req): {bare_us / gateway_us:.2f}, what "
            "the req/s ratio would be were both servers CPU-bound on their core"
        )
    lines += cost_per_update(outcome, options)
    if (bare.busy("server") or 0) < BUSY and (bare.busy("client") or 0) > BUSY:
        lines.append(
            "  NOTE: the load generator was saturated while the bare server was not: the bare "
            "figure is client-bound (too low), which flatters the ratio"
        )
    shared = client_core(gateway, outcome, options)
    if (gateway.busy("server") or 0) < BUSY and shared > BUSY:
        lines.append(
            f"  NOTE: the load generator's core was saturated ({shared:.0%}) while the gateway "
            "was not: the gateway figure is client-bound (too low)"
        )
    return lines


def client_core(phase: Phase, outcome: Outcome, options: Options) -> float:
    """How busy the load generator's core was: the client plus what shares its core."""
    cpus = outcome.placement
    busy = phase.busy("client") or 0.0
    if cpus.client < 0:
        return busy
    if cpus.sandbox == cpus.client:
        busy += phase.busy("sandbox") or 0.0
    if options.split and cpus.worker == cpus.client:
        busy += phase.busy("worker") or 0.0
    return busy


def cost_per_update(outcome: Outcome, options: Options) -> list[str]:
    """The full CPU cost of an update in the median gateway run: taking it and handling it."""
    if not options.workers:
        return []
    bare, gateway = median(outcome, "bare"), median(outcome, "gateway")
    edge, handler = gateway.server_us_per_request, gateway.handler_us_per_update
    if handler is None:
        return ["  CPU per handled update: not measured (no replies counted)"]
    if options.split:
        total = handler + (edge or 0.0)
        lines = [
            f"  CPU per update (median run): edge {'-' if edge is None else f'{edge:.0f}'} µs "
            f"per answer + worker {handler:.0f} µs per handled update = {total:.0f} µs in all"
        ]
    else:
        total = handler
        lines = [
            f"  CPU per update (median run): the gateway process (edge and handling) "
            f"{handler:.0f} µs per handled update"
        ]
    lines.append(
        "    (the handling process's CPU from the window's start until every reply was in, per "
        "reply delivered in that time)"
    )
    bare_us = bare.server_us_per_request
    if bare_us:
        lines.append(
            f"  full-cost ratio (bare µs/req / all CPU per update): {bare_us / total:.2f}, the "
            "share of bare's rate one core could take and handle"
        )
    return lines


def median(outcome: Outcome, server: str) -> Phase:
    runs = outcome.of(server)
    return runs[median_index([p.load.rate for p in runs])]


def replies(outcome: Outcome, options: Options) -> list[str]:
    lines = ["", "  gateway replies (every acknowledged update must get its one sendMessage):"]
    lines.append(
        f"  {'round':<6}{'acked':>8}{'replied':>9}{'replies/s in window':>21}"
        f"{'drain after load':>18}{'lost':>6}{'dup':>5}{'handler µs/update':>19}"
    )
    for phase in outcome.of("gateway"):
        tally, drain = phase.tally, phase.drain_seconds
        if tally is None:
            continue
        lines.append(
            f"  {phase.round:<6}{tally.expected:>8}{tally.replied:>9}"
            f"{phase.replies_in_window / phase.load.duration:>21.0f}"
            f"{'not drained' if drain is None else f'{drain:.1f} s':>18}"
            f"{tally.lost:>6}{tally.duplicates:>5}"
            f"{'-' if (us := phase.handler_us_per_update) is None else f'{us:.0f}':>19}"
        )
    handler = "the worker process" if options.split else "the gateway process"
    lines.append(
        f"  handler µs/update: CPU of {handler} from the window's start until drained, per reply"
    )
    lines.append(
        f"  sandbox error answers: {outcome.sandbox_errors}; dead letters: "
        f"{outcome.dead_letters}; gateway log warnings/errors: {len(outcome.warnings)}"
    )
    lines += [f"    sandbox error: {sample}" for sample in outcome.sandbox_error_samples[:3]]
    lines += [f"    log: {warning[:160]}" for warning in outcome.warnings[:5]]
    return lines


def end_to_end(outcome: Outcome, options: Options) -> list[str]:
    e2e = outcome.e2e
    if e2e is None:
        return []
    return [
        "",
        f"  end to end, open loop: {options.rate:g} updates/s for {options.e2e_duration:g} s, a "
        "new chat per update; from the scheduled send to the reply's arrival at the sandbox",
        f"    HTTP answer p50/p99: {_ms(percentile(e2e.load.latencies, 50))} / "
        f"{_ms(percentile(e2e.load.latencies, 99))} ms; non-200: {e2e.load.not_ok}; "
        f"lost {e2e.tally.lost}, duplicates {e2e.tally.duplicates}",
    ]


def report(outcome: Outcome, options: Options) -> tuple[list[str], bool]:
    """The lines to print (the summary line last) and whether every target was met."""
    lines = header(outcome, options) + throughput(outcome, options)
    if options.workers:
        lines += replies(outcome, options) + end_to_end(outcome, options)
    if outcome.profile:
        lines += ["", *("  " + line for line in outcome.profile)]
        lines.append("  (a profiled run: cProfile slows the gateway, its req/s is not comparable)")
    if outcome.log_dir is not None:
        lines.append(f"  server logs{' and profile' if options.profile else ''}: {outcome.log_dir}")

    bare, gateway = median(outcome, "bare"), median(outcome, "gateway")
    ratio = gateway.load.rate / bare.load.rate if bare.load.rate else 0.0
    gateway_p99 = gateway.load.latency(99) * 1000
    checks = [(f"ratio >= {TARGET_RATIO}", ratio >= TARGET_RATIO, f"{ratio:.2f}")]
    e2e = outcome.e2e
    if e2e is None:
        lost_text, e2e_line = "n/a", "e2e: skipped (RUN_WORKERS off)"
    else:
        lost = e2e.tally.lost + sum(p.tally.lost for p in outcome.of("gateway") if p.tally)
        lost_text = str(lost)
        latencies = e2e.latencies
        p99 = percentile(latencies, 99) * 1000
        checks += [
            ("lost = 0", lost == 0, lost_text),
            (f"e2e p99 <= {TARGET_E2E_P99_MS:g} ms", p99 <= TARGET_E2E_P99_MS, f"{p99:.1f}"),
        ]
        e2e_line = (
            f"e2e: rate={options.rate:.0f}/s p50_ms={percentile(latencies, 50) * 1000:.1f} "
            f"p99_ms={p99:.1f} max_ms={max(latencies, default=math.nan) * 1000:.1f} "
            f"replies={len(latencies)}/{len(e2e.load.sent_at)}"
        )
    lines += [
        "",
        "  targets: "
        + "; ".join(f"{name}: {value} {'ok' if met else 'MISSED'}" for name, met, value in checks),
        e2e_line,
        f"ingest: gateway={gateway.load.rate:.0f} bare={bare.load.rate:.0f} ratio={ratio:.2f} "
        f"p99_ms={gateway_p99:.1f} lost={lost_text}",
    ]
    return lines, all(met for _, met, _ in checks)
