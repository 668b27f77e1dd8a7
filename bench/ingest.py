"""`python -m bench ingest`: the gateway's webhook ingest against bare aiohttp, on loopback.

By default the gateway runs split, as it scales: an edge process (RUN_WORKERS off) takes the
webhooks and is the server under test; a worker process (RUN_WORKERS on, same Redis, salon and
shards) handles the updates and sends the replies. `--in-process-workers`: one process does both.

1. Closed loop (max throughput): N connections post unique Telegram updates for a fixed time,
   against bare aiohttp and then the real gateway, in interleaved rounds (medians reported).
2. Lost replies: after each gateway phase, wait until every update acknowledged with 200 has its
   `sendMessage` at the sandbox (every private text message gets exactly one).
3. End to end at a fixed offered rate (open loop): webhook sent -> reply at the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench import profiling, wrk
from bench.load import closed_loop, open_loop
from bench.payloads import SECRET, TOKEN, Updates
from bench.procs import (
    BenchError,
    Child,
    Placement,
    RedisServer,
    cpu_seconds,
    first_in_line,
    machine_busy_seconds,
    pin_self,
)
from bench.replies import ReplyLog
from bench.report import report
from bench.results import EndToEnd, Options, Outcome, Phase
from gateway.pipeline.keys import Keys

WEBHOOK = "/webhooks/telegram"
SHARDS = 8  # the gateway's default STREAM_SHARDS
# Chat and update id ranges per phase, so that phases never share a chat or an update id.
CHAT_BASE = 7_000_000_000
CHAT_STRIDE = 1_000_000
E2E_CHAT_BASE = 8_000_000_000
UPDATE_STRIDE = 10_000_000
# Without redis-server on PATH and without --redis-url.
EXTERNAL_REDIS = "redis://127.0.0.1:6379/14"
START_SECONDS = 120.0  # importing aiogram alone takes several seconds of CPU

Hook = Callable[[], Awaitable[None]]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    """The servers, the control connection and the reply log of one run."""

    def __init__(
        self, options: Options, placement: Placement, log_dir: Path, redis_url: str
    ) -> None:
        self.options = options
        self.placement = placement
        self.log_dir = log_dir
        self.salon_id = f"bench-{uuid.uuid4().hex[:12]}"  # this run's keys: fd:{<salon>}:*
        self.redis_url = redis_url
        self.redis = Redis.from_url(redis_url)
        self.children: list[Child] = []
        self.profile_path = log_dir / "gateway.prof" if options.profile else None
        self.worker_profile_path = (
            log_dir / "worker.prof" if options.profile and options.split else None
        )
        self.worker: Child | None = None  # the split layout's worker process
        self._phases = 0
        self.client_prioritized = False
        self._window_start_cpu: dict[str, float | None] = {}

    # -- servers ------------------------------------------------------------------------------

    async def start(self, control: aiohttp.ClientSession) -> None:
        options, cpus = self.options, self.placement
        sandbox_args = ["sandbox", "--cpu", str(cpus.sandbox)]
        if options.sandbox_spec is not None:
            sandbox_args += ["--spec", str(options.sandbox_spec)]
        self.sandbox = self._spawn("sandbox", sandbox_args)
        self.bare = self._spawn("bare", ["bare", "--cpu", str(cpus.server)])
        common = ["--redis-url", self.redis_url, "--salon-id", self.salon_id]
        common += ["--api-url", self.sandbox.url]
        # The server under test: the edge (split and --no-workers) or the whole gateway.
        gateway_args = ["gateway", "--cpu", str(cpus.server), *common]
        if not options.workers or options.split:
            gateway_args.append("--no-workers")
        if self.profile_path is not None:
            gateway_args += ["--profile", str(self.profile_path)]
        self.gateway = self._spawn("gateway", gateway_args)
        if options.split:
            # The same entry point with RUN_WORKERS on; it is sent no webhooks.
            worker_args = ["gateway", "--cpu", str(cpus.worker), *common]
            if self.worker_profile_path is not None:
                worker_args += ["--profile", str(self.worker_profile_path)]
            self.worker = self._spawn("worker", worker_args)
        pin_self(cpus.client)  # the load generator is this process: off the server's core

        await self.sandbox.wait_ready(control, ["/_bench/calls"], 30)
        await self.bare.wait_ready(control, ["/healthz"], 30)
        await self.gateway.wait_ready(control, ["/healthz", "/readyz"], START_SECONDS)
        if self.handler is not None:
            await self._all_shards(control, self.handler)
        # As in the tests, the sandbox knows the webhook. The bench still posts the updates
        # itself: the sandbox's own client sends one chat's updates at a time, too slow here.
        async with control.post(
            f"{self.sandbox.url}/bot{TOKEN}/setWebhook",
            json={"url": self.gateway.url + WEBHOOK, "secret_token": SECRET},
        ) as response:
            if response.status != 200:
                raise BenchError(f"setWebhook at the sandbox answered {response.status}")
        self.replies = ReplyLog(control, self.sandbox.url)

    @property
    def handler(self) -> Child | None:
        """The process that handles the updates and sends the replies, if any."""
        if not self.options.workers:
            return None
        return self.worker if self.worker is not None else self.gateway

    async def _all_shards(self, control: aiohttp.ClientSession, child: Child) -> None:
        """Wait until every shard's consumer runs there: no update then waits for a lease."""
        deadline = time.monotonic() + START_SECONDS
        while True:
            ready = await child.wait_ready(control, ["/healthz", "/readyz"], START_SECONDS)
            shards = ready.get("shards")
            if isinstance(shards, list) and len(shards) == SHARDS:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the {child.name}'s workers hold only shards {shards}")
            await asyncio.sleep(0.1)

    def _spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.log_dir)
        self.children.append(child)
        return child

    async def stop(self) -> None:
        """The gateway (edge) first, then the worker (it drains its outbox into the sandbox),
        then the others; then every Redis key of this run's salon."""
        first = ("gateway", "worker")
        for name in first:
            for child in self.children:
                if child.name == name:
                    await child.stop()
        await asyncio.gather(*(c.stop() for c in self.children if c.name not in first))
        with contextlib.suppress(RedisError, OSError):
            keys = [key async for key in self.redis.scan_iter(f"fd:{{{self.salon_id}}}:*", 1000)]
            for i in range(0, len(keys), 1000):
                await self.redis.delete(*keys[i : i + 1000])
        await self.redis.aclose()

    # -- measuring ----------------------------------------------------------------------------

    async def quiet(self, most: float = 0.25, within: float = 15.0) -> None:
        """Wait (bounded) until the machine is nearly idle: on a shared VM another job's burst
        would otherwise land in one phase and not in the other."""
        deadline = time.monotonic() + within
        said = False
        while True:
            before = machine_busy_seconds()
            await asyncio.sleep(0.5)
            after = machine_busy_seconds()
            if before is None or after is None or (after - before) / 0.5 <= most:
                return
            if time.monotonic() > deadline:
                progress("  the machine is still busy; measuring anyway (see column 'other')")
                return
            if not said:
                progress(f"  waiting for other processes ({(after - before) / 0.5:.1f} cores busy)")
                said = True

    async def _cpu(self, server: Child) -> dict[str, float | None]:
        redis_cpu: float | None = None
        with contextlib.suppress(RedisError, OSError, KeyError):
            info = await self.redis.info("cpu")
            redis_cpu = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return {
            "server": server.cpu(),
            "worker": None if self.worker is None else self.worker.cpu(),
            "client": cpu_seconds(),
            "sandbox": self.sandbox.cpu(),
            "redis": redis_cpu,
            "machine": machine_busy_seconds(),
        }

    async def _cpu_between(
        self, server: Child, start: float, end: float, at_start: Hook | None
    ) -> tuple[dict[str, float], dict[str, float | None]]:
        """CPU seconds per party in the window, and the readings at its start."""
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        before = await self._cpu(server)
        if at_start is not None:
            await at_start()
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
        return used, before

    def _updates(self, first_chat: int, chats: int | None) -> Updates:
        self._phases += 1
        return Updates(first_chat, chats, self._phases * UPDATE_STRIDE)

    async def _closed(self, server: Child, round_: int, at_start: Hook | None = None) -> Phase:
        if self.options.client == "wrk":
            return await self._closed_wrk(server, round_, at_start)
        options = self.options
        updates = self._updates(CHAT_BASE + round_ * CHAT_STRIDE, options.chats)
        start = time.monotonic()
        window = (start + options.warmup, start + options.warmup + options.duration)
        sampler = asyncio.create_task(self._cpu_between(server, *window, at_start))
        load = await closed_loop(server.url + WEBHOOK, updates, options.connections, window)
        used, self._window_start_cpu = await sampler
        return Phase(server.name, round_, load, used)

    async def _closed_wrk(self, server: Child, round_: int, at_start: Hook | None) -> Phase:
        """The closed loop with wrk: a warm-up run, then the measured run; what the gateway
        took is read from its dedup keys (wrk does not say which update got which answer)."""
        options = self.options
        self._phases += 1
        stream = wrk.Stream(
            CHAT_BASE + round_ * CHAT_STRIDE,
            options.chats,
            self._phases * UPDATE_STRIDE,
            int(time.time()),
        )
        url = server.url + WEBHOOK
        serial = 0
        if options.warmup > 0:
            warm = await wrk.run(
                url, stream, 0, options.connections, options.warmup, options.priority
            )
            serial = warm.generated
        start = time.monotonic()
        window = (start, start + math.ceil(options.duration))  # wrk runs whole seconds
        sampler = asyncio.create_task(self._cpu_between(server, *window, at_start))
        measured = await wrk.run(
            url, stream, serial, options.connections, options.duration, options.priority
        )
        self.client_prioritized = measured.prioritized
        used, self._window_start_cpu = await sampler
        # wrk is a process of its own: its CPU is the client's, not the rest of the machine's.
        used["client"] = used.get("client", 0.0) + measured.cpu
        if "other" in used:
            used["other"] = max(0.0, used["other"] - measured.cpu)
        load = wrk.closed_loop(measured, (start, start + measured.duration))
        if server is self.gateway:
            load.acked = await self._taken(stream, serial + measured.generated)
        return Phase(server.name, round_, load, used)

    async def _taken(self, stream: wrk.Stream, count: int) -> Counter[int]:
        """Per chat, the updates of `stream` the gateway queued (their dedup key exists)."""
        keys = Keys(self.salon_id, SHARDS)
        taken: Counter[int] = Counter()
        for first in range(0, count, 1000):
            serials = range(first, min(count, first + 1000))
            async with self.redis.pipeline(transaction=False) as pipe:
                for serial in serials:
                    pipe.exists(keys.dedup("telegram", str(stream.update_id(serial))))
                found = await pipe.execute()
            for serial, exists in zip(serials, found, strict=True):
                if exists:
                    taken[stream.chat(serial)] += 1
        return taken

    async def bare_phase(self, round_: int) -> Phase:
        await self.quiet()
        phase = await self._closed(self.bare, round_)
        progress(f"round {round_}: bare    {phase.load.rate:7.0f} req/s")
        return phase

    async def gateway_phase(self, round_: int, control: aiohttp.ClientSession) -> Phase:
        await self.quiet()
        profiled = self.profile_path is not None

        async def start_profiler() -> None:
            # After the warm-up: the first updates pay one-off costs (aiogram's pydantic
            # models are completed lazily, Redis connections opened) that would skew it.
            await self._profiler(control, "start")

        phase = await self._closed(self.gateway, round_, start_profiler if profiled else None)
        acked = phase.load.acked
        progress(f"round {round_}: gateway {phase.load.rate:7.0f} req/s")
        if self.options.workers:
            progress(f"  waiting for {sum(acked.values())} replies")
            phase.tally = await self.replies.settle(acked, self.options.drain_timeout)
            start, end = phase.load.window_start, phase.load.window_end
            times = [at for chat in acked for at in self.replies.at.get(chat, [])]
            phase.replies_in_window = sum(start <= at <= end for at in times)
            phase.replies_after_start = sum(start <= at for at in times)
            # The handling process's CPU from the window's start until every reply was in.
            was = self._window_start_cpu["worker" if self.options.split else "server"]
            handler = self.handler
            now = None if handler is None else handler.cpu()
            if was is not None and now is not None:
                phase.handler_cpu = now - was
        if profiled:
            await self._profiler(control, "stop")
        return phase

    async def _profiler(self, control: aiohttp.ClientSession, action: str) -> None:
        for child in (self.gateway, self.worker):
            if child is None:
                continue
            async with control.post(f"{child.url}/_bench/profile/{action}") as response:
                response.raise_for_status()

    async def end_to_end(self) -> EndToEnd:
        options = self.options
        await self.quiet()
        progress(f"e2e: {options.rate:g} updates/s for {options.e2e_duration:g} s")
        load = await open_loop(
            self.gateway.url + WEBHOOK,
            self._updates(E2E_CHAT_BASE, None),  # a new chat per update: replies match
            options.rate,
            options.e2e_duration,
            options.connections,
        )
        expected = dict.fromkeys(load.acked, 1)
        tally = await self.replies.settle(expected, options.drain_timeout, quiet=0.5)
        latencies = [
            self.replies.at[chat][0] - sent
            for chat, sent in load.sent_at.items()
            if self.replies.at.get(chat)
        ]
        return EndToEnd(load, latencies, tally)


