"""`python -m bench ingest`: the gateway's webhook ingest against bare aiohttp, on loopback.

1. Closed loop (max throughput): N connections post unique Telegram updates for a fixed time,
   against bare aiohttp and then the real gateway, in interleaved rounds (medians reported).
2. Lost replies: after each gateway phase, wait until every update acknowledged with 200 has its
   `sendMessage` at the sandbox (every text message gets exactly one).
3. End to end at a fixed offered rate (open loop): webhook sent -> reply at the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench import profiling
from bench.load import ClosedLoop, OpenLoop, closed_loop, open_loop
from bench.payloads import SECRET, TOKEN, Updates
from bench.procs import (
    BenchError,
    Child,
    Placement,
    cpu_seconds,
    machine_busy_seconds,
    pin_self,
)
from bench.replies import ReplyLog, Tally
from bench.stats import median_index, percentile

WEBHOOK = "/webhooks/telegram"
SHARDS = 8  # the gateway's default STREAM_SHARDS
# Chat and update id ranges per phase, so that phases never share a chat or an update id.
CHAT_BASE = 7_000_000_000
CHAT_STRIDE = 1_000_000
E2E_CHAT_BASE = 8_000_000_000
UPDATE_STRIDE = 10_000_000
TARGET_RATIO = 0.5
TARGET_E2E_P99_MS = 50.0


@dataclass(frozen=True)
class Options:
    duration: float = 10.0
    warmup: float = 2.0
    connections: int = 50
    rounds: int = 1
    chats: int = 1000
    rate: float = 200.0
    e2e_duration: float = 10.0
    redis_url: str = "redis://127.0.0.1:6379/14"
    drain_timeout: float = 60.0
    profile: bool = False
    sandbox_spec: Path | None = None
    keep_logs: bool = False
    strict: bool = False


@dataclass
class Phase:
    server: str
    round: int
    load: ClosedLoop
    cpu: dict[str, float]  # CPU seconds per party inside the measured window
    tally: Tally | None = None
    replies_in_window: int = 0

    def busy(self, party: str) -> float | None:
        """Share of one core a party used during the window."""
        seconds = self.cpu.get(party)
        return None if seconds is None else seconds / self.load.duration

    @property
    def server_us_per_request(self) -> float | None:
        seconds = self.cpu.get("server")
        answered = len(self.load.latencies)
        return None if seconds is None or not answered else seconds / answered * 1e6

    @property
    def drain_seconds(self) -> float | None:
        """From the end of the load to the last reply (the backlog the workers had left)."""
        if self.tally is None or self.tally.lost or self.tally.last_reply_at is None:
            return None
        return max(0.0, self.tally.last_reply_at - self.load.window_end)


@dataclass
class EndToEnd:
    load: OpenLoop
    latencies: list[float]  # scheduled send -> reply recorded by the sandbox
    tally: Tally


@dataclass
class Outcome:
    placement: Placement
    phases: list[Phase] = field(default_factory=list)
    e2e: EndToEnd | None = None
    dead_letters: int = 0
    sandbox_errors: int = 0
    sandbox_error_samples: list[list[object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    log_dir: Path | None = None

    def of(self, server: str) -> list[Phase]:
        return [p for p in self.phases if p.server == server]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """The three servers, the control connection and the reply log of one run."""

    def __init__(self, options: Options, placement: Placement, log_dir: Path) -> None:
        self.options = options
        self.placement = placement
        self.log_dir = log_dir
        self.salon_id = f"bench-{uuid.uuid4().hex[:12]}"
        self.redis = Redis.from_url(options.redis_url)
        self.children: list[Child] = []
        self.profile_path = log_dir / "gateway.prof" if options.profile else None
        self._phases = 0

    async def start(self, control: aiohttp.ClientSession) -> None:
        options, cpus = self.options, self.placement
        sandbox_args = ["sandbox", "--cpu", str(cpus.sandbox)]
        if options.sandbox_spec is not None:
            sandbox_args += ["--spec", str(options.sandbox_spec)]
        self.sandbox = self._spawn("sandbox", sandbox_args)
        self.bare = self._spawn("bare", ["bare", "--cpu", str(cpus.server)])
        gateway_args = ["gateway", "--cpu", str(cpus.server), "--redis-url", options.redis_url]
        gateway_args += ["--salon-id", self.salon_id, "--api-url", self.sandbox.url]
        if self.profile_path is not None:
            gateway_args += ["--profile", str(self.profile_path)]
        self.gateway = self._spawn("gateway", gateway_args)
        # The load generator is this process: off the server's core.
        pin_self(cpus.client)

        await self.sandbox.wait_ready(control, ["/_bench/calls"], 30)
        await self.bare.wait_ready(control, ["/healthz"], 30)
        # Importing aiogram alone takes several seconds of CPU.
        deadline = time.monotonic() + 120
        while True:
            ready = await self.gateway.wait_ready(control, ["/healthz", "/readyz"], 120)
            shards = ready.get("shards")
            if isinstance(shards, list) and len(shards) == SHARDS:
                break  # every shard's consumer runs: no update waits for a lease
            if time.monotonic() > deadline:
                raise BenchError(f"the gateway's workers hold only shards {shards}")
            await asyncio.sleep(0.1)
        # Like the tests: the sandbox knows the webhook. The bench still posts the updates
        # itself; the sandbox's own client sends one chat's updates at a time, too slow here.
        async with control.post(
            f"{self.sandbox.url}/bot{TOKEN}/setWebhook",
            json={"url": self.gateway.url + WEBHOOK, "secret_token": SECRET},
        ) as response:
            if response.status != 200:
                raise BenchError(f"setWebhook at the sandbox answered {response.status}")
        self.replies = ReplyLog(control, self.sandbox.url)

    def _spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.log_dir)
        self.children.append(child)
        return child

    def _updates(self, first_chat: int, chats: int | None) -> Updates:
        self._phases += 1
        return Updates(first_chat, chats, self._phases * UPDATE_STRIDE)

    async def _cpu(self, server: Child) -> dict[str, float | None]:
        redis_cpu: float | None = None
        with contextlib.suppress(RedisError, OSError, KeyError):
            info = await self.redis.info("cpu")
            redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return {
            "server": server.cpu(),
            "client": cpu_seconds(),
            "sandbox": self.sandbox.cpu(),
            "redis": redis_cpu,
            "machine": machine_busy_seconds(),
        }

    async def _cpu_between(self, server: Child, start: float, end: float) -> dict[str, float]:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        before = await self._cpu(server)
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        after = await self._cpu(server)
        used = {
            party: now - was
            for party, was in before.items()
            if was is not None and (now := after[party]) is not None
        }
        # What other processes on the machine took meanwhile (a shared VM, a test run...).
        if "machine" in used:
            ours = sum(v for party, v in used.items() if party != "machine")
            used["other"] = max(0.0, used.pop("machine") - ours)
        return used

    async def quiet(self, most: float = 0.25, within: float = 30.0) -> None:
        """Wait (bounded) until the machine is nearly idle: on a shared VM another job's burst
        would otherwise land in one phase and not the other."""
        deadline = time.monotonic() + within
        waited = False
        while True:
            before = machine_busy_seconds()
            await asyncio.sleep(0.5)
            after = machine_busy_seconds()
            if before is None or after is None or (after - before) / 0.5 <= most:
                break
            if time.monotonic() > deadline:
                progress("  the machine is still busy; measuring anyway (see the 'other' column)")
                break
            if not waited:
                progress(
                    f"  waiting for the machine to be quiet ({after - before:.1f} s busy in 0.5 s)"
                )
                waited = True

    async def closed_phase(self, server: Child, round_: int, first_chat: int) -> Phase:
        options = self.options
        await self.quiet()
        updates = self._updates(first_chat, options.chats)
        start = time.monotonic()
        window = (start + options.warmup, start + options.warmup + options.duration)
        sampler = asyncio.create_task(self._cpu_between(server, *window))
        load = await closed_loop(
            server.url + WEBHOOK, updates, options.connections, options.warmup, options.duration
        )
        return Phase(server.name, round_, load, await sampler)

    async def bare_phase(self, round_: int) -> Phase:
        phase = await self.closed_phase(self.bare, round_, CHAT_BASE + round_ * CHAT_STRIDE)
        progress(f"round {round_}: bare    {phase.load.rate:7.0f} req/s")
        return phase

    async def gateway_phase(self, round_: int, control: aiohttp.ClientSession) -> Phase:
        if self.profile_path is not None:
            await self._profiler(control, "start")
        phase = await self.closed_phase(self.gateway, round_, CHAT_BASE + round_ * CHAT_STRIDE)
        progress(
            f"round {round_}: gateway {phase.load.rate:7.0f} req/s; waiting for "
            f"{sum(phase.load.acked.values())} replies"
        )
        phase.tally = await self.replies.settle(phase.load.acked, self.options.drain_timeout)
        if self.profile_path is not None:
            await self._profiler(control, "stop")
        start, end = phase.load.window_start, phase.load.window_end
        phase.replies_in_window = sum(
            start <= at <= end for chat in phase.load.acked for at in self.replies.at.get(chat, [])
        )
        return phase

    async def _profiler(self, control: aiohttp.ClientSession, action: str) -> None:
        async with control.post(f"{self.gateway.url}/_bench/profile/{action}") as response:
            response.raise_for_status()

    async def end_to_end(self) -> EndToEnd:
        options = self.options
        await self.quiet()
        progress(f"e2e: {options.rate:.0f} updates/s for {options.e2e_duration:.0f} s")
        updates = self._updates(E2E_CHAT_BASE, None)  # a new chat per update
        load = await open_loop(
            self.gateway.url + WEBHOOK,
            updates,
            options.rate,
            options.e2e_duration,
            options.connections,
        )
        tally = await self.replies.settle(
            dict.fromkeys(load.acked, 1), options.drain_timeout, quiet=0.5
        )
        latencies = [
            self.replies.at[chat][0] - sent
            for chat, sent in load.sent_at.items()
            if self.replies.at.get(chat)
        ]
        return EndToEnd(load, latencies, tally)

    async def stop(self) -> None:
        """The gateway first (it drains its outbox into the sandbox), then the others; then
        every Redis key of this run's salon."""
        for child in self.children:
            if child.name == "gateway":
                await child.stop()
        await asyncio.gather(*(c.stop() for c in self.children if c.name != "gateway"))
        with contextlib.suppress(RedisError, OSError):
            keys = [key async for key in self.redis.scan_iter(f"fd:{self.salon_id}:*", 1000)]
            for i in range(0, len(keys), 1000):
                await self.redis.delete(*keys[i : i + 1000])
        await self.redis.aclose()


