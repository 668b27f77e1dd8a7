"""The gateway's ledger of messenger notices Novu should post back, on a real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from gateway.integrations.novu.ledger import NoticeLedger
from gateway.pipeline.inbox import Inbox
from gateway.pipeline.keys import Keys
from handlers.novu import event_id, ledger_content, send_overdue

NOW = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


def content(conversation: str = "tg:7", **fields: str) -> dict[str, str]:
    payload = {
        "transaction": "fd-s-confirmed-u1-1",
        "kind": "confirmed",
        "bookingUid": "u1",
        "conversation": conversation,
        "start": "2026-06-03T07:00:00Z",
        "service": 'The "Deluxe" cut',
        "messenger": "yes",
        "subject": "not kept",
        **fields,
    }
    return ledger_content(payload)


async def test_a_notice_is_awaited_until_done_and_never_awaited_again(
    redis: Redis, salon_id: str
) -> None:
    ledger = NoticeLedger(redis, Keys(salon_id, 4))
    assert await ledger.record("t1", NOW, content(), NOW)
    assert await ledger.record("t2", NOW + timedelta(days=1), content(), NOW)
    assert await ledger.overdue(NOW) == ["t1"]
    assert await ledger.overdue(NOW + timedelta(days=2)) == ["t1", "t2"]
    stored = await ledger.content("t1")
    assert stored is not None
    assert stored["service"] == 'The "Deluxe" cut'  # the words stay with the gateway
    assert "subject" not in stored
    await ledger.done("t1")
    assert await ledger.overdue(NOW + timedelta(days=2)) == ["t2"]
    # The same plan again (a retried booking change): a notice handled is not awaited again.
    assert not await ledger.record("t1", NOW, content(), NOW)
    assert await ledger.overdue(NOW) == []
    assert await ledger.content("never") is None
    # Kept past its due time, for a post from Novu that comes late.
    assert await redis.ttl(Keys(salon_id, 4).notice("t2")) > 24 * 3600


async def test_overdue_notices_are_queued_once_as_novu_would_post_them(
    redis: Redis, salon_id: str
) -> None:
    keys = Keys(salon_id, 4)
    ledger = NoticeLedger(redis, keys)
    inbox = Inbox(redis, keys, 3600)
    await ledger.record("t1", NOW, content(), NOW)
    await ledger.record("t2", NOW + timedelta(hours=1), content(), NOW)
    # A notice whose record is gone, or without a messenger conversation, is let go.
    await ledger.record("t3", NOW, content(conversation=""), NOW)
    await redis.zadd(keys.notices_due, {"t4": NOW.timestamp()})
    # Within the grace period nothing goes.
    assert await send_overdue(ledger, inbox, NOW + GRACE / 2, GRACE) == 0
    assert await send_overdue(ledger, inbox, NOW + GRACE, GRACE) == 1
    [[_, entries]] = await redis.xread({keys.inbound(keys.shard_of("tg:7")): "0"})
    [(_, fields)] = entries
    assert fields[b"src"] == b"novu"
    assert fields[b"id"] == event_id("t1").encode()
    assert json.loads(fields[b"body"])["bookingUid"] == "u1"
    assert await ledger.overdue(NOW + GRACE) == []
    # Novu's own post had come first for the next one: the ledger's is a duplicate.
    await redis.set(keys.dedup("novu", event_id("t2")), "1")
    assert await send_overdue(ledger, inbox, NOW + timedelta(hours=2), GRACE) == 0
    assert await ledger.overdue(NOW + timedelta(days=1)) == []
