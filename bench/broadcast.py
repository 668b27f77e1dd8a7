"""`python -m bench broadcast`: a morning's reminders for many salons leave at the platforms'
limits, without a 429 and without losing one.

One gateway process serves M salons (as the registry hands them over, like `bench fairness`),
each with its own bot (and/or WhatsApp number) at the default pacing settings. Each sender
has its own stand-in, in the same process, that enforces the platform's limits
(`enforce_limits`, gateway/sandbox/flood.py): Telegram 30 messages in any second per bot and
1 a second per chat with short bursts (429 with `retry_after`); WhatsApp 80 in any second per
number (130429) and the pair rate (131056). N reminders are queued into the salons' outboxes
at once, spread over the salons and over C chats per salon, and the bench waits until every
one has reached its stand-in. The last line is the summary:

    broadcast: sent=<n> of <N> rate_per_bot=<min msg/s> (<% of the limit>) 429s=<n> \
max_lag_s=<s> lost=<n> duplicates=<n>

`rate_per_bot` is the slowest sender's rate between its first and its last delivery, as its
stand-in received them; `max_lag_s` the longest wait of a reminder from queueing to delivery
(at the limit, a sender's last reminder cannot arrive before (N/M - 1) / limit seconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bench.broadcast_standins import (
    APP_SECRET,
    InProcess,
    OwnProcess,
    Records,
    access_token,
    number,
    token,
)
from bench.procs import cpu_seconds, machine_busy_seconds
from gateway.app import SERVED, create_app
from gateway.pipeline.conversation import Conversation
from gateway.pipeline.embedded_redis import EmbeddedRedis
from gateway.pipeline.keys import Keys
from gateway.pipeline.streams import Outgoing
from gateway.salons import Salon
from gateway.settings import load
from gateway.wiring.key_upgrade import KEY_UPGRADE

CHANNELS = ("telegram", "whatsapp")
# The platforms' limits per sender, as the stand-ins enforce them (and the default settings).
LIMITS = {"telegram": 30.0, "whatsapp": 80.0}
WA_VERSION = "v23.0"


@dataclass
class Sender:
    """One bot or number: its salon, its stand-in's key, and when each reminder was queued."""

    channel: str
    salon_id: str
    key: str  # "<channel>:<n>", as the stand-ins name it
    queued: dict[str, float] = field(default_factory=dict)  # reminder id -> monotonic time


@dataclass(frozen=True)
class Figures:
    queued: int
    senders: list[tuple[str, float]]  # (channel, rate between first and last delivery)
    refused: int
    max_lag: float
    lost: int
    duplicates: int
    chat_max_in_1s: dict[str, int]  # per channel: the most messages one chat got in a second
    cost: str = ""  # CPU spent while sending, and by whom

    def summary(self) -> str:
        channel, slowest = min(self.senders, key=lambda s: s[1] / LIMITS[s[0]])
        share = 100 * slowest / LIMITS[channel]
        sent = self.queued - self.lost
        return (
            f"broadcast: sent={sent} of {self.queued} rate_per_bot={slowest:.1f} "
            f"({share:.1f}% of {channel}'s {LIMITS[channel]:.0f}/s) 429s={self.refused} "
            f"max_lag_s={self.max_lag:.1f} lost={self.lost} duplicates={self.duplicates}"
        )


def _rate(arrivals: list[float], limit: float) -> float:
    """Messages a second once the first second's worth has gone: the outbox lets half of the
    first window's sends go at once (gateway/pipeline/resilience.py, SendWindow), which would
    flatter a rate counted from the first send."""
    arrivals, first = sorted(arrivals), int(limit) - 1
    if len(arrivals) - first < 2:
        first = 0  # a small run: from the first send
    if len(arrivals) < 2 or arrivals[-1] == arrivals[first]:
        return 0.0
    return (len(arrivals) - 1 - first) / (arrivals[-1] - arrivals[first])