async def run(options: Options) -> Outcome:
    # SIGTERM stops the bench like Ctrl-C does: the `finally` below stops the servers.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    outcome = Outcome(Placement.choose())
    log_dir = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    bench = Bench(options, outcome.placement, log_dir)
    try:
        await bench.redis.ping()  # type: ignore[misc]
    except (RedisError, OSError) as exc:
        await bench.redis.aclose()
        shutil.rmtree(log_dir, ignore_errors=True)
        raise BenchError(f"Redis at {options.redis_url} is unreachable: {exc}") from None
    failed = True
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as control:
            progress(f"starting servers ({outcome.placement.describe()})")
            await bench.start(control)
            for round_ in range(1, options.rounds + 1):
                # Interleaved: drift on a shared VM hits both servers alike.
                outcome.phases.append(await bench.bare_phase(round_))
                await asyncio.sleep(0.5)
                outcome.phases.append(await bench.gateway_phase(round_, control))
                await asyncio.sleep(0.5)
            outcome.e2e = await bench.end_to_end()
            outcome.sandbox_errors = bench.replies.error_count
            outcome.sandbox_error_samples = bench.replies.errors
            outcome.dead_letters = int(await bench.redis.xlen(f"fd:{bench.salon_id}:dlq"))
        failed = False
    finally:
        await bench.stop()
        outcome.warnings = _problems(bench.gateway.log_path) if hasattr(bench, "gateway") else []
        if failed or options.keep_logs or options.profile or outcome.warnings:
            outcome.log_dir = log_dir
            if failed:
                progress(f"server logs kept in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    if bench.profile_path is not None and bench.profile_path.exists():
        profiled = sum(sum(p.load.acked.values()) for p in outcome.of("gateway"))
        outcome.profile = profiling.summary(bench.profile_path, profiled)
    return outcome


def _problems(log_path: Path) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if " WARNING " in line or " ERROR " in line]


