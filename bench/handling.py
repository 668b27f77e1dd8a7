"""`python -m bench handling`: the worker's CPU per handled update, and its memory.

No edge and no load generator: the bench queues the updates in Redis itself, with the
gateway's own `Inbox` (what the edge does with a webhook), so the worker process's CPU is the
handling alone: reading the entry, the turn, the commit and the delivery of the replies. The
updates are queued in chunks (`CHUNK`) while the worker is stopped (SIGSTOP), and each chunk is
then worked off as a backlog: the figure is the worker's cost at full speed, as the ingest
bench's "handler µs/update" (measured until a backlog is drained), and not the bench's pace. The
worker (`bench.servers gateway`, RUN_WORKERS on) runs on a core of its own; the stand-ins, Redis
and the bench share the other.

Scenarios:

- `start`: every update is a `/start` from one of `--chats` clients; the bot greets with its menu.
- `booking`: each client has tapped through to the choice of a day (/start, Book, a service);
  every update is then a tap on a day, and the bot reads that day's free slots from the Cal.com
  stand-in and shows them. The catalogue is cached after the set-up (its cache is warm), and so
  are the day's free slots (`CALCOM_SLOTS_CACHE_SECONDS`, 20 s by default): the first tap on the
  day reads them from Cal.com, the next ones within those seconds from the calendar's cache.

A warm-up (one update per client) comes first and is not counted; it also checks that one
update makes the Bot API calls the bench counts on (`CALLS`), which is how it knows every reply
is in. The worker's RSS (`VmRSS` in /proc/<pid>/status) is read before the warm-up ("start"),
after it ("warm"), then every `--sample-every` handled updates, and at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench import profiling
from bench.procs import Child, Placement, RedisServer, cpu_seconds, first_in_line, pin_self
from bench.servers import CALCOM_KEY, CALCOM_ZONE
from gateway.pipeline.inbox import Event, Inbox
from gateway.pipeline.keys import Keys
from handlers.telegram import conversation_of

SCENARIOS = ("start", "booking")
# The Bot API calls one update makes: the greeting; the tap's answer and the times.
CALLS = {"start": 1, "booking": 2}
SHARDS = 8  # the gateway's default STREAM_SHARDS
CHAT_BASE = 8_000_000_000
START_SECONDS = 120.0
# The service the booking clients choose: one master (Maria) does it, so no master step.
SERVICE = "b:s:manicure"
DAY = "b:d:"
# Updates queued at a time while the worker is stopped: well within its lease (15 s, renewed
# every 5 s), so it keeps its shards.
CHUNK = 2000


@dataclass
class Result:
    scenario: str
    updates: int
    cpu_us: float
    calls_per_update: int
    seconds: float
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (handled, MB)

    def line(self) -> str:
        start = self.rss_mb[0][1]
        end = self.rss_mb[-1][1]
        most = max(mb for _handled, mb in self.rss_mb)
        return (
            f"handling: scenario={self.scenario} updates={self.updates} "
            f"us_per_update={self.cpu_us:.0f} rss_start_mb={start:.1f} "
            f"rss_end_mb={end:.1f} rss_max_mb={most:.1f}"
        )


def rss_mb(pid: int) -> float:
    """The process's resident set (VmRSS, /proc/<pid>/status) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Run:
    def __init__(
        self, http: aiohttp.ClientSession, redis_url: str, log_dir: Path, profile: bool = False
    ) -> None:
        self.http = http
        self.profile = log_dir / "worker.prof" if profile else None
        self.redis = Redis.from_url(redis_url)
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.salon_id = f"bench-{uuid.uuid4().hex[:12]}"
        self.inbox = Inbox(self.redis, Keys(self.salon_id, SHARDS), 3600)
        self.children: list[Child] = []
        self.calls = 0  # Bot API calls the stand-in accepted so far

    def spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.log_dir)
        self.children.append(child)
        return child

    async def start(self, scenario: str, placement: Placement) -> Child:
        self.sandbox = self.spawn("sandbox", ["sandbox", "--cpu", str(placement.client)])
        settings = ["salon_timezone=" + json.dumps(CALCOM_ZONE)]
        if scenario == "booking":
            calcom = self.spawn("calcom", ["calcom", "--cpu", str(placement.client)])
            team = await calcom.wait_ready(self.http, ["/_bench/team"], 60)
            settings += [
                "calcom_api_url=" + json.dumps(calcom.url),
                "calcom_api_key=" + json.dumps(CALCOM_KEY),
                "calcom_team_id=" + json.dumps(team["team_id"]),
            ]
        await self.sandbox.wait_ready(self.http, ["/_bench/calls"], 60)
        args = ["gateway", "--cpu", str(placement.server), "--redis-url", self.redis_url]
        args += ["--salon-id", self.salon_id, "--api-url", self.sandbox.url]
        for setting in settings:
            args += ["--setting", setting]
        if self.profile is not None:
            args += ["--profile", str(self.profile)]
        worker = self.spawn("worker", args)
        deadline = time.monotonic() + START_SECONDS
        while True:
            ready = await worker.wait_ready(self.http, ["/healthz", "/readyz"], START_SECONDS)
            if isinstance(ready.get("shards"), list) and len(ready["shards"]) == SHARDS:
                return worker
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker holds only shards {ready.get('shards')}")
            await asyncio.sleep(0.1)

    async def updates(self, chats: list[int], **order: Any) -> list[dict[str, Any]]:
        async with self.http.post(
            f"{self.sandbox.url}/_bench/updates", json={"chats": chats, **order}
        ) as response:
            built: list[dict[str, Any]] = await response.json()
            return built

    async def queue(self, updates: list[dict[str, Any]]) -> None:
        await asyncio.gather(
            *(
                self.inbox.put(
                    Event(
                        "telegram",
                        str(update["update_id"]),
                        conversation_of(update),
                        json.dumps(update).encode(),
                    )
                )
                for update in updates
            )
        )

    async def answered(self, calls: int, within: float = 60.0) -> None:
        """Wait until the stand-in has accepted `calls` Bot API calls in all."""
        deadline = time.monotonic() + within
        while self.calls < calls:
            async with self.http.get(
                f"{self.sandbox.url}/_bench/calls", params={"after": str(self.calls)}
            ) as response:
                body = await response.json()
            if body["calls"]:
                deadline = time.monotonic() + within
            self.calls = body["next"]
            if body["error_count"]:
                raise RuntimeError(f"the stand-in refused calls: {body['errors']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.calls} Bot API calls of {calls} after {within:.0f}s")
            await asyncio.sleep(0.02)

    async def settled(self, at_least: int, quiet: float = 1.0) -> None:
        """Wait for `at_least` calls, then until no call came for `quiet` seconds."""
        await self.answered(at_least)
        while True:
            seen = self.calls
            await asyncio.sleep(quiet)
            await self.answered(seen)
            if self.calls == seen:
                return

    async def day_buttons(self, chats: list[int]) -> list[tuple[int, str]]:
        """Each chat's message offering days, and the first day on it."""
        found = []
        for chat in chats:
            async with self.http.get(
                f"{self.sandbox.url}/_bench/buttons", params={"chat_id": str(chat)}
            ) as response:
                body = await response.json()
            days = [data for data in body["data"] if data and data.startswith(DAY)]
            if not days:
                raise RuntimeError(f"chat {chat} was offered no day: {body['data']}")
            found.append((int(body["message_id"]), days[0]))
        return found

    async def profiler(self, worker: Child, action: str) -> None:
        if self.profile is not None:
            async with self.http.post(f"{worker.url}/_bench/profile/{action}") as response:
                response.raise_for_status()

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
        with contextlib.suppress(RedisError, OSError):
            keys = [key async for key in self.redis.scan_iter(f"fd:{self.salon_id}:*", 1000)]
            for i in range(0, len(keys), 1000):
                await self.redis.delete(*keys[i : i + 1000])
        await self.redis.aclose()


