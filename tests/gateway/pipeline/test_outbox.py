"""The outbox on its own: what happens between a delivery and its record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.pipeline.keys import Keys
from gateway.pipeline.metrics import Metrics
from gateway.pipeline.outbox import OutboxSender, Pacing, PermanentFailure, RetryLater, pace
from gateway.pipeline.resilience import BreakerOpen, TokenBucket
from gateway.pipeline.streams import Outgoing
from gateway.pipeline.workers import Lease
from tests.conftest import GatewayFactory, Sandbox, eventually


class RecordingDelivery:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def deliver(self, message: Outgoing) -> None:
        self.sent.append(message)


def telegram_sender(
    redis: Redis, lease: Lease, delivery: RecordingDelivery, **options: Any
) -> OutboxSender:
    """A shard's sender for Telegram alone, unpaced, retrying at once."""
    return OutboxSender(
        redis,
        lease,
        {"telegram": delivery},
        {"telegram": Pacing(1000.0, 100, 1000.0)},
        {"telegram": TokenBucket(1000.0, 100)},
        Metrics(),
        schedule=(0.05,),
        wake=asyncio.Event(),
        slots=asyncio.Semaphore(4),
        **options,
    )


async def held_lease(redis: Redis, salon_id: str, holder: str = "me") -> tuple[Keys, Lease]:
    """A one-shard salon's keys and the sender's lease ("me") on shard 0, which `holder`
    holds in Redis."""
    keys = Keys(salon_id, 1)
    await redis.set(keys.lease(0), holder)
    return keys, Lease(redis, keys, 0, "me")


def outgoing(chat: str, method: str = "sendMessage", params: Any = None) -> dict[str, str]:
    """An outbox entry for Telegram as the workers queue it; `params` default to the chat."""
    return {
        "channel": "telegram",
        "chat": chat,
        "method": method,
        "params": json.dumps({"chat_id": chat} if params is None else params),
        "ephemeral": "0",
        "origin": "1-0",
    }


def fail_recording_once(sender: OutboxSender) -> None:
    """Redis goes away once while the sender records a delivery (after the delivery)."""
    record = sender._done
    failures = [RedisConnectionError("Redis went away")]

    async def flaky(keys: Any, args: Any = ()) -> Any:
        if failures:
            raise failures.pop()
        return await record(keys=keys, args=args)

    sender._done = flaky  # type: ignore[assignment]


async def stop(lease: Lease, running: asyncio.Task[None]) -> None:
    """The lease is lost: the sender stops."""
    lease.lost.set()
    await asyncio.wait_for(running, 5)


async def test_a_delivered_message_is_not_sent_again_when_recording_it_fails(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id)
    await redis.xadd(keys.outbound(0), outgoing("5", params={"chat_id": 5, "text": "Hello"}))
    delivery = RecordingDelivery()
    sender = telegram_sender(redis, lease, delivery)
    fail_recording_once(sender)
    running = asyncio.create_task(sender.run())
    await eventually(lambda: redis.xlen(keys.outbound(0)), timeout=1)  # still there at first

    async def recorded() -> bool:
        return await redis.xlen(keys.outbound(0)) == 0

    await eventually(recorded, timeout=5)
    assert [m.params["text"] for m in delivery.sent] == ["Hello"]
    await stop(lease, running)


async def test_work_a_predecessor_read_too_late_is_found_in_the_pending_list(
    redis: Redis, salon_id: str
) -> None:
    """A process whose lease expired may still read entries (its blocking read was under way):
    they sit pending under the shard's consumer name, after the new holder's first look."""
    from gateway.pipeline.keys import INBOUND_GROUP, OUTBOUND_GROUP
    from gateway.pipeline.streams import Entry, Outcome
    from gateway.pipeline.workers import InboundConsumer, consumer_name, ensure_group

    keys, lease = await held_lease(redis, salon_id)
    delivery = RecordingDelivery()
    sender = telegram_sender(redis, lease, delivery, rescan=0.2)
    handled: list[str] = []

    async def handler(entry: Entry) -> Outcome:
        handled.append(entry.event_id)
        return Outcome()

    consumer = InboundConsumer(
        redis,
        lease,
        {"telegram": handler},
        Metrics(),
        max_attempts=3,
        wake=asyncio.Event(),
        sent=asyncio.Event(),
        slots=asyncio.Semaphore(4),
        rescan=0.2,
    )
    tasks = [asyncio.create_task(sender.run()), asyncio.create_task(consumer.run())]
    await ensure_group(redis, keys.inbound(0), INBOUND_GROUP)
    await ensure_group(redis, keys.outbound(0), OUTBOUND_GROUP)
    await asyncio.sleep(0.1)  # both have read their (empty) pending lists
    entry = {"src": "telegram", "conv": "tg:5", "id": "late", "at": "0", "body": "{}"}
    message = {
        "channel": "telegram",
        "chat": "5",
        "method": "sendMessage",
        "params": json.dumps({"chat_id": 5, "text": "Late"}),
        "ephemeral": "0",
        "origin": "1-0",
    }
    # Added and read at once by the predecessor, under the shard's name; then it dies.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.inbound(0), entry)  # type: ignore[arg-type]
        pipe.xadd(keys.outbound(0), message)  # type: ignore[arg-type]
        pipe.xreadgroup(INBOUND_GROUP, consumer_name(0), {keys.inbound(0): ">"}, count=10)
        pipe.xreadgroup(OUTBOUND_GROUP, consumer_name(0), {keys.outbound(0): ">"}, count=10)
        await pipe.execute()
    await eventually(lambda: handled == ["late"], timeout=5)
    await eventually(lambda: [m.params["text"] for m in delivery.sent] == ["Late"], timeout=5)
    await asyncio.sleep(0.5)  # read again later: not handled or sent twice
    assert handled == ["late"]
    assert len(delivery.sent) == 1
    # And what comes next is read as usual (the pending history was left behind).
    await redis.xadd(keys.inbound(0), {**entry, "id": "next"})
    await redis.xadd(keys.outbound(0), {**message, "params": json.dumps({"text": "Next"})})
    await eventually(lambda: handled == ["late", "next"], timeout=5)
    await eventually(lambda: len(delivery.sent) == 2, timeout=5)
    lease.lost.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