# -- the report ---------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def report(outcome: Outcome, options: Options) -> tuple[list[str], bool]:
    """The lines to print (the summary line last) and whether every target was met."""
    lines = [
        "Frontdesk ingest bench (python -m bench ingest)",
        f"  placement: {outcome.placement.describe()}",
        f"  closed loop: {options.connections} connections, {options.warmup:g} s warm-up + "
        f"{options.duration:g} s measured, {options.rounds} round(s), bare and gateway "
        "interleaved; unique ~365-byte updates from "
        f"{options.chats} chats (1/3 /start, 2/3 plain text)",
        "  gateway: the real app with RUN_WORKERS on, 8 shards, log level WARNING; Telegram "
        "pacing raised to 1e6/s per chat and globally (the real ~30/s per bot would cap any "
        "replies/s figure)",
        "",
        f"  {'round':<6}{'server':<9}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'non-200':>8}"
        f"{'srv CPU':>9}{'µs/req':>8}{'client':>8}{'sandbox':>8}{'redis':>7}{'other':>7}",
    ]
    for phase in outcome.phases:
        load = phase.load
        us = phase.server_us_per_request
        lines.append(
            f"  {phase.round:<6}{phase.server:<9}{load.rate:7.0f}"
            f"{_ms(percentile(load.latencies, 50)):>8}{_ms(percentile(load.latencies, 99)):>8}"
            f"{load.not_ok:>8}{_pct(phase.busy('server')):>9}"
            f"{'-' if us is None else f'{us:.0f}':>8}{_pct(phase.busy('client')):>8}"
            f"{_pct(phase.busy('sandbox')):>8}{_pct(phase.busy('redis')):>7}"
            f"{_pct(phase.busy('other')):>7}"
        )
    lines.append(
        "  CPU columns: share of one core in the measured window; µs/req: server CPU per "
        "answer; other: the rest of the machine (not the bench)"
    )
    disturbed = [p for p in outcome.phases if (p.busy("other") or 0) > 0.2]
    if disturbed:
        lines.append(
            f"  WARNING: other processes used >20% of a core in {len(disturbed)} phase(s): "
            "the machine was not quiet, the figures are disturbed"
        )
    medians: dict[str, Phase] = {}
    for server in ("bare", "gateway"):
        runs = outcome.of(server)
        if runs:
            medians[server] = runs[median_index([p.load.rate for p in runs])]
    bare, gateway = medians["bare"], medians["gateway"]
    lines.append(
        f"  median: bare {bare.load.rate:.0f} req/s, gateway {gateway.load.rate:.0f} req/s "
        f"(p50/p99 of the median run)"
    )
    if (bare.busy("server") or 0) < 0.9 and (bare.busy("client") or 0) > 0.9:
        lines.append(
            "  NOTE: the bare server was below 90% of its core while the load generator was "
            "saturated: the bare figure is client-bound (an underestimate), so the ratio "
            "flatters the gateway"
        )
    lines += ["", "  gateway replies (every acknowledged update must get its sendMessage):"]
    lines.append(
        f"  {'round':<6}{'acked':>8}{'replied':>9}{'replies/s in window':>21}"
        f"{'drain after load':>18}{'lost':>6}{'dup':>5}"
    )
    lost = duplicates = 0
    for phase in outcome.of("gateway"):
        tally = phase.tally
        assert tally is not None
        lost += tally.lost
        duplicates += tally.duplicates
        drain = phase.drain_seconds
        lines.append(
            f"  {phase.round:<6}{tally.expected:>8}{tally.replied:>9}"
            f"{phase.replies_in_window / phase.load.duration:>21.0f}"
            f"{'not drained' if drain is None else f'{drain:.1f} s':>18}"
            f"{tally.lost:>6}{tally.duplicates:>5}"
        )
    lines.append(
        f"  sandbox error answers: {outcome.sandbox_errors}; dead letters: "
        f"{outcome.dead_letters}; gateway log warnings/errors: {len(outcome.warnings)}"
    )
    for sample in outcome.sandbox_error_samples[:3]:
        lines.append(f"    sandbox error: {sample}")
    for warning in outcome.warnings[:5]:
        lines.append(f"    log: {warning[:160]}")

    e2e = outcome.e2e
    assert e2e is not None
    lines += [
        "",
        f"  end to end, open loop: {options.rate:g} updates/s for {options.e2e_duration:g} s, "
        "a new chat per update; time from the scheduled send to the reply at the sandbox",
        f"    HTTP answer p50/p99: {_ms(percentile(e2e.load.latencies, 50))} / "
        f"{_ms(percentile(e2e.load.latencies, 99))} ms; non-200: {e2e.load.not_ok}; "
        f"lost {e2e.tally.lost}, duplicates {e2e.tally.duplicates}",
    ]
    if outcome.profile:
        lines += ["", *("  " + line for line in outcome.profile)]
        lines.append("  (profiled run: cProfile slows the gateway, so its req/s is not comparable)")
    if outcome.log_dir is not None:
        lines.append(f"  server logs{' and profile' if options.profile else ''}: {outcome.log_dir}")

    ratio = gateway.load.rate / bare.load.rate if bare.load.rate else 0.0
    gateway_p99 = percentile(gateway.load.latencies, 99) * 1000
    e2e_p99 = percentile(e2e.latencies, 99) * 1000
    lost += e2e.tally.lost
    checks = [
        (f"ratio >= {TARGET_RATIO}", ratio >= TARGET_RATIO, f"{ratio:.2f}"),
        ("lost = 0", lost == 0, str(lost)),
        (f"e2e p99 <= {TARGET_E2E_P99_MS:g} ms", e2e_p99 <= TARGET_E2E_P99_MS, f"{e2e_p99:.1f}"),
    ]
    lines += [
        "",
        "  targets: "
        + "; ".join(f"{name}: {value} {'ok' if met else 'MISSED'}" for name, met, value in checks),
    ]
    lines.append(
        f"e2e: rate={options.rate:.0f}/s p50_ms={percentile(e2e.latencies, 50) * 1000:.1f} "
        f"p99_ms={e2e_p99:.1f} max_ms={max(e2e.latencies, default=float('nan')) * 1000:.1f} "
        f"replies={len(e2e.latencies)}/{len(e2e.load.sent_at)}"
    )
    lines.append(
        f"ingest: gateway={gateway.load.rate:.0f} bare={bare.load.rate:.0f} ratio={ratio:.2f} "
        f"p99_ms={gateway_p99:.1f} lost={lost}"
    )
    return lines, all(met for _, met, _ in checks)


def main(options: Options) -> int:
    try:
        outcome = asyncio.run(run(options))
    except KeyboardInterrupt:
        progress("bench: interrupted; servers stopped")
        return 130
    except asyncio.CancelledError:
        progress("bench: terminated; servers stopped")
        return 143
    except BenchError as exc:
        progress(f"bench: {exc}")
        return 2
    lines, met = report(outcome, options)
    print("\n".join(lines), flush=True)
    return 1 if options.strict and not met else 0