async def run(options: Options) -> Outcome:
    # SIGTERM stops the bench like Ctrl-C does: the `finally` below stops the servers.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    outcome = Outcome(Placement.choose())
    log_dir = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    own_redis: RedisServer | None = None
    redis_url = options.redis_url
    if redis_url is None and shutil.which("redis-server"):
        own_redis = RedisServer(outcome.placement.client, log_dir)
        redis_url = own_redis.url
        try:
            await own_redis.wait_ready()
        except BenchError:
            await own_redis.stop()
            raise
        own_redis.prioritized = options.priority and first_in_line(own_redis.process.pid)
    redis_url = redis_url or EXTERNAL_REDIS
    outcome.redis = _where_redis_runs(own_redis, outcome.placement, redis_url)
    bench = Bench(options, outcome.placement, log_dir, redis_url)
    try:
        await bench.redis.ping()  # type: ignore[misc]
    except (RedisError, OSError) as exc:
        await bench.redis.aclose()
        if own_redis is not None:
            await own_redis.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
        raise BenchError(f"Redis at {redis_url} is unreachable: {exc}") from None
    failed = True
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as control:
            progress(f"starting servers ({outcome.placement.describe(options.split)})")
            await bench.start(control)
            for round_ in range(1, options.rounds + 1):
                # Interleaved: drift on a shared VM hits both servers alike.
                outcome.phases.append(await bench.bare_phase(round_))
                outcome.phases.append(await bench.gateway_phase(round_, control))
            if options.workers:
                outcome.e2e = await bench.end_to_end()
                outcome.sandbox_errors = bench.replies.error_count
                outcome.sandbox_error_samples = bench.replies.errors
            outcome.dead_letters = int(await bench.redis.xlen(f"fd:{{{bench.salon_id}}}:dlq"))
        failed = False
    finally:
        await bench.stop()
        if own_redis is not None:
            await own_redis.stop()
        outcome.client_prioritized = bench.client_prioritized
        outcome.warnings = _problems(log_dir / "gateway.log") + _problems(log_dir / "worker.log")
        if failed or options.keep_logs or options.profile or outcome.warnings:
            outcome.log_dir = log_dir
            if failed:
                progress(f"server logs kept in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    gateway_phases = outcome.of("gateway")
    replies = sum(p.replies_after_start for p in gateway_phases)
    answers = sum(p.load.answered for p in gateway_phases)
    if bench.profile_path is not None and bench.profile_path.exists():
        # Per update: replies made while profiling when this process also handles them (the
        # workers' share dominates), else the webhooks it answered.
        if options.split:
            outcome.profile = profiling.summary(bench.profile_path, answers, "edge")
        else:
            profiled = replies if options.workers else answers
            outcome.profile = profiling.summary(bench.profile_path, profiled)
    if bench.worker_profile_path is not None and bench.worker_profile_path.exists():
        outcome.profile += ["", *profiling.summary(bench.worker_profile_path, replies, "worker")]
    return outcome


def _where_redis_runs(own: RedisServer | None, placement: Placement, url: str) -> str:
    if own is None:
        return f"external ({url}), not pinned"
    where = "the bench's own redis-server"
    if placement.client >= 0:
        where += f", CPU {placement.client}"
    return where + (", SCHED_FIFO" if own.prioritized else "")


def _problems(log_path: Path) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if " WARNING " in line or " ERROR " in line]


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