def _most_in_a_second(arrivals: Iterable[float]) -> int:
    times, most, first = sorted(arrivals), 0, 0
    for last, stamp in enumerate(times):
        while stamp - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def figures(senders: list[Sender], records: Records) -> Figures:
    rates, lags, lost, duplicates = [], [0.0], 0, 0
    chat_most: dict[str, int] = {}
    for sender in senders:
        arrived: dict[str, float] = {}
        per_chat: defaultdict[str, list[float]] = defaultdict(list)
        for reminder_id, chat, at in records[sender.key]["deliveries"]:
            duplicates += reminder_id in arrived
            arrived.setdefault(reminder_id, at)
            per_chat[chat].append(at)
        lost += len(set(sender.queued) - set(arrived))
        lags += [at - sender.queued[r] for r, at in arrived.items() if r in sender.queued]
        rates.append((sender.channel, _rate(list(arrived.values()), LIMITS[sender.channel])))
        most = max(_most_in_a_second(a) for a in per_chat.values()) if per_chat else 0
        chat_most[sender.channel] = max(chat_most.get(sender.channel, 0), most)
    queued = sum(len(s.queued) for s in senders)
    refused = sum(int(r["refused"]) for r in records.values())
    return Figures(queued, rates, refused, max(lags), lost, duplicates, chat_most)


def _salon(
    salon_id: str, n: int, urls: dict[str, str], settings: Iterable[tuple[str, str]] = ()
) -> Salon:
    """A salon as the registry hands it over, at the default pacing settings."""
    values = {"SALON_NAME": f"Broadcast salon {n}", "DEFAULT_LOCALE": "en", **dict(settings)}
    if "telegram" in urls:
        values |= {
            "TELEGRAM_BOT_TOKEN": token(n),
            "TELEGRAM_WEBHOOK_SECRET": "bench-broadcast-secret",
            "TELEGRAM_API_URL": urls["telegram"],
        }
    if "whatsapp" in urls:
        values |= {
            "WHATSAPP_ACCESS_TOKEN": access_token(n),
            "WHATSAPP_PHONE_NUMBER_ID": number(n),
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "WHATSAPP_API_URL": f"{urls['whatsapp']}/{WA_VERSION}",
        }
    now = datetime.now(UTC)
    return Salon(salon_id, True, 1, now, now, values, frozenset())


def reminder(channel: str, reminder_id: str, chat: str) -> Outgoing:
    """A reminder as the outbox holds it: a Telegram message, a WhatsApp template (a reminder
    goes as the approved template: the client's 24-hour window is usually closed)."""
    if channel == "telegram":
        text = f"{reminder_id} Reminder: your appointment is tomorrow at 10:00."
        return Outgoing("telegram", chat, "sendMessage", {"chat_id": int(chat), "text": text})
    template = {
        "type": "template",
        "template": {
            "name": "frontdesk_reminder",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": reminder_id},
                        {"type": "text", "text": "tomorrow at 10:00"},
                    ],
                }
            ],
        },
    }
    return Outgoing("whatsapp", chat, "template", {"content": template})


async def queue(redis: Redis, keys: Keys, sender: Sender, count: int, chats: int) -> None:
    """Queue `count` reminders for `sender` over `chats` chats, as a commit would."""
    pipe = redis.pipeline(transaction=False)
    base = 10_000_000 if sender.channel == "telegram" else 79_000_000_000
    for n in range(count):
        chat = str(base + n % chats)
        reminder_id = f"r{n}"
        message = reminder(sender.channel, reminder_id, chat)
        shard = keys.shard_of(Conversation(sender.channel, chat).key)
        names = ("channel", "chat", "method", "params", "ephemeral", "origin", "author", "failure")
        pipe.xadd(keys.outbound(shard), dict(zip(names, message.to_fields("bench"), strict=True)))
        sender.queued[reminder_id] = time.monotonic()
    await pipe.execute()


class _Cost:
    """CPU the bench process (the gateway), the stand-ins' process and the whole machine spend
    from now on: on a shared machine the rate may be the CPU's, not the pacing's."""

    def __init__(self, stand_ins_pid: int | None) -> None:
        self.pid = stand_ins_pid
        self.started = time.monotonic()
        self.gateway = cpu_seconds() or 0.0
        self.stand_ins = (cpu_seconds(self.pid) or 0.0) if self.pid else 0.0
        self.machine = machine_busy_seconds() or 0.0

    def line(self, messages: int) -> str:
        elapsed = time.monotonic() - self.started
        gateway = (cpu_seconds() or 0.0) - self.gateway
        stand_ins = (cpu_seconds(self.pid) or 0.0) - self.stand_ins if self.pid else 0.0
        others = (machine_busy_seconds() or 0.0) - self.machine - gateway - stand_ins
        where = "in their own process" if self.pid else "in the gateway's process"
        return (
            f"cpu while sending ({elapsed:.0f} s): gateway {1000 * gateway / messages:.2f} ms/msg "
            f"({gateway / elapsed:.2f} of a core), stand-ins {where} "
            f"{1000 * stand_ins / messages:.2f} ms/msg, everything else on the machine "
            f"{others / elapsed:.2f} of {os.cpu_count()} cores"
        )