async def test_an_open_breaker_costs_no_attempt_however_long_the_outage(
    start_gateway: GatewayFactory, sandbox: Sandbox, redis: Redis, salon_id: str
) -> None:
    """The breaker stays open ten times longer than the whole retry schedule: messages it
    refuses were never tried, so they wait for the trial and go out once, with no dead letter."""
    gateway = await start_gateway(
        breaker_failures=1, breaker_reset_seconds=2.0, outbox_retry_schedule=(0.1, 0.1)
    )
    # Telegram's answer to a call it failed to handle: {"ok": false, "error_code": 500, ...}.
    sandbox.telegram.fail_next("sendMessage", error_code=500, description="Internal Server Error")
    await sandbox.telegram.client_says(701, "/start")
    await eventually(lambda: gateway.runtime.breakers["telegram"].state.name == "OPEN")
    await sandbox.telegram.client_says(702, "/start")  # queued while the breaker is open

    for chat in (701, 702):
        await eventually(lambda chat=chat: sandbox.telegram.messages_for(chat), timeout=8)
    await asyncio.sleep(0.3)  # nothing else follows
    assert [len(sandbox.telegram.messages_for(chat)) for chat in (701, 702)] == [1, 1]
    assert await redis.xlen(Keys(salon_id, 4).dead_letters) == 0
    deferred = gateway.runtime.metrics.outbox.labels("telegram", "deferred")._value.get()
    assert deferred >= 2  # both waited for the breaker at least once


async def test_another_services_open_breaker_is_an_attempt_and_the_chat_moves_on(
    redis: Redis, salon_id: str
) -> None:
    """A staff file fetched from Chatwoot on its way to Telegram: Chatwoot's open breaker is no
    reason to hold this chat for the whole outage. It costs attempts like any failure, the
    message ends as a dead letter, and the chat's next message goes out."""
    keys, lease = await held_lease(redis, salon_id)

    class ChatwootDown(RecordingDelivery):
        async def deliver(self, message: Outgoing) -> None:
            if message.params.get("text") == "file":
                raise BreakerOpen("chatwoot", 60.0)
            await super().deliver(message)

    delivery = ChatwootDown()
    sender = telegram_sender(redis, lease, delivery)
    for text in ("file", "menu"):
        await redis.xadd(keys.outbound(0), outgoing("5", params={"chat_id": 5, "text": text}))
    running = asyncio.create_task(sender.run())
    await eventually(lambda: [m.params["text"] for m in delivery.sent] == ["menu"], timeout=5)
    assert await redis.xlen(keys.dead_letters) == 1
    await stop(lease, running)