async def _booking_set_up(run: Run, chats: list[int]) -> list[tuple[int, str]]:
    """/start, Book, the service: each client is then offered days."""
    await run.queue(await run.updates(chats, text="/start"))
    await run.settled(run.calls + len(chats))
    for data in ("m:book", SERVICE):
        menus = [await _last_message(run, chat) for chat in chats]
        await run.queue(await run.updates(chats, messages=menus, data=data))
        # Each tap: its answer (answerCallbackQuery) and the next question.
        await run.settled(run.calls + 2 * len(chats))
    return await run.day_buttons(chats)


async def _last_message(run: Run, chat: int) -> int:
    async with run.http.get(
        f"{run.sandbox.url}/_bench/buttons", params={"chat_id": str(chat)}
    ) as response:
        return int((await response.json())["message_id"])


async def measure(
    run: Run, worker: Child, scenario: str, updates: int, chats: int, sample_every: int
) -> Result:
    ids = [CHAT_BASE + n for n in range(chats)]
    rss = [(0, rss_mb(worker.pid))]
    if scenario == "booking":
        days = await _booking_set_up(run, ids)
        messages = [message for message, _day in days]
        data = days[0][1]  # the same first day for everyone: the stand-in seeds one salon

        async def batch(part: list[int]) -> list[dict[str, Any]]:
            at = [messages[chat - CHAT_BASE] for chat in part]
            return await run.updates(part, messages=at, data=data)
    else:

        async def batch(part: list[int]) -> list[dict[str, Any]]:
            return await run.updates(part, text="/start")

    before = run.calls
    await run.queue(await batch(ids))  # the warm-up: one update per client
    per_update = CALLS[scenario]
    await run.settled(before + per_update * len(ids))
    if run.calls != before + per_update * len(ids):
        raise RuntimeError(f"{run.calls - before} Bot API calls for {len(ids)} updates")
    rss.append((0, rss_mb(worker.pid)))
    cpu = seconds = 0.0
    done = sampled = 0
    await run.profiler(worker, "start")
    while done < updates:
        chunk = min(CHUNK, updates - done)
        bodies: list[dict[str, Any]] = []
        for first in range(done, done + chunk, chats):
            count = min(chats, done + chunk - first)
            bodies += await batch([ids[(first + n) % chats] for n in range(count)])
        # The chunk is queued while the worker is stopped, then worked off as one backlog:
        # its CPU is the handling alone, at full speed, whatever the bench's own pace.
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            await run.queue(bodies)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        cpu_before, before = cpu_seconds(worker.pid) or 0.0, time.monotonic()
        await run.answered(run.calls + chunk * per_update)
        cpu += (cpu_seconds(worker.pid) or 0.0) - cpu_before
        seconds += time.monotonic() - before
        done += chunk
        if done - sampled >= sample_every or done == updates:
            rss.append((done, rss_mb(worker.pid)))
            sampled = done
    await run.profiler(worker, "stop")
    return Result(scenario, updates, cpu * 1e6 / updates, per_update, seconds, rss)