@dataclass(frozen=True)
class Plan:
    reminders: int = 10_000
    bots: int = 10
    chats: int = 250  # per salon
    channels: tuple[str, ...] = ("telegram",)
    # The stand-ins in a process of their own (the bench's figures) or in the bench's loop.
    own_process: bool = True
    # Settings every salon gets on top of the defaults (tests: a pace over the limits).
    settings: tuple[tuple[str, str], ...] = ()


StandIns = InProcess | OwnProcess


async def _delivered(stand_ins: StandIns, senders: list[Sender], deadline: float) -> None:
    while time.monotonic() < deadline:
        counts = await stand_ins.records(counts_only=True)
        if all(counts[s.key]["delivered"] >= len(s.queued) for s in senders):
            return
        await asyncio.sleep(0.25)


async def measure(redis_url: str, plan: Plan) -> Figures:
    stand_ins: StandIns = OwnProcess() if plan.own_process else InProcess()
    async with stand_ins.running(plan.bots, plan.channels):
        return await _broadcast(redis_url, plan, stand_ins)


async def _broadcast(redis_url: str, plan: Plan, stand_ins: StandIns) -> Figures:
    run = uuid.uuid4().hex[:8]
    salon_ids = [f"bcast-{run}-{n}" for n in range(plan.bots)]
    senders = [
        Sender(channel, salon_id, f"{channel}:{n}")
        for n, salon_id in enumerate(salon_ids)
        for channel in plan.channels
    ]
    settings = load(
        _env_file=None,
        redis_url=redis_url,
        salon_id=f"bcast-{run}-env",
        salon_name="Broadcast",
        default_locale="en",
        log_level="ERROR",
    )
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    # The workers start after the key migration (gateway/wiring/key_upgrade.py).
    await asyncio.wait_for(app[KEY_UPGRADE].done.wait(), 30)
    redis = Redis.from_url(redis_url)
    try:
        served = app[SERVED]
        salons = {
            salon_id: _salon(
                salon_id, n, {c: stand_ins.urls[f"{c}:{n}"] for c in plan.channels}, plan.settings
            )
            for n, salon_id in enumerate(salon_ids)
        }
        await served.apply(salons, frozenset())
        for salon_id in salon_ids:
            pool = served.live[salon_id].runtime.pool
            assert pool is not None
            await asyncio.wait_for(pool.ready.wait(), 30)
        per_sender = plan.reminders // len(senders)
        for sender in senders:
            keys = served.live[sender.salon_id].runtime.keys
            await queue(redis, keys, sender, per_sender, plan.chats)
        ideal = max(per_sender / LIMITS[c] for c in plan.channels)
        cost = _Cost(stand_ins.pid)
        await _delivered(stand_ins, senders, time.monotonic() + 2 * ideal + 60)
        result = figures(senders, await stand_ins.records())
        return dataclasses.replace(result, cost=cost.line(result.queued))
    finally:
        await served.stop_registry_salons()
        await server.close()
        for salon_id in [*salon_ids, f"bcast-{run}-env"]:
            found = [key async for key in redis.scan_iter(match=f"fd:{salon_id}:*")]
            if found:
                await redis.delete(*found)
        await redis.aclose()


def main(redis_url: str | None, plan: Plan) -> int:
    if redis_url is not None:
        result = asyncio.run(measure(redis_url, plan))
    else:
        with EmbeddedRedis() as embedded:
            result = asyncio.run(measure(embedded.url, plan))
    for n, (name, rate) in enumerate(result.senders):
        share = 100 * rate / LIMITS[name]
        print(f"sender {n} ({name}): {rate:.1f} msg/s, {share:.1f}% of the limit")
    mean = statistics.mean(rate / LIMITS[name] for name, rate in result.senders)
    print(
        f"mean share of the limit: {100 * mean:.1f}%; most to one chat in a second: "
        + ", ".join(f"{c} {n}" for c, n in result.chat_max_in_1s.items())
    )
    print(result.cost)
    print(result.summary())
    return 0 if result.lost == 0 and result.duplicates == 0 else 1