class BotWide429:
    """A delivery whose first call gets a 429 for the whole bot (Telegram's flood limit)."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.sent: list[tuple[str, float]] = []
        self.refused_at: float | None = None

    async def deliver(self, message: Outgoing) -> None:
        now = asyncio.get_running_loop().time()
        if self.refused_at is None:
            self.refused_at = now
            raise RetryLater(self.wait, sender_wide=True)
        self.sent.append((message.chat, now))


async def test_a_429_for_the_whole_bot_holds_every_chat_then_loses_nothing(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id)
    delivery = BotWide429(wait=0.5)
    paced = pace(1000.0, 1000.0, 100)
    sender = OutboxSender(
        redis,
        lease,
        {"telegram": delivery},
        {"telegram": paced[0]},
        {"telegram": paced[1]},
        Metrics(),
        schedule=(0.05,),
        wake=asyncio.Event(),
        slots=asyncio.Semaphore(4),
    )
    for chat in ("5", "6", "7"):
        params = json.dumps({"chat_id": int(chat), "text": "Reminder"})
        await redis.xadd(
            keys.outbound(0),
            {"channel": "telegram", "chat": chat, "method": "sendMessage", "params": params},
        )
    running = asyncio.create_task(sender.run())
    await eventually(lambda: len(delivery.sent) == 3, timeout=5)
    assert delivery.refused_at is not None
    # None of the chats went while the bot was told to wait, the refused one included.
    assert min(at for _chat, at in delivery.sent) >= delivery.refused_at + 0.5 - 0.01
    assert sorted(chat for chat, _at in delivery.sent) == ["5", "6", "7"]
    await stop(lease, running)


class SlowBotWide429(BotWide429):
    """The first call takes a while (holding the only sending slot), then gets a bot-wide 429."""

    async def deliver(self, message: Outgoing) -> None:
        if self.refused_at is None:
            await asyncio.sleep(0.3)
        await super().deliver(message)


async def test_sends_queued_for_a_slot_do_not_go_during_a_pause_set_meanwhile(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id)
    delivery = SlowBotWide429(wait=0.6)
    paced = pace(1000.0, 1000.0, 100)
    sender = OutboxSender(
        redis,
        lease,
        {"telegram": delivery},
        {"telegram": paced[0]},
        {"telegram": paced[1]},
        Metrics(),
        schedule=(0.05,),
        wake=asyncio.Event(),
        # One slot: chats 6 and 7 have their places in the bot's window and wait for it
        # while chat 5's send is under way, and its 429 pauses the bot.
        slots=asyncio.Semaphore(1),
    )
    for chat in ("5", "6", "7"):
        params = json.dumps({"chat_id": int(chat), "text": "Reminder"})
        await redis.xadd(
            keys.outbound(0),
            {"channel": "telegram", "chat": chat, "method": "sendMessage", "params": params},
        )
    running = asyncio.create_task(sender.run())
    await eventually(lambda: len(delivery.sent) == 3, timeout=5)
    assert delivery.refused_at is not None
    assert min(at for _chat, at in delivery.sent) >= delivery.refused_at + 0.6 - 0.01
    assert sorted(chat for chat, _at in delivery.sent) == ["5", "6", "7"]
    await stop(lease, running)


class CausingDelivery(RecordingDelivery):
    """Telegram's delivery, except that "sendMessage" causes a note to the staff line and a
    "refused" call is refused for good."""

    async def deliver(self, message: Outgoing) -> tuple[Outgoing, ...]:  # type: ignore[override]
        self.sent.append(message)
        if message.method == "refused":
            raise PermanentFailure("blocked")
        if message.method == "sendMessage":
            return (Outgoing("telegram", "staff", "note", {"about": message.chat}),)
        return ()


async def test_what_a_delivery_causes_is_queued_once_with_its_record(
    redis: Redis, salon_id: str
) -> None:
    """A handoff's staff page rides on the handoff's record: recording fails once (Redis went
    away after the delivery), the record is retried, and the caused message is queued once,
    never sent twice."""
    keys, lease = await held_lease(redis, salon_id)
    await redis.xadd(keys.outbound(0), outgoing("5", "sendMessage"))
    delivery = CausingDelivery()
    sender = telegram_sender(redis, lease, delivery)
    fail_recording_once(sender)
    running = asyncio.create_task(sender.run())
    await eventually(lambda: [m.method for m in delivery.sent] == ["sendMessage", "note"])
    await asyncio.sleep(0.2)
    assert [(m.chat, m.method, m.params) for m in delivery.sent] == [
        ("5", "sendMessage", {"chat_id": "5"}),
        ("staff", "note", {"about": "5"}),
    ]

    async def drained() -> bool:
        return await redis.xlen(keys.outbound(0)) == 0

    await eventually(drained, timeout=5)
    await stop(lease, running)


async def test_what_a_burial_causes_is_queued_with_the_dead_letter(
    redis: Redis, salon_id: str
) -> None:
    keys, lease = await held_lease(redis, salon_id)
    entry = (await redis.xadd(keys.outbound(0), outgoing("6", "refused"))).decode()
    delivery = CausingDelivery()

    def buried(message: Outgoing, entry_id: str) -> tuple[Outgoing, ...]:
        return (Outgoing("telegram", "staff", "page", {"entry": entry_id, "chat": message.chat}),)

    sender = telegram_sender(redis, lease, delivery, buried=buried)
    running = asyncio.create_task(sender.run())
    await eventually(lambda: [m.method for m in delivery.sent] == ["refused", "page"])
    assert delivery.sent[1].params == {"entry": entry, "chat": "6"}
    [(_id, letter)] = await redis.xrange(keys.dead_letters)
    assert letter[b"entry"].decode() == entry
    assert letter[b"method"] == b"refused"
    assert letter[b"chat"] == b"6"
    await stop(lease, running)