def report(result: Result, placement: Placement) -> None:
    print(f"Frontdesk handling bench (python -m bench handling --scenario {result.scenario})")
    print(
        f"  worker on CPU {placement.server} alone; stand-ins, Redis and the bench on CPU "
        f"{placement.client}; {result.updates} updates worked off in {result.seconds:.1f} s "
        f"({result.updates / result.seconds:.0f}/s), {result.calls_per_update:g} Bot API "
        "calls each"
    )
    print(f"  handler µs/update (worker CPU / updates handled): {result.cpu_us:.0f}")
    marks = ", ".join(
        ("start" if n == 0 and i == 0 else "warm" if n == 0 else f"{n}") + f" {mb:.0f}"
        for i, (n, mb) in enumerate(result.rss_mb)
    )
    print(f"  worker RSS MB by updates handled: {marks}")
    print(result.line())


async def run(
    scenario: str,
    updates: int,
    chats: int,
    redis_url: str | None,
    sample_every: int,
    profile: bool = False,
) -> Result:
    placement = Placement.choose()
    log_dir = Path(tempfile.mkdtemp(prefix="frontdesk-handling-"))
    own: RedisServer | None = None
    if redis_url is None:
        if not shutil.which("redis-server"):
            raise RuntimeError("no redis-server on PATH: pass --redis-url")
        own = RedisServer(placement.client, log_dir)
        await own.wait_ready()
        first_in_line(own.process.pid)
        redis_url = own.url
    pin_self(placement.client)
    async with aiohttp.ClientSession() as http:
        bench = Run(http, redis_url, log_dir, profile)
        try:
            progress(f"starting the worker and the stand-ins (logs: {log_dir})")
            worker = await bench.start(scenario, placement)
            progress(f"{scenario}: {chats} clients warm up, then {updates} updates")
            result = await measure(bench, worker, scenario, updates, chats, sample_every)
        finally:
            await bench.stop()
            if own is not None:
                await own.stop()
    report(result, placement)
    if bench.profile is not None and bench.profile.exists():
        print("\n".join(profiling.summary(bench.profile, result.updates, "worker")))
        print(f"  (a profiled run: its µs/update is not comparable; raw profile: {bench.profile})")
    return result


def main(
    scenario: str,
    updates: int,
    chats: int,
    redis_url: str | None,
    sample_every: int,
    profile: bool = False,
) -> int:
    asyncio.run(run(scenario, updates, chats, redis_url, sample_every, profile))
    return 0
