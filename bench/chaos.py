"""`python -m bench chaos`: the durability promise under crashes and storms, counted.

A stream of numbered Telegram updates from a few chats goes to the real gateway (one process,
RUN_WORKERS on) while it is killed with SIGKILL twice (and started again), its Redis is
restarted once (append-only file on, as the README requires in production), and the Telegram
stand-in answers a storm of 500s and one of 429s. Each chat posts its updates one after the
other, as Telegram does, and posts an update again until it is answered 200 (Telegram retries
what it did not get a 2xx for). Then the run waits until the replies stop coming and prints:

    chaos: acked=<n> replied=<n> lost=<n> dup=<n> order_violations=<n>

Every update is a `/start` from a client whose first name is `C<chat>N<seq>`, and the bot
greets by that name ("Hello, C3N17! …"), so each reply names the update it answers.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.payloads import HEADERS
from bench.procs import BenchError, Child, RedisServer, free_port

WEBHOOK = "/webhooks/telegram"
START_SECONDS = 120.0  # importing aiogram alone takes several seconds of CPU
# Greeting of the bot's English catalogue: "Hello, {name}! Welcome to {salon}. …".
_GREETING = re.compile(r"^Hello, C(\d+)N(\d+)!")
# The gateway as the run configures it: short leases so that a killed process's shards are
# taken over in seconds, retries that fit in the run, a breaker that tries again each second.
GATEWAY_SETTINGS: dict[str, object] = {
    "lease_seconds": 3.0,
    "outbox_retry_schedule": [1.0, 2.0, 4.0, 8.0],
    "breaker_failures": 5,
    "breaker_reset_seconds": 1.0,
}


@dataclass(frozen=True)
class Counts:
    acked: int
    replied: int
    lost: int
    dup: int
    order_violations: int

    def line(self) -> str:
        return (
            f"chaos: acked={self.acked} replied={self.replied} lost={self.lost} "
            f"dup={self.dup} order_violations={self.order_violations}"
        )


def count(acked: Mapping[int, Iterable[int]], replies: Sequence[tuple[int, str]]) -> Counts:
    """`acked`: per chat, the updates (their numbers) answered 200. `replies`: (chat, text) of
    each message the bot sent, in the order the Bot API accepted them.

    replied: updates with a reply; lost: acknowledged updates without one; dup: replies
    beyond the first for one update; order_violations: replies that came after the reply to a
    later update of the same chat."""
    answered: defaultdict[int, set[int]] = defaultdict(set)
    latest: dict[int, int] = {}
    dup = order_violations = 0
    for chat, text in replies:
        match = _GREETING.match(text or "")
        if match is None or int(match.group(1)) != chat:
            continue  # not a reply to one of the run's updates
        seq = int(match.group(2))
        if seq in answered[chat]:
            dup += 1
            continue
        if seq < latest.get(chat, -1):
            order_violations += 1
        latest[chat] = max(seq, latest.get(chat, -1))
        answered[chat].add(seq)
    acked_sets = {chat: set(seqs) for chat, seqs in acked.items()}
    lost = sum(len(seqs - answered.get(chat, set())) for chat, seqs in acked_sets.items())
    return Counts(
        acked=sum(len(seqs) for seqs in acked_sets.values()),
        replied=sum(len(seqs) for seqs in answered.values()),
        lost=lost,
        dup=dup,
        order_violations=order_violations,
    )


def update_body(update_id: int, chat: int, seq: int) -> bytes:
    """A private-chat `/start` from the client named C<chat>N<seq> (Bot API: Update, Message)."""
    user = {"id": chat, "is_bot": False, "first_name": f"C{chat}N{seq}", "language_code": "en"}
    message = {
        "message_id": seq + 1,
        "from": user,
        "chat": {"id": chat, "first_name": user["first_name"], "type": "private"},
        "date": int(time.time()),
        "text": "/start",
        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


def progress(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


@dataclass
class Plan:
    updates: int = 1000
    chats: int = 8
    rate: float = 100.0  # updates per second, all chats together
    timeout: float = 300.0  # the whole run, start-up included
    drain: float = 30.0  # wait this long without a new reply before giving up on the rest


@dataclass
class Stream:
    """What the simulated Telegram sent and what it was answered."""

    acked: defaultdict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    refused: int = 0  # answers other than 200, and connection errors (then sent again)

    @property
    def total(self) -> int:
        return sum(len(seqs) for seqs in self.acked.values())


class Chaos:
    def __init__(self, plan: Plan, log_dir: Path, data_dir: Path) -> None:
        self.plan = plan
        self.log_dir = log_dir
        self.redis = RedisServer(-1, log_dir, data_dir=data_dir)
        self.salon_id = f"chaos-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.stream = Stream()
        self.deadline = time.monotonic() + plan.timeout
        self.gateway: Child | None = None
        self.sandbox: Child | None = None
        self.replies: list[tuple[int, str]] = []
        self.api_errors = 0  # Bot API calls the stand-in answered with an error
        self._next_call = 0

    # -- processes ----------------------------------------------------------------------------

    async def start(self, http: aiohttp.ClientSession) -> None:
        await self.redis.wait_ready()
        self.sandbox = Child("sandbox", ["sandbox"], self.log_dir)
        await self.sandbox.wait_ready(http, ["/_bench/calls"], 30)
        await self.start_gateway(http)

    async def start_gateway(self, http: aiohttp.ClientSession) -> None:
        assert self.sandbox is not None
        args = ["gateway", "--redis-url", self.redis.url, "--salon-id", self.salon_id]
        args += ["--api-url", self.sandbox.url]
        for name, value in GATEWAY_SETTINGS.items():
            args += ["--setting", f"{name}={json.dumps(value)}"]
        # The same port each time: the simulated Telegram knows one webhook URL.
        self.gateway = Child("gateway", args, self.log_dir, port=self.port)
        await self.gateway.wait_ready(http, ["/healthz"], START_SECONDS)

    async def stop(self) -> None:
        for child in (self.gateway, self.sandbox):
            if child is not None:
                await child.stop()
        await self.redis.stop()

    # -- the stream ---------------------------------------------------------------------------

    async def send_chat(self, http: aiohttp.ClientSession, index: int, seqs: range) -> None:
        chat = 1000 + index
        url = f"http://127.0.0.1:{self.port}{WEBHOOK}"
        pause = self.plan.chats / self.plan.rate
        for seq in seqs:
            body = update_body(1 + index * self.plan.updates + seq, chat, seq)
            while time.monotonic() < self.deadline:
                try:
                    async with http.post(url, data=body, headers=HEADERS) as response:
                        status = response.status
                        await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                if status == 200:
                    self.stream.acked[chat].append(seq)
                    break
                self.stream.refused += 1
                # Bot API, setWebhook: "In case of an unsuccessful request (a request with
                # response HTTP status code different from 2XY), we will repeat the request".
                await asyncio.sleep(0.2)
            else:
                return
            await asyncio.sleep(pause)

    async def send_all(self, http: aiohttp.ClientSession) -> None:
        plan = self.plan
        per_chat = -(-plan.updates // plan.chats)
        shares = [
            range(index * per_chat, min((index + 1) * per_chat, plan.updates))
            for index in range(plan.chats)
        ]
        await asyncio.gather(*(self.send_chat(http, i, seqs) for i, seqs in enumerate(shares)))

    # -- the storms ---------------------------------------------------------------------------

    async def _when_acked(self, share: float) -> None:
        target = share * self.plan.updates
        while self.stream.total < target and time.monotonic() < self.deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # polled: the count grows in many tasks

    async def _bot_api_fails(
        self, http: aiohttp.ClientSession, code: int, times: int, retry_after: int | None = None
    ) -> None:
        # Bot API: an error answers {"ok": false, "error_code", "description"}; on flood control
        # it adds "parameters": {"retry_after": <seconds>} (ResponseParameters).
        assert self.sandbox is not None
        description = "Internal Server Error" if code == 500 else "Too Many Requests"
        order = {"method": "sendMessage", "error_code": code, "times": times}
        order |= {"description": description, "retry_after": retry_after}
        async with http.post(f"{self.sandbox.url}/_bench/fail", json=order) as response:
            response.raise_for_status()

    async def _kill_gateway(self, http: aiohttp.ClientSession) -> None:
        assert self.gateway is not None
        self.gateway.kill()
        await asyncio.sleep(0.5)  # down for a moment: Telegram's posts fail meanwhile
        await self.start_gateway(http)

    async def storms(self, http: aiohttp.ClientSession) -> None:
        await self._when_acked(0.15)
        progress("the Bot API answers 500 to the next 15 sendMessage calls")
        await self._bot_api_fails(http, 500, 15)
        await self._when_acked(0.30)
        progress("kill -9 of the gateway, and a new one")
        await self._kill_gateway(http)
        await self._when_acked(0.50)
        progress("Redis restarts")
        await self.redis.restart()
        await self._when_acked(0.65)
        progress("the Bot API answers 429 (retry_after 1) to the next 30 sendMessage calls")
        await self._bot_api_fails(http, 429, 30, retry_after=1)
        await self._when_acked(0.80)
        progress("kill -9 of the gateway, and a new one")
        await self._kill_gateway(http)

    # -- the replies --------------------------------------------------------------------------

    async def poll_replies(self, http: aiohttp.ClientSession) -> None:
        assert self.sandbox is not None
        url = f"{self.sandbox.url}/_bench/calls"
        async with http.get(url, params={"after": str(self._next_call)}) as response:
            response.raise_for_status()
            data = await response.json()
        self._next_call = data["next"]
        self.api_errors = int(data["error_count"])
        for method, chat, _at, text in data["calls"]:
            if method == "sendMessage" and chat is not None:
                self.replies.append((int(chat), str(text or "")))

    async def settle(self, http: aiohttp.ClientSession) -> Counts:
        """Poll the Bot API stand-in until every acknowledged update has its reply (then a
        little more, for late duplicates), or no reply came for `drain` seconds."""
        last_change, seen = time.monotonic(), -1
        while True:
            await self.poll_replies(http)
            counts = count(self.stream.acked, self.replies)
            now = time.monotonic()
            if len(self.replies) != seen:
                seen, last_change = len(self.replies), now
            if counts.lost == 0 or now - last_change > self.plan.drain or now > self.deadline:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        await self.poll_replies(http)
        return count(self.stream.acked, self.replies)


async def run(plan: Plan) -> Counts:
    log_dir = Path(tempfile.mkdtemp(prefix="frontdesk-chaos-"))
    data_dir = log_dir / "redis-data"
    data_dir.mkdir()
    chaos = Chaos(plan, log_dir, data_dir)
    timeout = aiohttp.ClientTimeout(total=5)
    failed = True
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            progress(f"logs in {log_dir}; starting Redis, the Bot API stand-in and the gateway")
            await chaos.start(http)
            progress(f"{plan.updates} updates from {plan.chats} chats at {plan.rate:.0f}/s")
            storms = asyncio.create_task(chaos.storms(http))
            await chaos.send_all(http)
            await storms
            progress(f"all sent ({chaos.stream.refused} posts refused and sent again); settling")
            started = time.monotonic()
            counts = await chaos.settle(http)
            progress(
                f"settled in {time.monotonic() - started:.1f}s; the Bot API stand-in answered "
                f"{chaos.api_errors} calls with an error"
            )
            failed = counts.lost > 0 or counts.dup > 0
            return counts
    finally:
        await chaos.stop()
        if failed:
            progress(f"logs kept in {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


def main(plan: Plan, strict: bool = False) -> int:
    if shutil.which("redis-server") is None:
        print("bench: chaos needs redis-server on PATH", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(run(plan))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(counts.line())
    missed = counts.lost > 0 or counts.dup > 0 or counts.order_violations > 0
    return 1 if strict and missed else 0
